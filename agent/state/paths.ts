/** Where state and sockets live unless the user says otherwise. */
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

/** Files inside a state dir. */
export function stateFiles(stateDir: string) {
  return {
    lock: path.join(stateDir, "agent.lock"),
    /** Written while an agent serves a socket, so clients can find it. */
    agentInfo: path.join(stateDir, "agent.json"),
    log: path.join(stateDir, "logs", "agent.log"),
    cache: path.join(stateDir, "cache"),
    checkCache: path.join(stateDir, "cache", "system-check.json"),
    tmp: path.join(stateDir, "tmp"),
    sandboxes: path.join(stateDir, "sandboxes"),
    images: path.join(stateDir, "images"),
  };
}
