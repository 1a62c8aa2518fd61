/**
 * Defaults that protect the host: every sandbox gets a pids limit, a memory limit (where the
 * agent has cgroups to enforce it) and a bounded /tmp unless its owner asks for more, and
 * sandbox/get says which limits are in force and which are not. A real root agent on a
 * socket, a real user made with useradd, real cgroups, bwrap and runc; a rootless agent too.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { publicAgentScript, startAgent, tempDir, type AgentProcess } from "../helpers/agent-process";
import { callAs, ensureUser, type CallResult, type TestUser } from "../helpers/users";
import { fixtureForFile, makeWorkspace, refused } from "../helpers/sandbox-fixture";
import { cgroupScope } from "../../agent/runtime/cgroup";
import { isListening } from "../../protocol/client";

const USER = "paddock-limits";
const GROUP = "paddock-limits-grp";
const MiB = 1024 * 1024;

const shared = fixtureForFile(["--socket-group", GROUP]);
let user: TestUser;

before(() => {
  user = ensureUser(USER, GROUP);
});


interface Limits {
  memoryMiB?: number;
  pids?: number;
  cpus?: number;
  tmpMiB?: number;
}
interface SandboxAnswer {
  id: string;
  limits: Limits;
  limitsUnavailable?: string[];
}
interface ExecAnswer {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  limitsHit: string[];
}
type Answer = CallResult;

function resultOf<T>(answer: Answer | undefined): T {
  assert.ok(answer?.result, JSON.stringify(answer));
  return answer.result as T;
}

/** Creates a sandbox of a fresh workspace of the test user's, as that user; returns what sandbox/get says of it. */
function userSandbox(name: string, params: Record<string, unknown> = {}): SandboxAnswer {
  const ws = makeWorkspace(shared.fx.base, name, user.uid, user.gid);
  const [created] = callAs(shared.fx.socketPath, user, [["sandbox/create", { workspace: ws, ...params }]]);
  const { id } = resultOf<SandboxAnswer>(created);
  const [got] = callAs(shared.fx.socketPath, user, [["sandbox/get", { id }]]);
  return resultOf<SandboxAnswer>(got);
}

function execAs(id: string, script: string, socketPath = shared.fx.socketPath, who: Pick<TestUser, "uid" | "gid"> = user): ExecAnswer {
  const [done] = callAs(socketPath, who, [["sandbox/exec", { id, argv: ["sh", "-c", script], timeoutMs: 60_000 }]]);
  return resultOf<ExecAnswer>(done);
}

function deleteAs(id: string, socketPath = shared.fx.socketPath, who = user): void {
  resultOf(callAs(socketPath, who, [["sandbox/delete", { id }]])[0]);
}

/** A file of a sandbox's cgroup (v1 hierarchy of `controller`, or the v2 tree). */
function cgroupFile(id: string, controller: "pids" | "memory", v1: string, v2: string): string {
  const scope = cgroupScope(shared.fx.stateDir);
  const first = path.join("/sys/fs/cgroup", controller, "paddock", scope, id, v1);
  return fs.existsSync(first) ? first : path.join("/sys/fs/cgroup/paddock", scope, id, v2);
}
const pidsMax = (id: string) => fs.readFileSync(cgroupFile(id, "pids", "pids.max", "pids.max"), "utf8").trim();
const memoryMax = (id: string) => Number(fs.readFileSync(cgroupFile(id, "memory", "memory.limit_in_bytes", "memory.max"), "utf8").trim());

/** Sizes in KiB of file systems inside a sandbox, by mount point (df -P -k). */
function sizesInside(id: string, points: string[], socketPath?: string, who?: { uid: number; gid: number }): Record<string, number> {
  const run = execAs(id, `df -P -k ${points.join(" ")}`, socketPath, who);
  assert.equal(run.exitCode, 0, run.stderr);
  const sizes: Record<string, number> = {};
  for (const line of run.stdout.trim().split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    sizes[fields[5]!] = Number(fields[1]);
  }
  return sizes;
}

