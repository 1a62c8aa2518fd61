/** Sandboxes with real overlay mounts, real bwrap and real cgroups, through the agent's protocol. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { cgroupProcs, fixtureForFile, makeWorkspace, mountsUnder, refused, sandboxCgroups, treeHash, waitFor } from "../helpers/sandbox-fixture";

const shared = fixtureForFile();

test("writes, creations and deletions land only in the sandbox", async () => {
  const ws = makeWorkspace(shared.fx.base, "ws-isolation");
  const before = treeHash(ws);
  const sandbox = await shared.client.request("sandbox/create", { workspace: ws });
  assert.equal(sandbox.state, "running");
  assert.equal(sandbox.workspace, ws);
  const run = await shared.client.request("sandbox/exec", {
    id: sandbox.id,
    argv: ["sh", "-c", "echo changed >> README.md && echo new > src/new.c && rm delete-me.txt && mkdir -p build/out && cat README.md && pwd"],
  });
  assert.equal(run.exitCode, 0, run.stderr);
  assert.equal(run.stdout, `# demo\nchanged\n${ws}\n`, "the program saw its own writes, at the workspace's path");
  assert.equal(treeHash(ws), before, "the real workspace is byte-for-byte unchanged");
  const again = await shared.client.request("sandbox/exec", { id: sandbox.id, argv: ["sh", "-c", "ls src; test -e delete-me.txt || echo gone"] });
  assert.equal(again.stdout, "main.c\nnew.c\ngone\n", "changes persist between commands in one sandbox");
  await shared.client.request("sandbox/delete", { id: sandbox.id });
});

test("inside: only loopback with network none, the host read-only, private /tmp, only stdio descriptors", async () => {
  const ws = makeWorkspace(shared.fx.base, "ws-inside");
  fs.writeFileSync("/tmp/paddock-host-marker", "host");
  const sandbox = await shared.client.request("sandbox/create", { workspace: ws });
  const links = await shared.client.request("sandbox/exec", { id: sandbox.id, argv: ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1"] });
  assert.equal(links.stdout.trim(), "lo");
  const etc = await shared.client.request("sandbox/exec", { id: sandbox.id, argv: ["sh", "-c", "touch /etc/paddock-x; echo $?; touch /usr/x 2>/dev/null; echo $?"] });
  assert.deepEqual(etc.stdout.trim().split("\n"), ["1", "1"]);
  assert.match(etc.stderr, /Read-only file system/);
  const tmp = await shared.client.request("sandbox/exec", { id: sandbox.id, argv: ["sh", "-c", "test -e /tmp/paddock-host-marker && echo leaked; echo x > /tmp/mine && echo wrote"] });
  assert.equal(tmp.stdout, "wrote\n");
  assert.equal(fs.existsSync("/tmp/mine"), false);
  const fds = await shared.client.request("sandbox/exec", { id: sandbox.id, argv: ["sh", "-c", "ls /proc/self/fd"] });
  assert.deepEqual(fds.stdout.trim().split("\n").sort(), ["0", "1", "2", "3"], "stdio and ls's own directory handle only");
  const env = await shared.client.request("sandbox/exec", { id: sandbox.id, argv: ["env"], env: { MY_VAR: "1" } });
  const names = env.stdout.trim().split("\n").map((l) => l.split("=")[0]).sort();
  assert.deepEqual(names, ["HOME", "LANG", "MY_VAR", "PADDOCK_SANDBOX", "PATH", "PWD", "TERM"]);
  await shared.client.request("sandbox/delete", { id: sandbox.id });
  fs.rmSync("/tmp/paddock-host-marker");
});

test("network host shares the host's interfaces", async () => {
  const ws = makeWorkspace(shared.fx.base, "ws-net");
  const sandbox = await shared.client.request("sandbox/create", { workspace: ws, network: "host" });
  const links = await shared.client.request("sandbox/exec", { id: sandbox.id, argv: ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1"] });
  const hostLinks = fs.readFileSync("/proc/net/dev", "utf8").split("\n").slice(2).filter(Boolean).map((l) => l.split(":")[0]!.trim());
  assert.deepEqual(links.stdout.trim().split("\n").map((l) => l.trim()).sort(), hostLinks.sort());
  await shared.client.request("sandbox/delete", { id: sandbox.id });
});

test("exec: stdin, exit codes, signals, cwd, output cap and timeout", async () => {
  const ws = makeWorkspace(shared.fx.base, "ws-exec");
  const { id } = await shared.client.request("sandbox/create", { workspace: ws });
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["cat"], stdin: "from stdin\n" })).stdout, "from stdin\n");
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "exit 42"] })).exitCode, 42);
  // A program killed by a signal inside the sandbox reports 128+N, as a shell does.
  const killed = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "kill -TERM $$"] });
  assert.deepEqual([killed.exitCode, killed.signal], [143, null]);
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["pwd"], cwd: "src" })).stdout, `${ws}/src\n`);
  const big = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x"] });
  assert.equal(big.truncated, true);
  assert.equal(big.stdout.length, big.outputCap);
  const started = Date.now();
  const slow = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "sleep 31 & sleep 31"], timeoutMs: 300 });
  assert.equal(slow.timedOut, true);
  assert.equal(slow.signal, "SIGKILL");
  assert.ok(Date.now() - started < 10_000);
  await waitFor("both sleeps to be gone", () => (execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).includes("sleep 31") ? undefined : true));
  const missing = await shared.client.request("sandbox/exec", { id, argv: ["/no/such/program"] });
  assert.notEqual(missing.exitCode, 0);
  assert.match(missing.stderr, /No such file/);
  await shared.client.request("sandbox/delete", { id });
});

test("stop ends every process, double-forked daemons included, and keeps the changes; start runs it again", async () => {
  const ws = makeWorkspace(shared.fx.base, "ws-stop");
  const { id } = await shared.client.request("sandbox/create", { workspace: ws });
  const exits: unknown[] = [];
  shared.client.onNotification((method, params) => method === "process/exit" && exits.push(params));
  const { pid } = await shared.client.request("process/spawn", { id, argv: ["sh", "-c", "echo kept > kept.txt; (setsid sh -c 'sleep 1000 & sleep 1000' &); sleep 1000"] });
  const procsFile = cgroupProcs(shared.fx.stateDir, id);
  const daemons = await waitFor("the daemon", () => {
    const pids = fs.readFileSync(procsFile, "utf8").trim().split("\n").filter(Boolean);
    return pids.length >= 5 ? pids : undefined; // bwrap, its init, sh, the setsid'd sh and its sleeps
  });
  const stopped = await shared.client.request("sandbox/stop", { id });
  assert.equal(stopped.state, "stopped");
  assert.equal(fs.readFileSync(procsFile, "utf8").trim(), "", "no process of the sandbox is left");
  // Dead processes may linger a moment as zombies until their parents reap them.
  await waitFor("every process of the sandbox to be reaped", () => (daemons.every((p) => !fs.existsSync(`/proc/${p}`)) ? true : undefined));
  await waitFor("process/exit", () => (exits.some((e) => (e as { pid: number }).pid === pid) ? true : undefined));
  await refused(shared.client.request("sandbox/exec", { id, argv: ["true"] }), "E_INVALID_STATE", /stopped/);
  await shared.client.request("sandbox/start", { id });
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["cat", "kept.txt"] })).stdout, "kept\n");
  await shared.client.request("sandbox/delete", { id });
  assert.equal(fs.existsSync(procsFile), false, "delete removes the cgroup");
});

test("limits: a fork bomb and a memory hog are contained and reported; the other sandboxes carry on", async () => {
  const ws = makeWorkspace(shared.fx.base, "ws-limits");
  const other = await shared.client.request("sandbox/create", { workspace: makeWorkspace(shared.fx.base, "ws-neighbour") });
  const { id } = await shared.client.request("sandbox/create", { workspace: ws, limits: { pids: 32, memoryMiB: 64 } });
  const bomb = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "for i in $(seq 200); do sleep 5 & done; wait"], timeoutMs: 20_000 });
  assert.ok(bomb.limitsHit.includes("pids"), JSON.stringify(bomb));
  assert.match(bomb.stderr, /fork|resource|Cannot/i);
  const hog = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "head -c 300m /dev/zero | tail"], timeoutMs: 20_000 });
  assert.equal(hog.exitCode, 137, "the hog was OOM-killed (128+SIGKILL)");
  assert.ok(hog.limitsHit.includes("memory"), JSON.stringify(hog));
  assert.equal((await shared.client.request("sandbox/exec", { id: other.id, argv: ["echo", "fine"] })).stdout, "fine\n");
  await shared.client.request("sandbox/stop", { id });
  await shared.client.request("sandbox/delete", { id });
  await shared.client.request("sandbox/delete", { id: other.id });
});

test("bad params give clear errors and change nothing", async () => {
  const before = { mounts: mountsUnder(shared.fx.stateDir).length, cgroups: sandboxCgroups(shared.fx.stateDir).length, sandboxes: (await shared.client.request("sandbox/list")).sandboxes.length };
  const file = path.join(shared.fx.base, "a-file");
  fs.writeFileSync(file, "x");
  await refused(shared.client.request("sandbox/create", { workspace: "relative/dir" }), "E_INVALID_WORKSPACE", /absolute/);
  await refused(shared.client.request("sandbox/create", { workspace: path.join(shared.fx.base, "missing") }), "E_INVALID_WORKSPACE", /does not exist/);
  await refused(shared.client.request("sandbox/create", { workspace: file }), "E_INVALID_WORKSPACE", /not a directory/);
  await refused(shared.client.request("sandbox/create", { workspace: "/" }), "E_INVALID_WORKSPACE", /root/);
  await refused(shared.client.request("sandbox/create", { workspace: shared.fx.stateDir }), "E_INVALID_WORKSPACE", /state dir/);
  await refused(shared.client.request("sandbox/create", { workspace: shared.fx.base }), "E_INVALID_WORKSPACE", /contains Paddock's state dir/);
  await refused(shared.client.request("sandbox/create", { workspace: makeWorkspace(shared.fx.base, "ws-bad"), limits: { memoryMiB: 1 } }), "E_INVALID_PARAMS", /memoryMiB/);
  await refused(shared.client.request("sandbox/create", { workspace: makeWorkspace(shared.fx.base, "ws-bad2"), limits: { pids: 1e12 } }), "E_INVALID_PARAMS", /pids/);
  await refused(shared.client.request("sandbox/get", { id: "sbx-000000000000" }), "E_NOT_FOUND");
  await refused(shared.client.request("sandbox/get", { id: "../../etc" }), "E_INVALID_PARAMS", /"id"/);
  const { id } = await shared.client.request("sandbox/create", { workspace: makeWorkspace(shared.fx.base, "ws-argv") });
  await refused(shared.client.request("sandbox/exec", { id, argv: [] }), "E_INVALID_PARAMS", /argv/);
  await shared.client.request("sandbox/delete", { id });
  const after = { mounts: mountsUnder(shared.fx.stateDir).length, cgroups: sandboxCgroups(shared.fx.stateDir).length, sandboxes: (await shared.client.request("sandbox/list")).sandboxes.length };
  assert.deepEqual(after, before);
});

test("create is idempotent by key; delete twice is not an error; ids never collide", async () => {
  const ws = makeWorkspace(shared.fx.base, "ws-idem");
  const a = await shared.client.request("sandbox/create", { workspace: ws, idempotencyKey: "k1" });
  const b = await shared.client.request("sandbox/create", { workspace: ws, idempotencyKey: "k1" });
  assert.equal(a.id, b.id);
  const c = await shared.client.request("sandbox/create", { workspace: ws });
  assert.notEqual(c.id, a.id, "two sandboxes of one workspace");
  assert.notEqual(c.name, a.name);
  await refused(shared.client.request("sandbox/create", { workspace: makeWorkspace(shared.fx.base, "ws-idem2"), idempotencyKey: "k1" }), "E_IDEMPOTENCY_CONFLICT");
  const listed = (await shared.client.request("sandbox/list", { workspace: ws })).sandboxes.map((s) => s.id).sort();
  assert.deepEqual(listed, [a.id, c.id].sort());
  assert.deepEqual(await shared.client.request("sandbox/delete", { id: a.id }), { id: a.id, deleted: true });
  assert.deepEqual(await shared.client.request("sandbox/delete", { id: a.id }), { id: a.id, deleted: false });
  await shared.client.request("sandbox/delete", { id: c.id });
});

test("state changes are notified to the client", async () => {
  const seen: string[] = [];
  const watcher = await shared.fx.client();
  watcher.onNotification((method, params) => {
    if (method === "sandbox/didChangeState") seen.push((params as { state: string }).state);
  });
  const { id } = await shared.client.request("sandbox/create", { workspace: makeWorkspace(shared.fx.base, "ws-notify") });
  await shared.client.request("sandbox/stop", { id });
  await shared.client.request("sandbox/delete", { id });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(seen, ["running", "stopped", "deleting", "deleted"]);
});

test("a TTL expires the sandbox; gc deletes it and nothing is left", async () => {
  const { id } = await shared.client.request("sandbox/create", { workspace: makeWorkspace(shared.fx.base, "ws-ttl"), ttlSeconds: 1 });
  assert.ok((await shared.client.request("sandbox/get", { id })).expiresAt);
  await new Promise((r) => setTimeout(r, 1100));
  const gc = await shared.client.request("sandbox/gc", {});
  // gc deletes it, unless the agent's own sweep (every 15 s) came first.
  assert.ok(gc.deleted.includes(id) || !fs.existsSync(path.join(shared.fx.stateDir, "sandboxes", id)), JSON.stringify(gc));
  await refused(shared.client.request("sandbox/get", { id }), "E_NOT_FOUND");
  assert.equal(fs.existsSync(path.join(shared.fx.stateDir, "sandboxes", id)), false);
  assert.deepEqual(mountsUnder(path.join(shared.fx.stateDir, "sandboxes", id)), []);
  assert.equal(sandboxCgroups(shared.fx.stateDir).includes(id), false);
});
