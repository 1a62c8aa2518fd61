/** A real agent on a socket with a fresh state dir, and typed clients of it. */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { AgentClient } from "../../protocol/client";
import { startSocketAgent, tempDir, type AgentProcess } from "./agent-process";
import { cgroupScope } from "../../agent/runtime/cgroup";
import { mountPoints } from "../../agent/changeset/overlay";
import type { PaddockError } from "../../protocol/errors";

export interface Fixture {
  base: string;
  stateDir: string;
  socketPath: string;
  agent: AgentProcess;
  client(): Promise<AgentClient>;
  restart(): Promise<void>;
  /** Stops the agent, leaving its sandboxes as they are. */
  stopAgent(): Promise<void>;
  stop(): Promise<void>;
}

const fixtures = new Set<Fixture>();
// Whatever a failed test left running is stopped (and its sandboxes deleted) when its file ends.
after(async () => {
  for (const fixture of fixtures) await fixture.stop().catch(() => undefined);
});

export async function startFixture(extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}, launcher?: string[]): Promise<Fixture> {
  const base = tempDir("paddock-sbx-");
  fs.chmodSync(base, 0o755);
  const stateDir = path.join(base, "state");
  const socketPath = path.join(base, "run", "agent.sock");
  const clients: AgentClient[] = [];
  const fixture: Fixture = {
    base,
    stateDir,
    socketPath,
    agent: await startSocketAgent(stateDir, socketPath, extraArgs, env, launcher),
    async client() {
      const client = await AgentClient.connect(socketPath);
      clients.push(client);
      await client.initialize("test");
      return client;
    },
    async restart() {
      fixture.agent = await startSocketAgent(stateDir, socketPath, extraArgs, env, launcher);
    },
    async stopAgent() {
      for (const c of clients.splice(0)) c.close();
      await fixture.agent.stop();
    },
    /** Deletes every sandbox left (a failed test's too), then stops the agent. */
    async stop() {
      fixtures.delete(fixture);
      if (fixture.agent.child.exitCode === null && fixture.agent.child.signalCode === null) {
        const admin = await fixture.client();
        for (const s of (await admin.request("sandbox/list")).sandboxes) await admin.request("sandbox/delete", { id: s.id });
      }
      for (const c of clients) c.close();
      await fixture.agent.stop();
    },
  };
  fixtures.add(fixture);
  return fixture;
}

/** A workspace with a few files, owned by `uid` (root by default). */
export function makeWorkspace(base: string, name = "ws", uid = 0, gid = 0): string {
  const ws = path.join(base, name);
  fs.mkdirSync(path.join(ws, "src"), { recursive: true });
  fs.writeFileSync(path.join(ws, "README.md"), "# demo\n");
  fs.writeFileSync(path.join(ws, "src", "main.c"), "int main(void) { return 0; }\n");
  fs.writeFileSync(path.join(ws, "delete-me.txt"), "bye\n");
  if (uid !== 0) {
    for (const p of [ws, path.join(ws, "src"), path.join(ws, "README.md"), path.join(ws, "src", "main.c"), path.join(ws, "delete-me.txt")]) fs.chownSync(p, uid, gid);
  }
  return ws;
}

/** A digest of every path, type, mode, owner and content under `dir`. */
export function treeHash(dir: string): string {
  const hash = createHash("sha256");
  const walk = (rel: string) => {
    const full = path.join(dir, rel);
    const st = fs.lstatSync(full);
    hash.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
    if (st.isDirectory()) for (const name of fs.readdirSync(full).sort()) walk(path.join(rel, name));
    else if (st.isSymbolicLink()) hash.update(fs.readlinkSync(full));
    else hash.update(fs.readFileSync(full));
  };
  walk(".");
  return hash.digest("hex");
}

/** Sandboxes' mounts under `dir` (not the agent's own shared bind of its sandboxes folder, which it keeps while it runs). */
export function mountsUnder(dir: string): string[] {
  return mountPoints().filter((p) => p.startsWith(dir) && !p.endsWith("/sandboxes"));
}

/** The directory of the cgroups of a state dir's sandboxes (v1 pids hierarchy, or v2). */
export function cgroupParent(stateDir: string): string {
  const v1 = path.join("/sys/fs/cgroup/pids/paddock", cgroupScope(stateDir));
  return fs.existsSync(v1) ? v1 : path.join("/sys/fs/cgroup/paddock", cgroupScope(stateDir));
}

