/** process/spawn: a real PTY, flow control, and sandboxes of users other than root. */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { AgentClient } from "../../protocol/client";
import { encodeFrame } from "../../protocol/framing";
import { REPO, tempDir } from "../helpers/agent-process";
import { cgroupProcs, makeWorkspace, startFixture, type Fixture, waitFor } from "../helpers/sandbox-fixture";

const GROUP = "paddock-test-grp";
const USERS = ["paddock-test", "paddock-test2"];

let fx: Fixture;
let client: AgentClient;

function ensureUser(name: string): { uid: number; gid: number } {
  if (spawnSync("getent", ["group", GROUP]).status !== 0) execFileSync("groupadd", [GROUP]);
  if (spawnSync("id", [name]).status !== 0) execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", name]);
  execFileSync("usermod", ["-aG", GROUP, name]);
  return { uid: Number(execFileSync("id", ["-u", name]).toString()), gid: Number(execFileSync("id", ["-g", name]).toString()) };
}

before(async () => {
  for (const u of USERS) ensureUser(u);
  fx = await startFixture(["--socket-group", GROUP]);
  client = await fx.client();
});
after(async () => {
  await fx.stop();
});

/** Collects a process's output and waits for text in it. */
function outputOf(c: AgentClient, pid: () => number) {
  let text = "";
  let exit: { exitCode: number | null; signal: string | null } | undefined;
  c.onNotification((method, params) => {
    const p = params as { pid: number; data?: string; exitCode?: number | null; signal?: string | null };
    if (p.pid !== pid()) return;
    if (method === "process/output") text += p.data;
    if (method === "process/exit") exit = { exitCode: p.exitCode ?? null, signal: p.signal ?? null };
  });
  return {
    get text() {
      return text;
    },
    until: (pattern: RegExp) => waitFor(`output matching ${pattern}`, () => (pattern.test(text) ? true : undefined)),
    exited: () => waitFor(`process/exit of ${pid()} (output so far: ${JSON.stringify(text.slice(-200))})`, () => exit),
  };
}

test("PTY: an interactive shell echoes, Ctrl-C interrupts, resize reaches it as SIGWINCH, and its exit code comes back", async () => {
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-pty") });
  let pid = 0;
  const out = outputOf(client, () => pid);
  pid = (await client.request("process/spawn", { id, argv: ["bash", "--norc", "--noprofile", "-i"], env: { PS1: "$ " }, pty: { cols: 80, rows: 24 } })).pid;
  const type = (data: string) => client.request("process/write", { pid, data });

  await type("echo tty=$(tty) size=$(stty size) job=$(set -o | grep -c 'monitor.*on')\n");
  await out.until(/tty=\/dev\/\S+ size=24 80 job=1/);
  await type("sleep 100\n");
  await new Promise((r) => setTimeout(r, 300));
  await type("\x03");
  await type("echo status=$?\n");
  await out.until(/status=130/);
  await type("trap 'echo got-winch $(stty size)' WINCH\n");
  await new Promise((r) => setTimeout(r, 200));
  await client.request("process/resize", { pid, cols: 120, rows: 40 });
  await type("echo after-resize\n"); // bash runs the trap when it next reads a line
  await out.until(/got-winch 40 120/);
  await type("exit 5\n");
  assert.deepEqual(await out.exited(), { exitCode: 5, signal: null });
  assert.deepEqual((await client.request("process/list", { id })).processes, []);
  await client.request("sandbox/delete", { id });
});

test("a terminal without argv gets the sandbox's login shell: SHELL, else the user's own, never one that cannot log in", async () => {
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-login") });
  const shellOf = async (env?: Record<string, string>) => {
    let pid = 0;
    const out = outputOf(client, () => pid);
    pid = (await client.request("process/spawn", { id, shell: true, ...(env ? { env } : {}), pty: { cols: 80, rows: 24 } })).pid;
    await client.request("process/write", { pid, data: 'echo "shell=$SHELL"; exit\n' });
    // (dash, as a login shell in a PID namespace, ends with 2: it cannot give the terminal back to a process group outside)
    await out.exited();
    return /shell=(\/\S*)/.exec(out.text)?.[1];
  };
  const rootShell = execFileSync("getent", ["passwd", "0"], { encoding: "utf8" }).trim().split(":")[6];
  assert.equal(await shellOf(), rootShell, "root's shell from the passwd file the sandbox sees");
  assert.equal(await shellOf({ SHELL: "/bin/sh" }), "/bin/sh", "SHELL in the sandbox's environment first");
  assert.equal(await shellOf({ SHELL: "/usr/sbin/nologin" }), rootShell, "a shell that cannot log in is skipped");
  await refusedSpawn({ id }, /either argv or shell/);
  await refusedSpawn({ id, argv: ["true"], shell: true }, /either argv or shell/);
  await client.request("sandbox/delete", { id });
});