test("no limits asked: a process sandbox has a pids limit, a memory limit and a bounded /tmp, and sandbox/get says so", () => {
  const sandbox = userSandbox("ws-defaults");
  assert.equal(sandbox.limits.pids, 4096, JSON.stringify(sandbox));
  assert.equal(sandbox.limits.tmpMiB, 1024, JSON.stringify(sandbox));
  const memoryMiB = sandbox.limits.memoryMiB ?? 0;
  assert.ok(memoryMiB >= 16 && memoryMiB <= os.totalmem() / MiB / 2, `a share of the host's memory: ${JSON.stringify(sandbox)}`);
  assert.equal(sandbox.limits.cpus, undefined, "no CPU limit unless asked");
  assert.equal(sandbox.limitsUnavailable, undefined, "a root agent enforces them all");
  // What is reported is what is in force.
  assert.equal(pidsMax(sandbox.id), "4096");
  assert.equal(memoryMax(sandbox.id), memoryMiB * MiB);
  assert.deepEqual(sizesInside(sandbox.id, ["/tmp"]), { "/tmp": 1024 * 1024 });
  deleteAs(sandbox.id);
});

test("the pids limit stops a fork loop, reported as limitsHit pids; unasked, it is 4096", () => {
  // Thousands of forks take a minute here: the default is read where the kernel enforces it.
  const unasked = userSandbox("ws-forks-default");
  assert.equal(pidsMax(unasked.id), "4096");
  deleteAs(unasked.id);
  const sandbox = userSandbox("ws-forks", { limits: { pids: 24 } });
  assert.equal(pidsMax(sandbox.id), "24");
  const forks = execAs(sandbox.id, "for i in $(seq 60); do sleep 3 & done; wait");
  assert.deepEqual(forks.limitsHit, ["pids"], JSON.stringify(forks));
  assert.match(forks.stderr, /fork|resource/i);
  deleteAs(sandbox.id);
});

test("writing more than /tmp's size into /tmp fails with ENOSPC; /dev/shm and /run are bounded and /dev is read-only", () => {
  const sandbox = userSandbox("ws-tmp");
  // 1100 MiB into the default 1 GiB /tmp (the tmpfs goes with the command).
  const fill = execAs(sandbox.id, "head -c 1100m /dev/zero > /tmp/fill; echo status $?; du -k /tmp/fill");
  assert.match(fill.stdout, /^status [1-9]/m, JSON.stringify(fill));
  assert.match(fill.stderr, /No space left on device/);
  assert.ok(Number(fill.stdout.split("\n")[1]!.split("\t")[0]) <= 1024 * 1024, fill.stdout);
  const small = sizesInside(sandbox.id, ["/dev/shm", "/run"]);
  assert.ok(small["/dev/shm"]! <= 64 * 1024 && small["/run"]! <= 64 * 1024, JSON.stringify(small));
  const dev = execAs(sandbox.id, "touch /dev/fill 2>&1; echo x > /dev/null && echo null-ok; echo y > /dev/shm/mine && echo shm-ok");
  assert.match(dev.stdout, /Read-only file system/);
  assert.match(dev.stdout, /null-ok\nshm-ok/);
  deleteAs(sandbox.id);
});

test("a user raises the limits through the create request, and they are in force", () => {
  const raised = { pids: 8192, tmpMiB: 1536, memoryMiB: Math.floor(os.totalmem() / MiB) - 256, cpus: 1.5 };
  const sandbox = userSandbox("ws-raised", { limits: raised });
  assert.deepEqual(sandbox.limits, raised);
  assert.equal(pidsMax(sandbox.id), "8192");
  assert.equal(memoryMax(sandbox.id), raised.memoryMiB * MiB);
  assert.deepEqual(sizesInside(sandbox.id, ["/tmp"]), { "/tmp": 1536 * 1024 });
  deleteAs(sandbox.id);
});