/** The cgroup.procs of one sandbox. */
export function cgroupProcs(stateDir: string, id: string): string {
  return path.join(cgroupParent(stateDir), id, "cgroup.procs");
}

/** Sandbox cgroups of a state dir that exist on the machine. */
export function sandboxCgroups(stateDir: string): string[] {
  try {
    return fs.readdirSync(cgroupParent(stateDir)).filter((n) => n.startsWith("sbx-"));
  } catch {
    return [];
  }
}

export function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const value = probe();
      if (value !== undefined) return resolve(value);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 25);
    };
    tick();
  });
}

/** One agent (and one client of it) for a whole test file, started before its tests. */
export function fixtureForFile(extraArgs: string[] = []): { readonly fx: Fixture; readonly client: AgentClient } {
  let fx: Fixture | undefined;
  let client: AgentClient | undefined;
  before(async () => {
    fx = await startFixture(extraArgs);
    client = await fx.client();
  });
  return {
    get fx() {
      return fx!;
    },
    get client() {
      return client!;
    },
  };
}

/** Asserts that a request is refused with `code`, a hint, and (optionally) a message matching `pattern`. */
export async function refused(promise: Promise<unknown>, code: string, pattern?: RegExp): Promise<PaddockError> {
  const err = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e as PaddockError,
  );
  assert.equal(err.code, code, err.message);
  assert.ok(err.hint, "every refusal carries a hint");
  if (pattern) assert.match(err.message, pattern);
  return err;
}

/**
 * A terminal in a sandbox as a user sees it: its first size, a resize reaching the program,
 * ^C ending it as SIGINT would (130, nothing printed after), and a plain exit code. Output
 * is kept per pid from the start: it can arrive in the same read as process/spawn's answer.
 */
/** A terminal's size, ^C and exit code; `loginShell`: the shell the sandbox's login shell must be. */
export async function checkTerminal(client: AgentClient, id: string, loginShell: string): Promise<void> {
  const outputs = new Map<number, string>();
  const exits = new Map<number, number | null>();
  client.onNotification((method, params) => {
    const p = params as { pid: number; data?: string; exitCode?: number | null };
    if (method === "process/output") outputs.set(p.pid, (outputs.get(p.pid) ?? "") + p.data);
    if (method === "process/exit") exits.set(p.pid, p.exitCode ?? null);
  });
  const exitOf = (pid: number) => waitFor(`the exit of ${pid}`, () => (exits.has(pid) ? exits.get(pid) : undefined));
  // The size is printed when SIGWINCH arrives, that is once the terminal has it (a runtime that
  // relays resizes, as runc does, may pass keystrokes on before a resize).
  const { pid } = await client.request("process/spawn", { id, argv: ["sh", "-c", "trap 'stty size' WINCH; stty size; while :; do sleep 0.1; done; echo not-interrupted"], pty: { cols: 90, rows: 30 } });
  const output = () => outputs.get(pid) ?? "";
  await waitFor("the first size", () => (output().includes("30 90") ? true : undefined));
  await client.request("process/resize", { pid, cols: 120, rows: 40 });
  await waitFor("the new size", () => (output().includes("40 120") ? true : undefined));
  await client.request("process/write", { pid, data: "\x03" });
  assert.equal(await exitOf(pid), 130, `^C ends it as SIGINT would (output: ${JSON.stringify(output())})`);
  assert.doesNotMatch(output(), /not-interrupted/);
  const three = await client.request("process/spawn", { id, argv: ["sh", "-c", "exit 3"], pty: { cols: 80, rows: 24 } });
  assert.equal(await exitOf(three.pid), 3);
  // A terminal without argv: the sandbox's own login shell, whatever the host has.
  const login = await client.request("process/spawn", { id, shell: true, pty: { cols: 80, rows: 24 } });
  await client.request("process/write", { pid: login.pid, data: 'echo "shell=$SHELL $0"; exit 7\n' });
  assert.equal(await exitOf(login.pid), 7, outputs.get(login.pid));
  assert.match(outputs.get(login.pid) ?? "", new RegExp(`shell=${loginShell} `), "the sandbox's shell, chosen inside it");
}
