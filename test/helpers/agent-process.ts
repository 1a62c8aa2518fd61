/** Runs the built agent (dist/paddock.js) as a real process, as users and the extension do. */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { RawPeer } from "./raw-peer";
import { isListening } from "../../protocol/client";
import { mountPoints } from "../../agent/changeset/overlay";

export const REPO = path.resolve(__dirname, "..", "..");
export const PADDOCK = path.join(REPO, "dist", "paddock.js");

const tempDirs: string[] = [];
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
  for (const dir of tempDirs) {
    // Containers a failed test left: their PID 1 and cgroups would outlive the state dir.
    for (const root of ["state/runc", "state/crun"].map((r) => path.join(dir, r)).filter((r) => fs.existsSync(r))) {
      for (const name of fs.readdirSync(root)) spawnSync(path.basename(root), ["--root", root, "delete", "--force", name]);
    }
    // Never let the removal walk into a mount a failed test left behind.
    for (const point of mountPointsUnder(dir).reverse()) spawnSync("umount", ["-l", point]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function mountPointsUnder(dir: string): string[] {
  return mountPoints().filter((p) => p.startsWith(dir + "/"));
}

/** A fresh directory, removed when the test process exits. */
export function tempDir(prefix = "paddock-test-"): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export interface AgentProcess {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

export interface AgentOptions {
  uid?: number;
  gid?: number;
  env?: NodeJS.ProcessEnv;
  script?: string;
  /** A command the agent runs under, exec'ing it (`nsenter --net=FILE --`, say). */
  launcher?: string[];
}

export function startAgent(args: string[], options: AgentOptions = {}): AgentProcess {
  const command = [...(options.launcher ?? []), process.execPath, options.script ?? PADDOCK, "agent", ...args];
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ["pipe", "pipe", "pipe"],
    uid: options.uid,
    gid: options.gid,
    env: { ...process.env, ...options.env },
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  // A test that fails half-way must not leave an agent that keeps the test process alive.
  running.add(child);
  child.once("exit", () => running.delete(child));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return {
    child,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

let publicCopy: string | undefined;

/**
 * A copy of the built agent that any user can run (the checkout itself may sit in a
 * directory other users cannot enter): dist/ and the two native modules it loads.
 */
export function publicAgentScript(): string {
  if (publicCopy) return publicCopy;
  const dir = tempDir("paddock-public-");
  fs.chmodSync(dir, 0o755);
  const copy = (from: string, to = from) => fs.cpSync(path.join(REPO, from), path.join(dir, to), { recursive: true });
  copy("dist");
  copy("node_modules/koffi");
  copy("node_modules/@koromix"); // koffi's native part
  for (const part of ["package.json", "lib", "build/Release"]) copy(path.join("node_modules/node-pty", part));
  spawnSync("chmod", ["-R", "a+rX", dir]);
  publicCopy = path.join(dir, "dist", "paddock.js");
  return publicCopy;
}

/** Starts an agent over stdio and returns a raw peer on its stdin/stdout. */
export function startStdioAgent(stateDir: string): AgentProcess & { peer: RawPeer } {
  const agent = startAgent(["--stdio", "--state-dir", stateDir, "--log-level", "debug"]);
  return { ...agent, peer: new RawPeer(agent.child.stdout!, agent.child.stdin!) };
}

/**
 * Starts an agent on a socket and waits until it is ready as clients find it: the socket
 * accepts connections and agent.json names it (written just after the socket listens).
 */
export async function startSocketAgent(stateDir: string, socketPath: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}, launcher?: string[]): Promise<AgentProcess> {
  const agent = startAgent(["--socket", socketPath, "--state-dir", stateDir, "--log-level", "debug", ...extra], { env, ...(launcher ? { launcher } : {}) });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (agent.child.exitCode !== null) throw new Error(`agent exited early: ${agent.stderr()}`);
    if (fs.existsSync(socketPath) && fs.existsSync(path.join(stateDir, "agent.json")) && (await isListening(socketPath))) return agent;
    await new Promise((r) => setTimeout(r, 25));
  }
  await agent.stop();
  throw new Error(`agent did not listen on ${socketPath}: ${agent.stderr()}`);
}

export async function socketPeer(socketPath: string): Promise<{ peer: RawPeer; socket: net.Socket }> {
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { peer: new RawPeer(socket, socket), socket };
}

/** Runs the CLI to completion. */
export function runCli(args: string[], options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PADDOCK, ...args], { uid: options.uid, gid: options.gid, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}
