/**
 * How the CLI reaches an agent: the socket it was told, else the socket of an agent already
 * serving the state dir, else the default socket, else a private agent over stdio.
 */
import * as fs from "node:fs";
import { spawn } from "node:child_process";
import { AgentClient } from "../protocol/client";
import { PaddockError } from "../protocol/errors";
import { defaultSocketPath, stateFiles } from "../state/paths";
import type { AgentInfo } from "../serve";

export interface ConnectOptions {
  socket?: string;
  stateDir: string;
  /** The script that runs `paddock` (to spawn `paddock agent --stdio`). */
  selfScript: string;
  logLevel: string;
}

export interface Connected {
  client: AgentClient;
  via: string;
  close(): void;
}

export async function connectToAgent(options: ConnectOptions): Promise<Connected> {
  if (options.socket) {
    return viaSocket(options.socket).catch((err: NodeJS.ErrnoException) => {
      throw new PaddockError("E_AGENT_UNREACHABLE", `cannot connect to the agent at ${options.socket}: ${err.code ?? err.message}`, hintFor(err));
    });
  }
  for (const socket of candidateSockets(options.stateDir)) {
    try {
      return await viaSocket(socket);
    } catch {
      // not there, or not ours: try the next
    }
  }
  return viaStdio(options);
}

function candidateSockets(stateDir: string): string[] {
  const found: string[] = [];
  if (process.env.PADDOCK_SOCKET) found.push(process.env.PADDOCK_SOCKET);
  try {
    const info = JSON.parse(fs.readFileSync(stateFiles(stateDir).agentInfo, "utf8")) as AgentInfo;
    if (typeof info.socket === "string") found.push(info.socket);
  } catch {
    // no agent serves this state dir on a socket
  }
  found.push(defaultSocketPath());
  return [...new Set(found)].filter((p) => fs.existsSync(p));
}

async function viaSocket(socket: string): Promise<Connected> {
  const client = await AgentClient.connect(socket);
  return { client, via: `socket ${socket}`, close: () => client.close() };
}

async function viaStdio(options: ConnectOptions): Promise<Connected> {
  // The private agent's stderr is ours: if it cannot start, its own error says why.
  const child = spawn(process.execPath, [options.selfScript, "agent", "--stdio", "--state-dir", options.stateDir, "--log-level", options.logLevel, "--stderr-log-level", "warn"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const client = new AgentClient(child.stdout, child.stdin);
  return {
    client,
    via: "a private agent over stdio",
    close: () => client.close(),
  };
}

function hintFor(err: NodeJS.ErrnoException): string {
  if (err.code === "EACCES") return "the socket is only for its owner (or its group): run as that user, or ask for --socket-group";
  if (err.code === "ENOENT" || err.code === "ECONNREFUSED") return "start the agent with `paddock agent --socket PATH` (or `npm start`)";
  return "check the socket path";
}