async function refusedSpawn(params: Record<string, unknown>, message: RegExp): Promise<void> {
  await assert.rejects(client.request("process/spawn", params as never), (err: Error & { code?: string }) => err.code === "E_INVALID_PARAMS" && message.test(err.message));
}

test("PTY: full-screen programs work: vi edits a file, less pages it, top shows the load", async () => {
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-fullscreen") });
  const run = async (argv: string[], ready: RegExp, keys: string[]) => {
    let pid = 0;
    const out = outputOf(client, () => pid);
    pid = (await client.request("process/spawn", { id, argv, pty: { cols: 100, rows: 30 } })).pid;
    await out.until(ready);
    for (const k of keys) {
      await client.request("process/write", { pid, data: k });
      await new Promise((r) => setTimeout(r, 100));
    }
    return out.exited();
  };
  assert.deepEqual(await run(["vi", "notes.txt"], /notes\.txt/, ["i", "written in vi", "\x1b", ":wq\r"]), { exitCode: 0, signal: null });
  assert.equal((await client.request("sandbox/exec", { id, argv: ["cat", "notes.txt"] })).stdout, "written in vi\n");
  assert.deepEqual(await run(["less", "README.md"], /# demo/, ["q"]), { exitCode: 0, signal: null });
  assert.deepEqual(await run(["top"], /load average/, ["q"]), { exitCode: 0, signal: null });
  await client.request("sandbox/delete", { id });
});

test("pipes: stdout and stderr apart, stdin with end of file, kill", async () => {
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-pipes") });
  let pid = 0;
  const streams: Record<string, string> = { stdout: "", stderr: "" };
  client.onNotification((m, p) => {
    const o = p as { pid: number; stream: string; data: string };
    if (m === "process/output" && o.pid === pid) streams[o.stream] += o.data;
  });
  const out = outputOf(client, () => pid);
  pid = (await client.request("process/spawn", { id, argv: ["sh", "-c", "tr a-z A-Z; echo oops >&2; exit 3"] })).pid;
  await client.request("process/write", { pid, data: "quiet " });
  await client.request("process/write", { pid, data: "words\n", eof: true });
  assert.deepEqual(await out.exited(), { exitCode: 3, signal: null });
  assert.deepEqual(streams, { stdout: "QUIET WORDS\n", stderr: "oops\n" });

  // process/kill's default, SIGTERM, reaches the program itself, which may handle it.
  let pid3 = 0;
  const out3 = outputOf(client, () => pid3);
  pid3 = (await client.request("process/spawn", { id, argv: ["sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"] })).pid;
  await out3.until(/ready/);
  await client.request("process/kill", { pid: pid3 });
  assert.deepEqual(await out3.exited(), { exitCode: 7, signal: null });
  assert.match(out3.text, /got-term/);

  let pid2 = 0;
  const out2 = outputOf(client, () => pid2);
  pid2 = (await client.request("process/spawn", { id, argv: ["sleep", "100"] })).pid;
  assert.equal((await client.request("process/list", { id })).processes.length, 1);
  await client.request("process/kill", { pid: pid2, signal: "SIGKILL" });
  assert.deepEqual(await out2.exited(), { exitCode: null, signal: "SIGKILL" });
  await client.request("sandbox/delete", { id });
});

test("flow control: a program writing fast to a client that does not read cannot grow the agent's memory", async () => {
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-flood") });
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${fx.agent.child.pid}/status`, "utf8"))?.[1]) / 1024;
  const socket = net.connect(fx.socketPath);
  await new Promise((r) => socket.once("connect", r));
  let received = 0;
  socket.on("data", (d: Buffer) => (received += d.length));
  const send = (id_: number, method: string, params: unknown) => socket.write(encodeFrame(JSON.stringify({ jsonrpc: "2.0", id: id_, method, params })));
  send(1, "initialize", {});
  send(2, "process/spawn", { id, argv: ["sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"] });
  await waitFor("output flowing", () => (received > 1_000_000 ? true : undefined));
  const before = rss();
  socket.pause(); // stop reading
  await new Promise((r) => setTimeout(r, 3000));
  const during = rss();
  assert.ok(during - before < 64, `agent RSS grew from ${before.toFixed(0)} to ${during.toFixed(0)} MiB while the client was not reading`);
  const atPause = received;
  socket.resume();
  await waitFor("output flowing again", () => (received > atPause + 5_000_000 ? true : undefined));
  socket.destroy(); // the client goes away: its process ends with it
  await waitFor("the flood to be killed", () => ((fs.readFileSync(cgroupProcs(fx.stateDir, id), "utf8").trim() === "") ? true : undefined));
  await client.request("sandbox/delete", { id });
});

test("a user other than root: processes run as that user; other users neither see nor touch the sandbox", async () => {
  const owner = ensureUser(USERS[0]!);
  const stranger = ensureUser(USERS[1]!);
  const clientDir = tempDir("paddock-pyclient-");
  fs.chmodSync(clientDir, 0o755);
  const py = path.join(clientDir, "client.py");
  fs.copyFileSync(path.join(REPO, "test", "clients", "paddock_client.py"), py);
  fs.chmodSync(py, 0o755);
  const callAs = (user: { uid: number; gid: number }, calls: [string, unknown][]) => {
    const r = spawnSync("setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, `--groups=${GROUP}`, "/usr/bin/python3", py, fx.socketPath, "calls", JSON.stringify(calls)], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { result?: Record<string, unknown>; error?: { data?: { code: string } } }[];
  };
  const ws = makeWorkspace(fx.base, "ws-user", owner.uid, owner.gid);
  const [created] = callAs(owner, [["sandbox/create", { workspace: ws }]]);
  assert.ok(created!.result, JSON.stringify(created));
  const id = created!.result.id as string;
  const [run] = callAs(owner, [["sandbox/exec", { id, argv: ["sh", "-c", "id -u; echo mine > new.txt; stat -c %u new.txt; touch /etc/x 2>/dev/null || echo ro"] }]]);
  assert.equal(run!.result!.stdout, `${owner.uid}\n${owner.uid}\nro\n`);
  assert.equal(fs.statSync(path.join(fx.stateDir, "sandboxes", id, "upper", "new.txt")).uid, owner.uid);

  const [list, get, del, exec] = callAs(stranger, [
    ["sandbox/list", {}],
    ["sandbox/get", { id }],
    ["sandbox/delete", { id }],
    ["sandbox/exec", { id, argv: ["true"] }],
  ]);
  assert.deepEqual(list!.result, { sandboxes: [] });
  assert.equal(get!.error?.data?.code, "E_NOT_FOUND");
  assert.deepEqual(del!.result, { id, deleted: false });
  assert.equal(exec!.error?.data?.code, "E_NOT_FOUND");
  assert.equal((await client.request("sandbox/get", { id })).state, "running", "root sees it, and it survived");

  const { pid } = await client.request("process/spawn", { id, argv: ["sleep", "100"] });
  const [processes, kill] = callAs(stranger, [
    ["process/list", {}],
    ["process/kill", { pid, signal: "SIGKILL" }],
  ]);
  assert.deepEqual(processes!.result, { processes: [] });
  assert.equal(kill!.error?.data?.code, "E_NOT_FOUND", "another user's process is not theirs to kill");
  assert.equal((await client.request("process/list", { id })).processes.length, 1);

  const [foreign] = callAs(stranger, [["sandbox/create", { workspace: ws }]]);
  assert.equal(foreign!.error?.data?.code, "E_INVALID_WORKSPACE", "a workspace of someone else's");
  await client.request("sandbox/delete", { id });
});
