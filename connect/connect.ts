/**
 * How a client (the CLI, the extension) reaches an agent: the socket it was told (--socket or
 * $PADDOCK_SOCKET), else the socket of an agent already serving the state dir, else the
 * default socket if that agent serves the same state dir, else a private agent over stdio.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { spawn } from "node:child_process";
import { AgentClient } from "../protocol/client";
import { PaddockError } from "../protocol/errors";
import type { InitializeResult } from "../protocol/methods";
import { agentInfoFile, defaultSocketPath, type AgentInfo } from "../protocol/discovery";

export interface ConnectOptions {
  socket?: string;
  stateDir: string;
  /** The script that runs `paddock` (to spawn `paddock agent --stdio`). */
  selfScript: string;
  logLevel: string;
  clientName?: string;
  /**
   * What runs the private agent's script: node by default. The extension host passes its own
   * executable with ELECTRON_RUN_AS_NODE, behind `sudo -n` or pkexec for root mode.
   */
  launcher?: { command: string[]; env?: NodeJS.ProcessEnv };
  /** More arguments for a private agent (`--oci-runtime runc`, say). */
  agentArgs?: string[];
  /** Never start a private agent: only sockets. */
  socketOnly?: boolean;
  /** Each line a private agent writes on stderr (its human log). */
  onAgentOutput?: (line: string) => void;
}

export interface Connected {
  client: AgentClient;
  info: InitializeResult;
  via: string;
  /** The private agent's process, if this client started one. */
  agentPid?: number;
  /** Closes the connection; for a private agent, also waits until it has exited (and released the state dir). */
  close(): Promise<void>;
}

const CLIENT_NAME = "paddock-cli";

export async function connectToAgent(options: ConnectOptions): Promise<Connected> {
  const clientName = options.clientName ?? CLIENT_NAME;
  const explicit = options.socket || process.env.PADDOCK_SOCKET;
  if (explicit) {
    return viaSocket(explicit, clientName).catch((err: NodeJS.ErrnoException) => {
      if (err instanceof PaddockError) throw err;
      throw new PaddockError("E_AGENT_UNREACHABLE", `cannot connect to the agent at ${explicit}: ${err.code ?? err.message}`, hintFor(err));
    });
  }
  for (const socket of candidateSockets(options.stateDir)) {
    try {
      const connected = await viaSocket(socket, clientName);
      if (samePath(connected.info.agent.stateDir, options.stateDir)) return connected;
      await connected.close(); // an agent, but for another state dir
    } catch {
      // not there, or not ours: try the next
    }
  }
  if (options.socketOnly) {
    throw new PaddockError("E_AGENT_UNREACHABLE", `no agent serves ${options.stateDir} on a socket`, "start one with `paddock agent` (or `npm start`), or let Paddock start its own");
  }
  return viaStdio(options, clientName);
}

function candidateSockets(stateDir: string): string[] {
  const found: string[] = [];
  try {
    const info = JSON.parse(fs.readFileSync(agentInfoFile(stateDir), "utf8")) as AgentInfo;
    if (typeof info.socket === "string") found.push(info.socket);
  } catch {
    // no agent serves this state dir on a socket
  }
  found.push(defaultSocketPath());
  return [...new Set(found)].filter((p) => fs.existsSync(p));
}

function samePath(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  return real(a) === real(b);
}

/** An agent that accepts a connection but does not answer within this is not used. */
const INITIALIZE_TIMEOUT_MS = 5_000;
const STDIO_INITIALIZE_TIMEOUT_MS = 60_000;

async function viaSocket(socket: string, clientName: string): Promise<Connected> {
  const client = await AgentClient.connect(socket);
  try {
    const info = await within(client.initialize(clientName), INITIALIZE_TIMEOUT_MS);
    if (info === null) throw new PaddockError("E_AGENT_UNREACHABLE", `the agent at ${socket} did not answer`, "is it stuck? see its log");
    return { client, info, via: `socket ${socket}`, close: async () => client.close() };
  } catch (err) {
    client.close();
    throw err;
  }
}

async function viaStdio(options: ConnectOptions, clientName: string): Promise<Connected> {
  const [program, ...prefix] = options.launcher?.command ?? [process.execPath];
  const args = [...prefix, options.selfScript, "agent", "--stdio", "--state-dir", options.stateDir, "--log-level", options.logLevel, "--stderr-log-level", "warn", ...(options.agentArgs ?? [])];
  const child = spawn(program!, args, { stdio: ["pipe", "pipe", "pipe"], env: options.launcher?.env ?? process.env });
  child.once("error", () => undefined); // a launcher that cannot start shows as the closed connection
  child.stdin.on("error", () => undefined); // writes after the agent died: the closed connection says why
  let stderr = "";
  let partial = "";
  child.stderr.on("data", (d: Buffer) => {
    const text = d.toString("utf8");
    stderr = (stderr + text).slice(-16 * 1024);
    if (!options.onAgentOutput) return;
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line) options.onAgentOutput(line);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const client = new AgentClient(child.stdout, child.stdin, {
    // If the private agent dies (e.g. the state dir is locked), its own message says why.
    explainClose: async () => {
      const code = await within(exited, 2000);
      const lines = stderr.trim().split("\n").filter(Boolean);
      const message = lines.find((l) => l.startsWith("paddock: "))?.slice("paddock: ".length) ?? lines.pop();
      const hint = lines.find((l) => l.trim().startsWith("hint: "))?.trim().slice("hint: ".length);
      if (!message) return undefined;
      return new PaddockError("E_AGENT_UNREACHABLE", `the agent stopped${code === null ? "" : ` (exit code ${code})`}: ${message}`, hint ?? "run `paddock agent --stdio` to see its output");
    },
  });
  // A launcher may ask for a password (pkexec): a minute, then it counts as failed.
  const info = await within(client.initialize(clientName), STDIO_INITIALIZE_TIMEOUT_MS).catch((err: unknown) => {
    child.kill("SIGKILL");
    throw err;
  });
  if (info === null) {
    child.kill("SIGKILL");
    throw new PaddockError("E_AGENT_UNREACHABLE", "the agent did not answer within a minute", "if the agent starts through sudo or pkexec, it may be waiting for a password");
  }
  return {
    client,
    info,
    via: "a private agent over stdio",
    agentPid: child.pid,
    // The next command may need the state dir's lock: let this agent finish first.
    close: async () => {
      client.close();
      await within(exited, 5000);
    },
  };
}

/** The promise's outcome, or null after `ms`; the timer never keeps the process alive. */
function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(null), ms);
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function hintFor(err: NodeJS.ErrnoException): string {
  if (err.code === "EACCES") return "the socket is only for its owner (or its group): run as that user, or ask for --socket-group";
  if (err.code === "ENOENT" || err.code === "ECONNREFUSED") return "start the agent with `paddock agent --socket PATH` (or `npm start`)";
  return "check the socket path";
}
