/** The real agent on a Unix socket: permissions, peer identity, the state-dir lock, other clients. */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, socketPeer, startAgent, startSocketAgent, tempDir, type AgentProcess } from "../helpers/agent-process";
import type { RpcMessage } from "../helpers/raw-peer";
import { mountPoints } from "../../agent/changeset/overlay";

const TEST_USER = "paddock-test";
const TEST_GROUP = "paddock-test-grp";
const PYTHON_CLIENT = path.join(REPO, "test", "clients", "paddock_client.py");

let uid = 0;
let gid = 0;
/** A copy of the Python client that the test user can read (the checkout may not be). */
let publicClient = "";

before(() => {
  if (spawnSync("getent", ["group", TEST_GROUP]).status !== 0) execFileSync("groupadd", [TEST_GROUP]);
  if (spawnSync("id", [TEST_USER]).status !== 0) execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER]);
  uid = Number(execFileSync("id", ["-u", TEST_USER]).toString().trim());
  gid = Number(execFileSync("id", ["-g", TEST_USER]).toString().trim());
  const dir = tempDir("paddock-client-");
  fs.chmodSync(dir, 0o755);
  publicClient = path.join(dir, "paddock_client.py");
  fs.copyFileSync(PYTHON_CLIENT, publicClient);
  fs.chmodSync(publicClient, 0o755);
});

/** A base directory everyone may traverse, so that only the socket's own permissions decide. */
function publicBase(): string {
  const base = tempDir();
  fs.chmodSync(base, 0o755);
  return base;
}

function runPythonClientAs(socketPath: string, user: { uid: number; gid: number; groups?: string }) {
  const args = [`--reuid=${user.uid}`, `--regid=${user.gid}`, user.groups ? `--groups=${user.groups}` : "--clear-groups", "/usr/bin/python3", publicClient, socketPath, "initialize"];
  return spawnSync("setpriv", args, { encoding: "utf8", timeout: 10_000 });
}

const agents: AgentProcess[] = [];
after(async () => {
  for (const a of agents) await a.stop();
});

test("the agent creates its socket directory 0700 and the socket 0600", async () => {
  const base = publicBase();
  const socketPath = path.join(base, "run", "agent.sock");
  const agent = await startSocketAgent(path.join(base, "state"), socketPath);
  agents.push(agent);
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
  assert.equal(fs.statSync(path.dirname(socketPath)).mode & 0o777, 0o700);
  await agent.stop();
});

test("the socket itself refuses other users, and agent.json says where it is", async () => {
  const base = publicBase();
  // A directory others may enter (but not write): only the socket's own mode can refuse them.
  const runDir = path.join(base, "run");
  fs.mkdirSync(runDir, { mode: 0o755 });
  fs.chmodSync(runDir, 0o755);
  const socketPath = path.join(runDir, "agent.sock");
  const stateDir = path.join(base, "state");
  const agent = await startSocketAgent(stateDir, socketPath);
  agents.push(agent);
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
  assert.equal(fs.statSync(runDir).mode & 0o777, 0o755, "an existing directory is left as it was");
  const info = JSON.parse(fs.readFileSync(path.join(stateDir, "agent.json"), "utf8")) as { pid: number; socket: string };
  assert.equal(info.pid, agent.child.pid);
  assert.equal(info.socket, socketPath);

  const { peer, socket } = await socketPeer(socketPath);
  const init = (await peer.call("initialize", {})).result as { client: { uid: number; transport: string } };
  assert.deepEqual(init.client, { uid: 0, transport: "socket" });
  socket.destroy();

  // Another uid cannot even connect.
  const other = runPythonClientAs(socketPath, { uid, gid });
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /PermissionError|Permission denied/);

  await agent.stop();
  assert.equal(fs.existsSync(socketPath), false, "the socket is removed on SIGTERM");
  assert.equal(fs.existsSync(path.join(stateDir, "agent.json")), false);
});

test("with --socket-group, a member of the group connects and the agent sees its real uid (SO_PEERCRED)", async () => {
  const base = publicBase();
  const socketPath = path.join(base, "run", "agent.sock");
  const agent = await startSocketAgent(path.join(base, "state"), socketPath, ["--socket-group", TEST_GROUP]);
  agents.push(agent);
  const st = fs.statSync(socketPath);
  assert.equal(st.mode & 0o777, 0o660);
  const groupGid = Number(execFileSync("getent", ["group", TEST_GROUP]).toString().split(":")[2]);
  assert.equal(st.gid, groupGid);
  assert.equal(fs.statSync(path.dirname(socketPath)).mode & 0o777, 0o750);

  const member = runPythonClientAs(socketPath, { uid, gid, groups: TEST_GROUP });
  assert.equal(member.status, 0, member.stderr);
  const result = (JSON.parse(member.stdout) as RpcMessage).result as { client: { uid: number } };
  assert.equal(result.client.uid, uid, "the agent identifies the peer by its credentials");

  const outsider = runPythonClientAs(socketPath, { uid: 65534, gid: 65534 });
  assert.notEqual(outsider.status, 0, "a user outside the group is refused");
  await agent.stop();
});

