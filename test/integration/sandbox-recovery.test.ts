/** kill -9 and reboots: after a restart, every sandbox is adopted or cleaned and nothing is left that nobody owns. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { cgroupParent, cgroupProcs, makeWorkspace, mountsUnder, sandboxCgroups, startFixture, waitFor } from "../helpers/sandbox-fixture";

/** Processes whose command line names a path under `dir` (bwrap names the workspace and the view). */
function processesUsing(dir: string): string[] {
  return execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.includes(dir) && !l.includes("paddock.js agent") && !l.includes(" ps "));
}

test("kill -9 of the agent with running processes: the restart adopts running sandboxes and cleans the rest", async () => {
  const fx = await startFixture();
  const client = await fx.client();
  const running = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-a"), limits: { pids: 100 } });
  const stopped = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-b") });
  await client.request("sandbox/exec", { id: running.id, argv: ["sh", "-c", "echo before > crash.txt"] });
  await client.request("sandbox/stop", { id: stopped.id });
  await client.request("process/spawn", { id: running.id, argv: ["sh", "-c", "(setsid sleep 1000 &); sleep 1000"] });
  await client.request("process/spawn", { id: running.id, argv: ["bash"], pty: { cols: 80, rows: 24 } });
  await waitFor("processes in the cgroup", () => (fs.readFileSync(cgroupProcs(fx.stateDir, running.id), "utf8").trim().split("\n").length >= 4 ? true : undefined));

  // Leftovers no record owns: a sandbox directory with a mount, and a cgroup.
  const orphanDir = path.join(fx.stateDir, "sandboxes", "sbx-0000deadbeef");
  fs.mkdirSync(path.join(orphanDir, "merged"), { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "orphan", path.join(orphanDir, "merged")]);
  fs.mkdirSync(path.join(cgroupParent(fx.stateDir), "sbx-0000deadbeef"));

  assert.ok(processesUsing(fx.base).length > 0, "bwrap processes are running");
  fx.agent.child.kill("SIGKILL");
  await fx.agent.exited;
  await fx.restart(); // at once: whatever is still dying, the new agent must finish off
  assert.equal(fs.readFileSync(cgroupProcs(fx.stateDir, running.id), "utf8").trim(), "", "no process is left in the sandbox's cgroup");
  const after = await fx.client();
  const list = (await after.request("sandbox/list")).sandboxes;
  assert.deepEqual(list.map((s) => [s.id, s.state]).sort(), [[running.id, "running"], [stopped.id, "stopped"]].sort());
  assert.equal((await after.request("sandbox/exec", { id: running.id, argv: ["cat", "crash.txt"] })).stdout, "before\n", "changes survived the crash");

  const merged = (id: string) => path.join(fx.stateDir, "sandboxes", id, "merged");
  assert.deepEqual(mountsUnder(fx.stateDir), [merged(running.id)], "only the running sandbox is mounted");
  assert.deepEqual(sandboxCgroups(fx.stateDir).filter((id) => [running.id, stopped.id, "sbx-0000deadbeef"].includes(id)).sort(), [running.id, stopped.id].sort());
  assert.equal(fs.existsSync(orphanDir), false);
  const log = fs.readFileSync(path.join(fx.stateDir, "logs", "agent.log"), "utf8");
  assert.match(log, /adopted running sandbox/);
  assert.match(log, /cleaned orphaned resources/);

  await after.request("sandbox/delete", { id: running.id });
  await after.request("sandbox/delete", { id: stopped.id });
  assert.deepEqual(mountsUnder(fx.stateDir), []);
  assert.deepEqual(sandboxCgroups(fx.stateDir).filter((id) => [running.id, stopped.id].includes(id)), []);
  assert.deepEqual(processesUsing(fx.base), []);
  await fx.stop();
});

test("after a reboot (another boot id, mounts gone) running sandboxes are mounted again with their changes", async () => {
  const fx = await startFixture();
  const client = await fx.client();
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-reboot") });
  await client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo survived > reboot.txt"] });
  await fx.stopAgent();
  // What a reboot does to us: the mount and the cgroup are gone, the records say another boot.
  const merged = path.join(fx.stateDir, "sandboxes", id, "merged");
  execFileSync("umount", [merged]);
  fs.rmdirSync(path.dirname(cgroupProcs(fx.stateDir, id)));
  const recordFile = path.join(fx.stateDir, "sandboxes", id, "record.json");
  const record = JSON.parse(fs.readFileSync(recordFile, "utf8"));
  record.bootId = "00000000-0000-0000-0000-000000000000";
  fs.writeFileSync(recordFile, JSON.stringify(record));

  await fx.restart();
  const after = await fx.client();
  assert.equal((await after.request("sandbox/get", { id })).state, "running");
  assert.equal((await after.request("sandbox/exec", { id, argv: ["cat", "reboot.txt"] })).stdout, "survived\n");
  assert.match(fs.readFileSync(path.join(fx.stateDir, "logs", "agent.log"), "utf8"), /re-mounted after a reboot/);
  assert.equal(JSON.parse(fs.readFileSync(recordFile, "utf8")).bootId, fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
  await after.request("sandbox/delete", { id });
  await fx.stop();
});

test("an interrupted creation or deletion is finished at startup", async () => {
  const fx = await startFixture();
  const client = await fx.client();
  const a = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-c1") });
  const b = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-c2") });
  await fx.stopAgent();
  for (const [id, state] of [[a.id, "creating"], [b.id, "deleting"]] as const) {
    const file = path.join(fx.stateDir, "sandboxes", id, "record.json");
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, "utf8")), state }));
  }
  await fx.restart();
  const after = await fx.client();
  assert.deepEqual((await after.request("sandbox/list")).sandboxes, []);
  assert.deepEqual(mountsUnder(fx.stateDir), []);
  assert.deepEqual(fs.readdirSync(path.join(fx.stateDir, "sandboxes")), []);
  assert.deepEqual(sandboxCgroups(fx.stateDir).filter((id) => id === a.id || id === b.id), []);
  await fx.stop();
});

test("a record that cannot be read is left alone with its changes, never removed on a guess", async () => {
  const fx = await startFixture();
  const client = await fx.client();
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-corrupt") });
  await client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo precious > work.txt"] });
  await client.request("sandbox/stop", { id });
  await fx.stopAgent();
  fs.writeFileSync(path.join(fx.stateDir, "sandboxes", id, "record.json"), "{ torn write");
  await fx.restart();
  const after = await fx.client();
  assert.deepEqual((await after.request("sandbox/list")).sandboxes, []);
  assert.equal(fs.readFileSync(path.join(fx.stateDir, "sandboxes", id, "upper", "work.txt"), "utf8"), "precious\n");
  assert.match(fs.readFileSync(path.join(fx.stateDir, "logs", "agent.log"), "utf8"), /cannot read this sandbox's record; leaving it alone/);
  await fx.stop();
});
