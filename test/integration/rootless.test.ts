/**
 * Rootless mode: the agent itself runs as an unprivileged user. Overlays are mounted inside
 * a user namespace; the same protocol, the same isolation, no root anywhere.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, publicAgentScript, startAgent, tempDir, type AgentProcess } from "../helpers/agent-process";
import { makeWorkspace, treeHash, waitFor } from "../helpers/sandbox-fixture";
import { AgentClient, isListening } from "../../protocol/client";
import type { PaddockError } from "../../protocol/errors";

const USER = "paddock-test";
let uid = 0;
let gid = 0;
let home = "";
let socketPath = "";
let stateDir = "";
let agent: AgentProcess;
let py = "";

interface Answer {
  result?: Record<string, unknown> & { stdout?: string; state?: string; id?: string };
  error?: { message: string; data?: { code: string; hint?: string } };
}

/** Runs protocol calls as the unprivileged user, with the Python client. */
function callAs(calls: [string, unknown][]): Answer[] {
  const r = spawnSync("setpriv", [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "/usr/bin/python3", py, socketPath, "calls", JSON.stringify(calls)], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Answer[];
}
const call = (method: string, params: unknown) => callAs([[method, params]])[0]!;

async function startRootlessAgent(): Promise<AgentProcess> {
  const a = startAgent(["--socket", socketPath, "--state-dir", stateDir, "--log-level", "debug"], { uid, gid, env: { HOME: home, XDG_RUNTIME_DIR: "" }, script: publicAgentScript() });
  const deadline = Date.now() + 10_000;
  while (!(await isListening(socketPath))) {
    if (a.child.exitCode !== null) throw new Error(`the rootless agent exited: ${a.stderr()}`);
    if (Date.now() > deadline) throw new Error(`the rootless agent does not listen: ${a.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return a;
}

before(async () => {
  if (spawnSync("id", [USER]).status !== 0) execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", USER]);
  uid = Number(execFileSync("id", ["-u", USER]).toString());
  gid = Number(execFileSync("id", ["-g", USER]).toString());
  home = tempDir("paddock-rootless-");
  fs.chownSync(home, uid, gid);
  fs.chmodSync(home, 0o755);
  socketPath = path.join(home, "run", "agent.sock");
  stateDir = path.join(home, "state");
  py = path.join(home, "client.py");
  fs.copyFileSync(path.join(REPO, "test", "clients", "paddock_client.py"), py);
  fs.chmodSync(py, 0o755);
  agent = await startRootlessAgent();
});

after(async () => {
  await agent.stop();
});

function userWorkspace(name: string): string {
  const ws = makeWorkspace(home, name, uid, gid);
  return ws;
}

test("rootless: the agent reports itself rootless and its check says the process runtime works", () => {
  const [init, check] = callAs([["system/check", {}], ["system/check", {}]]);
  assert.ok(init?.result);
  const result = check!.result as unknown as { runtimes: { process: { available: boolean; missing: string[] } }; checks: { name: string; ok: boolean }[] };
  assert.equal(result.checks.find((c) => c.name === "overlayfs-rootless")?.ok, true);
  assert.deepEqual(result.runtimes.process, { available: true, missing: [], using: "overlayfs in a user namespace" });
});

test("rootless: container and VM sandboxes are refused with the reason, and system/check gives the same reason", () => {
  const [check, created] = callAs([["system/check", {}], ["sandbox/create", { workspace: userWorkspace("ws-rl-container"), runtime: "container" }]]);
  const container = (check!.result as unknown as { runtimes: { container: { available: boolean; reason?: string; hint?: string } } }).runtimes.container;
  assert.equal(container.available, false);
  assert.match(container.reason ?? "", /need the agent as root/);
  assert.equal(created!.error?.data?.code, "E_RUNTIME_UNAVAILABLE");
  assert.equal(created!.error?.message, container.reason);
  assert.match(created!.error?.data?.hint ?? "", /as root/);
  assert.equal(created!.error?.data?.hint, container.hint, "the same hint as system/check's");
  const [, vm] = callAs([["system/check", {}], ["sandbox/create", { workspace: userWorkspace("ws-rl-vm"), runtime: "vm" }]]);
  assert.equal(vm!.error?.data?.code, "E_RUNTIME_UNAVAILABLE");
  assert.match(vm!.error?.message ?? "", /VM sandboxes need the agent as root/);
});

test("rootless: writes land only in the sandbox; the program runs as the user, sees only lo and a read-only host", () => {
  const ws = userWorkspace("ws-rl");
  const before = treeHash(ws);
  const created = call("sandbox/create", { workspace: ws });
  assert.ok(created.result, JSON.stringify(created));
  const id = created.result.id!;
  assert.equal(created.result.ownerUid, uid);
  const run = call("sandbox/exec", { id, argv: ["sh", "-c", "id -u; echo more >> README.md; echo new > new.txt; rm delete-me.txt; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; touch /etc/x 2>/dev/null || echo ro; ls /proc/self/fd | wc -l"] });
  assert.equal(run.result!.stdout, `${uid}\nlo\nro\n4\n`);
  assert.equal(treeHash(ws), before, "the real workspace is unchanged");
  const upper = path.join(stateDir, "sandboxes", id, "upper");
  assert.equal(fs.statSync(path.join(upper, "new.txt")).uid, uid, "files the sandbox made belong to the user");
  // The rootless upper dir speaks user.overlay.* attributes: changes read them too.
  const [, changes] = callAs([
    ["sandbox/exec", { id, argv: ["sh", "-c", "rm -rf src && mkdir src && echo x > src/other.c"] }],
    ["sandbox/changes", { id }],
  ]);
  const listed = (changes!.result as unknown as { changes: { kind: string; path: string }[] }).changes.map((c) => `${c.kind} ${c.path}`);
  assert.deepEqual(listed, ["modified README.md", "deleted delete-me.txt", "added new.txt", "deleted src/main.c", "added src/other.c"]);
  const [stopped, started, kept] = callAs([["sandbox/stop", { id }], ["sandbox/start", { id }], ["sandbox/exec", { id, argv: ["cat", "new.txt"] }]]);
  assert.equal(stopped!.result!.state, "stopped");
  assert.equal(started!.result!.state, "running");
  assert.equal(kept!.result!.stdout, "new\n");
  assert.deepEqual(call("sandbox/delete", { id }).result, { id, deleted: true });
  assert.equal(fs.existsSync(path.join(stateDir, "sandboxes", id)), false);
});

test("rootless: limits are refused with a clear error (no cgroups to enforce them)", () => {
  const answer = call("sandbox/create", { workspace: userWorkspace("ws-rl-limits"), limits: { pids: 50 } });
  assert.equal(answer.error?.data?.code, "E_CGROUP");
  assert.match(answer.error?.data?.hint ?? "", /root|without limits/);
  assert.deepEqual((call("sandbox/list", {}).result as { sandboxes: unknown[] }).sandboxes.filter((s) => (s as { workspace: string }).workspace.endsWith("ws-rl-limits")), []);
});

test("rootless: kill -9 of the agent ends the namespace holders; the restart mounts again with the changes", async () => {
  const ws = userWorkspace("ws-rl-crash");
  const id = call("sandbox/create", { workspace: ws }).result!.id!;
  call("sandbox/exec", { id, argv: ["sh", "-c", "echo before-crash > crash.txt"] });
  const holders = () => execFileSync("ps", ["-u", String(uid), "-o", "pid=,args="], { encoding: "utf8" }).split("\n").filter((l) => l.includes("sleep infinity"));
  assert.equal(holders().length, 1, `one holder for one running sandbox: ${execFileSync("ps", ["-u", String(uid), "-o", "pid=,args="], { encoding: "utf8" })}`);
  agent.child.kill("SIGKILL");
  await agent.exited;
  await waitFor("the holder to die with the agent", () => (holders().length === 0 ? true : undefined));
  agent = await startRootlessAgent();
  const [get, read] = callAs([["sandbox/get", { id }], ["sandbox/exec", { id, argv: ["cat", "crash.txt"] }]]);
  assert.equal(get!.result!.state, "running");
  assert.equal(read!.result!.stdout, "before-crash\n");
  assert.match(fs.readFileSync(path.join(stateDir, "logs", "agent.log"), "utf8"), /re-mounted a sandbox whose mount was gone/);
  call("sandbox/delete", { id });
  assert.deepEqual(holders(), []);
});

test("rootless: approve and reject work as for root (the merged view is reached through the holder)", () => {
  const ws = userWorkspace("ws-rl-review");
  const created = call("sandbox/create", { workspace: ws });
  const id = created.result!.id!;
  const [, approved, rejected, inside, left] = callAs([
    ["sandbox/exec", { id, argv: ["sh", "-c", "echo more >> README.md; echo new > new.txt; rm delete-me.txt"] }],
    ["sandbox/approve", { id, paths: ["README.md", "new.txt"] }],
    ["sandbox/reject", { id, paths: ["delete-me.txt"] }],
    ["sandbox/exec", { id, argv: ["cat", "delete-me.txt"] }],
    ["sandbox/changes", { id }],
  ]);
  assert.deepEqual((approved!.result as unknown as { applied: string[] }).applied, ["README.md", "new.txt"], JSON.stringify(approved));
  assert.deepEqual((rejected!.result as unknown as { rejected: string[] }).rejected, ["delete-me.txt"], JSON.stringify(rejected));
  assert.equal(inside!.result!.stdout, fs.readFileSync(path.join(ws, "delete-me.txt"), "utf8"), "the sandbox has the workspace's file back");
  assert.deepEqual((left!.result as unknown as { changes: unknown[] }).changes, []);
  assert.equal(fs.readFileSync(path.join(ws, "new.txt"), "utf8"), "new\n");
  assert.equal(fs.statSync(path.join(ws, "new.txt")).uid, uid, "approved files belong to the user");
  call("sandbox/delete", { id });
});

test("rootless: another uid (root here, who can reach any socket) is refused a sandbox, with the reason", async () => {
  const client = await AgentClient.connect(socketPath);
  try {
    await client.initialize("root-at-a-user-agent");
    const err = await client.request("sandbox/create", { workspace: userWorkspace("ws-rl-foreign") }).then(
      () => assert.fail("a rootless agent made a sandbox for another uid"),
      (e: PaddockError) => e,
    );
    assert.equal(err.code, "E_PERMISSION_DENIED", err.message);
    assert.match(err.message, /its own user only/);
  } finally {
    client.close();
  }
});