test("a second agent on the same state dir exits at once naming the holder's pid", async () => {
  const base = publicBase();
  const stateDir = path.join(base, "state");
  const first = await startSocketAgent(stateDir, path.join(base, "run", "a.sock"));
  agents.push(first);
  const second = startAgent(["--socket", path.join(base, "run2", "b.sock"), "--state-dir", stateDir]);
  const started = Date.now();
  const { code } = await second.exited;
  assert.equal(code, 2);
  assert.ok(Date.now() - started < 5000);
  assert.match(second.stderr(), new RegExp(`pid ${first.child.pid}`));
  assert.match(second.stderr(), /hint:/);
  await first.stop();
});

test("after kill -9, a new agent replaces the stale socket; a live one is never stolen", async () => {
  const base = publicBase();
  const socketPath = path.join(base, "run", "agent.sock");
  const first = await startSocketAgent(path.join(base, "state"), socketPath);
  // A different state dir, same socket: refused while the first is alive.
  const thief = startAgent(["--socket", socketPath, "--state-dir", path.join(base, "state2")]);
  assert.equal((await thief.exited).code, 2);
  assert.match(thief.stderr(), /already listening/);

  first.child.kill("SIGKILL");
  await first.exited;
  assert.ok(fs.existsSync(socketPath), "kill -9 leaves the socket file behind");
  const second = await startSocketAgent(path.join(base, "state"), socketPath);
  agents.push(second);
  const { peer, socket } = await socketPeer(socketPath);
  assert.ok((await peer.call("initialize", {})).result);
  socket.destroy();
  await second.stop();
});

test("--socket-group never loosens a directory the agent did not create", async () => {
  const base = publicBase();
  const runDir = path.join(base, "existing");
  fs.mkdirSync(runDir, { mode: 0o755 });
  fs.chmodSync(runDir, 0o755);
  const agent = startAgent(["--socket", path.join(runDir, "agent.sock"), "--socket-group", TEST_GROUP, "--state-dir", path.join(base, "state")]);
  assert.equal((await agent.exited).code, 2);
  assert.match(agent.stderr(), /not reserved for group/);
  assert.equal(fs.statSync(runDir).mode & 0o777, 0o755);
  assert.equal(fs.statSync(runDir).gid, 0);
});

test("a socket in a directory others can write is refused", async () => {
  const dir = tempDir();
  fs.chmodSync(dir, 0o777);
  const agent = startAgent(["--socket", path.join(dir, "agent.sock"), "--state-dir", path.join(tempDir(), "state")]);
  assert.equal((await agent.exited).code, 2);
  assert.match(agent.stderr(), /can be written by others/);
});

test("garbage and a huge frame on one socket connection leave other clients served", async () => {
  const base = publicBase();
  const socketPath = path.join(base, "run", "agent.sock");
  const agent = await startSocketAgent(path.join(base, "state"), socketPath);
  agents.push(agent);
  const bad = await socketPeer(socketPath);
  const good = await socketPeer(socketPath);
  await good.peer.call("initialize", {});
  bad.peer.sendBytes(Buffer.alloc(100_000, 0xff));
  bad.peer.sendBytes("\r\n\r\nContent-Length: 1000000000\r\n\r\n");
  bad.peer.sendBytes(Buffer.alloc(1_000_000, 0x41));
  assert.equal(((await bad.peer.next()) as RpcMessage).error?.data?.code, "E_FRAME_HEADER");
  assert.equal(((await bad.peer.next()) as RpcMessage).error?.data?.code, "E_FRAME_TOO_LARGE");
  for (let i = 0; i < 20; i++) assert.deepEqual((await good.peer.call("system/ping", { data: `${i}` })).result, { data: `${i}` });
  bad.socket.destroy();
  good.socket.destroy();
  await agent.stop();
});

test("an agent that cannot serve its socket says why and leaves no mount behind", async () => {
  const base = publicBase();
  const stateDir = path.join(base, "state");
  const agent = startAgent(["--socket", path.join(base, "run", "agent.sock"), "--state-dir", stateDir], { env: { PADDOCK_FRAME_DEADLINE_MS: "soon" } });
  const { code } = await agent.exited;
  assert.notEqual(code, 0);
  assert.match(agent.stderr(), /PADDOCK_FRAME_DEADLINE_MS/);
  assert.deepEqual(mountPoints().filter((p) => p.startsWith(stateDir)), [], "the sandboxes folder's bind is undone");
});