test("limits beyond the host's memory, and those a runtime does not have, are refused before anything is made", async () => {
  const { client, fx } = shared;
  const hostMiB = Math.floor(os.totalmem() / MiB);
  const err = await refused(client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-huge"), limits: { memoryMiB: hostMiB + 1024 } }), "E_INVALID_PARAMS", /memory/);
  assert.equal(err.extra.field, "limits.memoryMiB");
  await refused(client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-huge-tmp"), limits: { tmpMiB: hostMiB + 1024 } }), "E_INVALID_PARAMS", /tmp/);
  await refused(client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-vm-tmp"), runtime: "vm", limits: { tmpMiB: 64 } }), "E_INVALID_PARAMS", /\/tmp/);
  await refused(client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-vm-mem"), runtime: "vm", limits: { memoryMiB: hostMiB + 1024 } }), "E_INVALID_PARAMS", /memory/);
  assert.deepEqual((await client.request("sandbox/list")).sandboxes, []);
});

test("a container sandbox has the same defaults: pids and memory in its cgroup, a bounded /tmp; a smaller /tmp fills with ENOSPC", async () => {
  const { client, fx } = shared;
  const sandbox = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-container"), runtime: "container" });
  assert.equal(sandbox.limits.pids, 4096, JSON.stringify(sandbox));
  assert.equal(sandbox.limits.tmpMiB, 1024, JSON.stringify(sandbox));
  assert.ok((sandbox.limits.memoryMiB ?? 0) > 0, JSON.stringify(sandbox));
  assert.equal(pidsMax(sandbox.id), "4096");
  assert.equal(memoryMax(sandbox.id), (sandbox.limits.memoryMiB ?? 0) * MiB);
  const df = await client.request("sandbox/exec", { id: sandbox.id, argv: ["sh", "-c", "df -k /tmp | tail -n 1"] });
  assert.equal(df.stdout.trim().split(/\s+/)[1], String(1024 * 1024), JSON.stringify(df));
  await client.request("sandbox/delete", { id: sandbox.id });

  const small = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-container-small"), runtime: "container", limits: { tmpMiB: 4 } });
  const fill = await client.request("sandbox/exec", { id: small.id, argv: ["sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1048576 count=8"] });
  assert.notEqual(fill.exitCode, 0, JSON.stringify(fill));
  assert.match(fill.stderr, /No space left on device/);
  await client.request("sandbox/delete", { id: small.id });
});

// ---- a rootless agent: no cgroups to enforce pids and memory limits with -------------------

let rootless: { agent: AgentProcess; socketPath: string; home: string } | undefined;
after(async () => {
  await rootless?.agent.stop();
});

test("a rootless agent reports the limits it cannot enforce instead of pretending, and still bounds /tmp", async () => {
  const home = tempDir("paddock-rootless-limits-");
  fs.chownSync(home, user.uid, user.gid);
  fs.chmodSync(home, 0o755);
  const socketPath = path.join(home, "run", "agent.sock");
  const agent = startAgent(["--socket", socketPath, "--state-dir", path.join(home, "state")], { uid: user.uid, gid: user.gid, env: { HOME: home, XDG_RUNTIME_DIR: "" }, script: publicAgentScript() });
  rootless = { agent, socketPath, home };
  const deadline = Date.now() + 10_000;
  while (!(await isListening(socketPath))) {
    assert.equal(agent.child.exitCode, null, `the rootless agent exited: ${agent.stderr()}`);
    assert.ok(Date.now() < deadline, `the rootless agent does not listen: ${agent.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  const ws = makeWorkspace(home, "ws", user.uid, user.gid);
  const [created] = callAs(socketPath, user, [["sandbox/create", { workspace: ws }]]);
  const sandbox = resultOf<SandboxAnswer>(created);
  assert.deepEqual(sandbox.limits, { tmpMiB: 1024 }, JSON.stringify(sandbox));
  assert.deepEqual(sandbox.limitsUnavailable, ["memoryMiB", "pids"]);
  assert.deepEqual(sizesInside(sandbox.id, ["/tmp"], socketPath), { "/tmp": 1024 * 1024 });
  const raised = callAs(socketPath, user, [["sandbox/create", { workspace: makeWorkspace(home, "ws2", user.uid, user.gid), limits: { tmpMiB: 2048 } }]]);
  assert.deepEqual(resultOf<SandboxAnswer>(raised[0]).limits, { tmpMiB: 2048 }, "a /tmp size needs no cgroups");
  const refusedPids = callAs(socketPath, user, [["sandbox/create", { workspace: makeWorkspace(home, "ws3", user.uid, user.gid), limits: { pids: 100 } }]]);
  assert.equal(refusedPids[0]!.error?.data?.code, "E_CGROUP", "a limit asked for that cannot be enforced is refused");
  deleteAs(sandbox.id, socketPath);
  deleteAs(resultOf<SandboxAnswer>(raised[0]).id, socketPath);
});
