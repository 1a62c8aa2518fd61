/**
 * Where clients find an agent: the default state dir and socket, and the file an agent
 * serving a socket writes in its state dir to say where it listens.
 */
import * as os from "node:os";
import * as path from "node:path";

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (isRoot()) return "/var/lib/paddock";
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(os.homedir(), ".local", "state");
  return path.join(base, "paddock");
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (isRoot()) return "/run/paddock/agent.sock";
  const runtime = env.XDG_RUNTIME_DIR && path.isAbsolute(env.XDG_RUNTIME_DIR) ? env.XDG_RUNTIME_DIR : undefined;
  return runtime ? path.join(runtime, "paddock", "agent.sock") : path.join(defaultStateDir(env), "run", "agent.sock");
}

/** What an agent serving a socket says of itself, in STATE_DIR/agent.json. */
export interface AgentInfo {
  pid: number;
  version: string;
  socket: string;
  startedAt: string;
}

/** Written while an agent serves a socket, so clients can find it. */
export function agentInfoFile(stateDir: string): string {
  return path.join(stateDir, "agent.json");
}
