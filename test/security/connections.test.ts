/**
 * One client must never stall or starve the agent on its socket: connection slots per user
 * (root and the agent's owner can always connect), deadlines for a frame's header and body,
 * a bound on what one user's unfinished frames may hold, and framing that never goes silent
 * after a refused header. A real root agent on a socket with --socket-group, real users made
 * with useradd, real sockets opened by processes running as those users.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, socketPeer, startSocketAgent, tempDir, type AgentProcess } from "../helpers/agent-process";
import type { RpcMessage } from "../helpers/raw-peer";
import { Admission, DEFAULT_ADMISSION_LIMITS, admissionLimitsFromEnv } from "../../agent/server/admission";
import { PaddockError } from "../../protocol/errors";
import { rssMiB } from "../helpers/proc";
import { callAs } from "../helpers/users";

const GROUP = "paddock-sec-grp";
const MiB = 1024 * 1024;
/** The defaults promised: connections one user (not root, not the agent's owner) may hold, and what their unfinished frames may buffer. */
const CONNECTIONS_PER_USER = 32;
const BUDGET_MiB = 64;

interface User {
  name: string;
  uid: number;
  gid: number;
}
let userA: User;
let userB: User;
/** A folder any user can read, holding the client programs the test users run. */
let clients = "";

/** For the client programs below: calls `onMessage(text)` with the body of each frame `socket` brings. */
const READ_FRAMES = String.raw`
function readFrames(socket, onMessage) {
  let buf = Buffer.alloc(0);
  socket.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(buf.subarray(0, end).toString("latin1"))[1]);
      if (buf.length < end + 4 + length) return;
      const text = buf.subarray(end + 4, end + 4 + length).toString("utf8");
      buf = buf.subarray(end + 4 + length);
      onMessage(text);
    }
  });
}
`;

/**
 * A client program run as a test user: opens `count` connections, one after the other, and
 * does the scenario's thing on each; prints one JSON line per event (connected, message,
 * sent, closed), then "ready", and holds everything until its stdin closes.
 */
const HOLDER = String.raw`
const net = require("net");
const [socketPath, scenario, countText, sizeText] = process.argv.slice(2);
const count = Number(countText);
const size = Number(sizeText ?? 0);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function watch(i, socket) {
  readFrames(socket, (text) => out({ i, event: "message", message: JSON.parse(text) }));
  socket.on("error", () => {});
  socket.on("close", () => out({ i, event: "closed" }));
}

function connect(i) {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    watch(i, socket);
    socket.once("connect", () => {
      out({ i, event: "connected" });
      resolve(socket);
    });
    socket.once("error", () => resolve(undefined));
  });
}

/** Writes the bytes in 1 MiB pieces as the socket takes them; stops when it closes. */
async function sendSlowly(i, socket, bytes) {
  for (let at = 0; at < bytes.length && !socket.destroyed; at += 1024 * 1024) {
    const piece = bytes.subarray(at, Math.min(bytes.length, at + 1024 * 1024));
    if (!socket.write(piece)) await new Promise((r) => (socket.once("drain", r), socket.once("close", r)));
  }
  if (!socket.destroyed) out({ i, event: "sent" });
}

async function main() {
  const filler = Buffer.alloc(size, 0x20);
  for (let i = 0; i < count; i++) {
    const socket = await connect(i);
    if (!socket) continue;
    if (scenario === "half-header") socket.write("Content-Len");
    else if (scenario === "big-body") {
      // Announces 32 MiB, sends 'size' bytes of it and holds.
      socket.write("Content-Length: 33554432\r\n\r\n");
      void sendSlowly(i, socket, filler);
    } else if (scenario === "padded-initialize") {
      // A whole request of 'size' bytes: initialize padded with spaces (JSON allows them).
      const json = JSON.stringify({ jsonrpc: "2.0", id: i, method: "initialize", params: { clientName: "big" } });
      const body = Buffer.concat([Buffer.from(json), filler.subarray(0, size - json.length)]);
      socket.write("Content-Length: " + body.length + "\r\n\r\n");
      void sendSlowly(i, socket, body);
    }
  }
  out({ event: "ready" });
}
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
main();
`;

/**
 * A client program run as a test user that writes to programs that never read their input:
 * makes a sandbox of WORKSPACE with two `sleep`s (one on pipes, one on a terminal), then on
 * CONNECTIONS connections sends WRITES `process/write`s of 16 MiB each, alternating between the
 * two, each as fast as the socket takes it. Prints "spawned" (with the pids), one "sent" per
 * write the socket took, "answered" (with its error code) per write answered, "refused" for an
 * error about no request, and per connection "done" once each of its writes was answered or the
 * connection closed.
 */
const STUCK_WRITER = String.raw`
const net = require("net");
const [socketPath, workspace, connectionsText, writesText] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
let nextId = 1;

function open(c) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const pending = new Map();
    readFrames(socket, (text) => {
      const message = JSON.parse(text);
      if (message.id === null) out({ event: "refused", c, code: message.error.data.code });
      else pending.get(message.id)?.(message);
    });
    socket.on("error", () => {});
    const closed = new Promise((r) => socket.once("close", r));
    const send = (method, params) => {
      const id = nextId++;
      const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
      const answered = new Promise((r) => pending.set(id, r));
      const taken = socket.write(Buffer.concat([Buffer.from("Content-Length: " + body.length + "\r\n\r\n"), body]));
      const drained = taken ? Promise.resolve() : new Promise((r) => socket.once("drain", r));
      return { answered, drained };
    };
    socket.once("connect", () => send("initialize", { clientName: "stuck-writer" }).answered.then(() => resolve({ send, closed })));
    socket.once("error", reject);
  });
}

async function main() {
  const first = await open("first");
  const call = async (method, params) => {
    const answer = await first.send(method, params).answered;
    if (answer.error) throw new Error(method + ": " + JSON.stringify(answer.error));
    return answer.result;
  };
  const sandbox = await call("sandbox/create", { workspace });
  const pipe = await call("process/spawn", { id: sandbox.id, argv: ["sleep", "600"] });
  const tty = await call("process/spawn", { id: sandbox.id, argv: ["sleep", "600"], pty: { cols: 80, rows: 24 } });
  out({ event: "spawned", pids: [pipe.pid, tty.pid], sandbox: sandbox.id });
  const data = "x".repeat(16 * 1024 * 1024);
  const connections = await Promise.all(Array.from({ length: Number(connectionsText) }, (_, c) => open(c)));
  await Promise.all(connections.map(async (connection, c) => {
    let isClosed = false;
    void connection.closed.then(() => (isClosed = true));
    const answers = [];
    for (let k = 0; k < Number(writesText) && !isClosed; k++) {
      const { answered, drained } = connection.send("process/write", { pid: k % 2 ? tty.pid : pipe.pid, data });
      answers.push(answered.then((a) => out({ event: "answered", c, error: a.error ? a.error.data.code : undefined })));
      await Promise.race([drained, connection.closed]);
      if (!isClosed) out({ event: "sent", c });
    }
    await Promise.race([Promise.all(answers), connection.closed]);
    out({ event: "done", c, closed: isClosed });
  }));
}
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
main().catch((err) => { process.stderr.write(String(err.stack) + "\n"); process.exit(1); });
`;

/**
 * A client program run as a test user: connects, sends the bytes of FRAMES_FILE at once, and
 * then either never reads ("unread"), reads only once a line comes on its stdin ("later"), or
 * reads at once ("read"); it prints each message it gets as a JSON line (a big one as its
 * method, sandbox id, and the number and first of its paths).
 */
const PIPELINER = String.raw`
const net = require("net");
const fs = require("fs");
const [socketPath, framesFile, mode] = process.argv.slice(2);
const socket = net.connect(socketPath);
socket.on("error", () => {});
socket.once("connect", () => {
  if (mode !== "read") socket.pause();
  if (mode === "later") process.stdin.once("data", () => socket.resume());
  socket.write(fs.readFileSync(framesFile));
  process.stdout.write(JSON.stringify({ event: "sent" }) + "\n");
});
readFrames(socket, (text) => {
  const message = JSON.parse(text);
  const shown = text.length <= 100000 ? message : { method: message.method, params: { id: message.params.id, count: message.params.paths.length, first: message.params.paths[0] } };
  process.stdout.write(JSON.stringify({ event: "message", bytes: text.length, message: shown }) + "\n");
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
`;

function ensureUser(name: string): User {
  if (spawnSync("id", [name]).status !== 0) execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", name]);
  execFileSync("usermod", ["-aG", GROUP, name]);
  const id = (flag: string) => Number(execFileSync("id", [flag, name]).toString().trim());
  return { name, uid: id("-u"), gid: id("-g") };
}

before(() => {
  if (spawnSync("getent", ["group", GROUP]).status !== 0) execFileSync("groupadd", [GROUP]);
  userA = ensureUser("paddock-sec-a");
  userB = ensureUser("paddock-sec-b");
  clients = tempDir("paddock-sec-clients-");
  fs.chmodSync(clients, 0o755);
  for (const [name, program] of [["holder.js", HOLDER], ["stuck-writer.js", STUCK_WRITER], ["pipeliner.js", PIPELINER]] as const) {
    fs.writeFileSync(path.join(clients, name), READ_FRAMES + program, { mode: 0o644 });
  }
  fs.copyFileSync(path.join(REPO, "test", "clients", "paddock_client.py"), path.join(clients, "client.py"));
  fs.chmodSync(path.join(clients, "client.py"), 0o755);
});

const agents: AgentProcess[] = [];
const holders: Holder[] = [];
after(async () => {
  for (const h of holders) h.stop();
  for (const a of agents) await a.stop();
});

async function startAgent(env: NodeJS.ProcessEnv = {}): Promise<{ agent: AgentProcess; socketPath: string }> {
  const base = tempDir("paddock-sec-conn-");
  fs.chmodSync(base, 0o755);
  const socketPath = path.join(base, "run", "agent.sock");
  const agent = await startSocketAgent(path.join(base, "state"), socketPath, ["--socket-group", GROUP], env);
  agents.push(agent);
  return { agent, socketPath };
}

interface HolderEvent {
  i?: number;
  event: "connected" | "message" | "sent" | "closed" | "ready";
  message?: RpcMessage;
}

/** A holder program running as `user`, and what it has reported so far. */
class Holder {
  readonly events: HolderEvent[] = [];
  private readonly child: ChildProcess;
  private stderr = "";

  constructor(user: User, socketPath: string, scenario: string, count: number, size = 0) {
    this.child = spawn("setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", process.execPath, path.join(clients, "holder.js"), socketPath, scenario, String(count), String(size)], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let partial = "";
    this.child.stdout!.on("data", (d: Buffer) => {
      const lines = (partial + d.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line) this.events.push(JSON.parse(line) as HolderEvent);
    });
    this.child.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString("utf8")));
    holders.push(this);
  }

  get ready(): boolean {
    return this.events.some((e) => e.event === "ready");
  }

  /** Connections that got the event. */
  with(event: HolderEvent["event"]): Set<number> {
    return new Set(this.events.filter((e) => e.event === event).map((e) => e.i!));
  }

  /** The messages the agent sent on each connection. */
  messages(): Map<number, RpcMessage[]> {
    const byConnection = new Map<number, RpcMessage[]>();
    for (const e of this.events) if (e.event === "message") byConnection.set(e.i!, [...(byConnection.get(e.i!) ?? []), e.message!]);
    return byConnection;
  }

  async until(what: string, done: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`holder: ${what} did not happen within ${timeoutMs} ms; stderr: ${this.stderr.slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop(): void {
    this.child.stdin!.end();
    this.child.kill("SIGKILL");
  }
}

/** Initialize over a fresh connection, as `user`, with the Python client. */
function initializeAs(socketPath: string, user: User): { status: number | null; uid?: number; stderr: string } {
  const r = spawnSync("setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "/usr/bin/python3", path.join(clients, "client.py"), socketPath, "initialize"], {
    encoding: "utf8",
    timeout: 15_000,
  });
  if (r.status !== 0) return { status: r.status, stderr: r.stderr };
  return { status: 0, uid: ((JSON.parse(r.stdout) as RpcMessage).result as { client: { uid: number } }).client.uid, stderr: r.stderr };
}

function errorCode(m: RpcMessage | undefined): string | undefined {
  return m?.error?.data?.code;
}

test("one user holding 150 half-header connections leaves the other user and root served", async () => {
  const { socketPath } = await startAgent();
  const hog = new Holder(userA, socketPath, "half-header", 150);
  await hog.until("150 connections", () => hog.ready);

  const other = initializeAs(socketPath, userB);
  assert.equal(other.status, 0, `the other user is served: ${other.stderr}`);
  assert.equal(other.uid, userB.uid);
  const root = await socketPeer(socketPath);
  const init = await root.peer.call("initialize", {});
  assert.ok(init.result, `root is served: ${JSON.stringify(init)}`);
  assert.deepEqual((await root.peer.call("system/ping", { data: "still here" })).result, { data: "still here" });
  root.socket.destroy();

  // The hog keeps its own 32 slots; each connection past them is told why before it closes.
  const limit = CONNECTIONS_PER_USER;
  await hog.until("the refusals", () => hog.with("closed").size >= 150 - limit);
  const refusedOnes = [...hog.with("closed")];
  const messages = hog.messages();
  for (const i of refusedOnes) {
    const [refusal] = messages.get(i) ?? [];
    assert.equal(errorCode(refusal), "E_TOO_MANY_CONNECTIONS", `connection ${i}: ${JSON.stringify(refusal)}`);
    assert.match(refusal!.error!.message, new RegExp(`${userA.uid}.*${limit}`));
    assert.ok(refusal!.error!.data?.hint);
  }
  assert.equal(150 - refusedOnes.length, limit, "the hog holds exactly its own slots");
  // Idle partial headers are held until their deadline (10 s), not dropped at once.
  assert.equal(hog.with("closed").size, 150 - limit);
  hog.stop();
});

test("connections announcing 32 MiB, sending 31 MiB and holding leave the agent's memory bounded", async (t) => {
  const { agent, socketPath } = await startAgent();
  const pid = agent.child.pid!;
  const before = rssMiB(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  // 34 connections of 31 MiB each: over 1 GiB if the agent kept them all.
  const perUser = 17;
  const hogs = [new Holder(userA, socketPath, "big-body", perUser, 31 * MiB), new Holder(userB, socketPath, "big-body", perUser, 31 * MiB)];
  try {
    for (const hog of hogs) {
      await hog.until("every connection sent or closed", () => {
        const settled = new Set([...hog.with("sent"), ...hog.with("closed")]);
        return hog.ready && settled.size >= perUser;
      }, 60_000);
    }
    await new Promise((r) => setTimeout(r, 500));
    peak = Math.max(peak, rssMiB(pid));
  } finally {
    clearInterval(sampler);
  }
  const grown = peak - before;
  t.diagnostic(`34 connections announcing 32 MiB and sending 31 MiB: the agent grew by ${Math.round(grown)} MiB (from ${Math.round(before)} MiB)`);
  const budget = BUDGET_MiB;
  // 64 MiB per user, held a few times over while frames are copied; 1,064 MiB before the budget.
  assert.ok(grown < 300, `the agent grew by ${Math.round(grown)} MiB (from ${Math.round(before)} MiB); its budget is ${budget} MiB per user`);

  for (const hog of hogs) {
    const held = [...hog.with("sent")].filter((i) => !hog.with("closed").has(i));
    assert.equal(held.length, Math.floor(budget / 32), "each user's budget holds two such frames");
    const messages = hog.messages();
    for (const i of hog.with("closed")) {
      const [refusal] = messages.get(i) ?? [];
      assert.equal(errorCode(refusal), "E_FRAME_BUDGET", `connection ${i}: ${JSON.stringify(refusal)}`);
      assert.match(refusal!.error!.message, /33554432 bytes/);
      assert.ok(refusal!.error!.data?.hint);
    }
  }
  // Root is still served meanwhile.
  const root = await socketPeer(socketPath);
  assert.ok((await root.peer.call("initialize", {})).result);
  root.socket.destroy();

  // When the holders go, their budget is given back: the same user's 32 MiB request is answered.
  for (const hog of hogs) hog.stop();
  await new Promise((r) => setTimeout(r, 300));
  const again = new Holder(userA, socketPath, "padded-initialize", 2, 32 * MiB);
  await again.until("two 32 MiB requests answered", () => again.with("message").size === 2, 30_000);
  for (const [, [answer]] of again.messages()) {
    assert.equal((answer?.result as { client?: { uid: number } } | undefined)?.client?.uid, userA.uid, JSON.stringify(answer).slice(0, 300));
  }
  again.stop();
});

test("a partial header or a body that idles or crawls past its deadline is dropped with an error; an idle connection is not", async () => {
  const { socketPath } = await startAgent({ PADDOCK_FRAME_DEADLINE_MS: "500" });
  const idle = await socketPeer(socketPath);
  assert.ok((await idle.peer.call("initialize", {})).result);

  const half = await socketPeer(socketPath);
  half.peer.sendBytes("Content-Length: 4");
  const headerLate = (await half.peer.next(5000)) as RpcMessage;
  assert.equal(errorCode(headerLate), "E_FRAME_TIMEOUT", JSON.stringify(headerLate));
  assert.match(headerLate.error!.message, /header/);
  assert.ok(headerLate.error!.data?.hint);
  await half.peer.waitFor(() => false, 3000).catch((err: Error) => assert.match(err.message, /ended/, "then the connection is closed"));

  const stalled = await socketPeer(socketPath);
  stalled.peer.sendBytes('Content-Length: 100\r\n\r\n{"jsonrpc"');
  const bodyLate = (await stalled.peer.next(5000)) as RpcMessage;
  assert.equal(errorCode(bodyLate), "E_FRAME_TIMEOUT", JSON.stringify(bodyLate));
  assert.match(bodyLate.error!.message, /100 bytes/);
  await stalled.peer.waitFor(() => false, 3000).catch((err: Error) => assert.match(err.message, /ended/));

  // A body that keeps coming, but slower than the agent accepts (a byte every 100 ms).
  const crawling = await socketPeer(socketPath);
  crawling.peer.sendBytes("Content-Length: 1000\r\n\r\n");
  const trickle = setInterval(() => crawling.socket.writable && crawling.peer.sendBytes(" "), 100);
  const crawled = (await crawling.peer.next(5000)) as RpcMessage;
  clearInterval(trickle);
  assert.equal(errorCode(crawled), "E_FRAME_TIMEOUT", JSON.stringify(crawled));

  // The connection that sat idle between frames all along is still served.
  assert.deepEqual((await idle.peer.call("system/ping", { data: "idle is fine" })).result, { data: "idle is fine" });
  for (const c of [idle, half, stalled, crawling]) c.socket.destroy();
});

test("a frame that arrived while the agent itself was held up is read, not timed out", async () => {
  const { agent, socketPath } = await startAgent({ PADDOCK_FRAME_DEADLINE_MS: "500" });
  const client = await socketPeer(socketPath);
  assert.ok((await client.peer.call("initialize", {})).result);
  const frame = pingFrame("while-held-up");
  client.peer.sendBytes(frame.slice(0, 10));
  await new Promise((r) => setTimeout(r, 100));
  // Stopped three times the header deadline (as a long synchronous step would hold it): the rest
  // of the frame waits in the socket, and the deadline's timer is due before anything is read.
  process.kill(agent.child.pid!, "SIGSTOP");
  try {
    client.peer.sendBytes(frame.slice(10));
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    process.kill(agent.child.pid!, "SIGCONT");
  }
  const answer = (await client.peer.next(5000)) as RpcMessage;
  assert.deepEqual(answer.result, { data: "while-held-up" }, JSON.stringify(answer));
  client.socket.destroy();
});

test("a header longer than the cap that names a length closes the connection with an error, never silence", async () => {
  const { socketPath } = await startAgent();
  const client = await socketPeer(socketPath);
  assert.ok((await client.peer.call("initialize", {})).result);
  const body = JSON.stringify({ jsonrpc: "2.0", id: "padded", method: "system/ping" });
  client.peer.sendBytes(`Content-Length: ${body.length}\r\nX-Padding: ${"x".repeat(9 * 1024)}\r\n\r\n${body}${pingFrame("after-long-header")}`);
  const refusal = (await client.peer.next(5000)) as RpcMessage;
  assert.equal(errorCode(refusal), "E_FRAME_HEADER");
  assert.match(refusal.error!.message, /cannot be known/);
  assert.ok(refusal.error!.data?.hint);
  await client.peer.waitFor(() => false, 3000).catch((err: Error) => assert.match(err.message, /ended/, "then the connection is closed"));
  client.socket.destroy();
});

test("writes piled up for programs that never read their input leave the agent's memory bounded, and others served", async (t) => {
  const { agent, socketPath } = await startAgent();
  const workspace = path.join(tempDir("paddock-sec-stuck-"), "ws");
  fs.chmodSync(path.dirname(workspace), 0o755);
  fs.mkdirSync(workspace);
  fs.writeFileSync(path.join(workspace, "README"), "stuck writers\n");
  fs.chownSync(workspace, userA.uid, userA.gid);
  fs.chownSync(path.join(workspace, "README"), userA.uid, userA.gid);

  const pid = agent.child.pid!;
  const before = rssMiB(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  // 4 connections of 12 writes of 16 MiB: 768 MiB for two programs that read none of it.
  const connections = 4;
  const writes = 12;
  const writer = spawn("setpriv", [`--reuid=${userA.uid}`, `--regid=${userA.gid}`, "--init-groups", process.execPath, path.join(clients, "stuck-writer.js"), socketPath, workspace, String(connections), String(writes)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const events: { event: string; c?: number; pids?: number[]; error?: string; code?: string; closed?: boolean }[] = [];
  let stderr = "";
  let partial = "";
  writer.stdout.on("data", (d: Buffer) => {
    const lines = (partial + d.toString("utf8")).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line) events.push(JSON.parse(line) as (typeof events)[number]);
  });
  writer.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  t.after(() => writer.kill("SIGKILL"));
  const count = (event: string) => events.filter((e) => e.event === event).length;
  const until = async (what: string, done: () => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline || writer.exitCode !== null) throw new Error(`${what} did not happen within ${timeoutMs} ms; stderr: ${stderr.slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await until("the programs started", () => count("spawned") === 1, 30_000);
    // The agent takes what its limits allow and then reads no more; give it time to take it all
    // (from the first write on: a loaded machine can take seconds to start writing).
    await until("the first write was sent", () => count("sent") > 0, 30_000);
    let sent = -1;
    while (sent !== count("sent")) {
      sent = count("sent");
      await new Promise((r) => setTimeout(r, 2000));
    }
    // Root is answered meanwhile, and at once.
    const root = await socketPeer(socketPath);
    assert.ok((await root.peer.call("initialize", {})).result);
    const started = performance.now();
    assert.deepEqual((await root.peer.call("system/ping", { data: "meanwhile" })).result, { data: "meanwhile" });
    const pingMs = performance.now() - started;
    root.socket.destroy();
    peak = Math.max(peak, rssMiB(pid));
    t.diagnostic(`${connections * writes} writes of 16 MiB to programs that do not read: ${count("sent")} taken by the socket, the agent grew by ${Math.round(peak - before)} MiB (from ${Math.round(before)} MiB); root's ping ${Math.round(pingMs)} ms`);
    // What one user may have in flight and in unfinished frames (64 MiB each), each byte held at
    // most a few times over (the frame, its text, the parsed params, the terminal's copy).
    assert.ok(peak - before < 480, `the agent grew by ${Math.round(peak - before)} MiB for ${connections * writes * 16} MiB of unread input`);
    assert.ok(pingMs < 2000, `root waited ${Math.round(pingMs)} ms for a ping`);
    assert.ok(count("answered") < connections * writes, "writes to programs that do not read wait");
  } finally {
    clearInterval(sampler);
  }

  // Once the programs end, every write is answered (a connection that started more frames than
  // its user's budget holds is closed with E_FRAME_BUDGET, as any would be): nothing hangs.
  const [spawned] = events.filter((e) => e.event === "spawned");
  const killed = callAs(socketPath, userA, spawned!.pids!.map((p) => ["process/kill", { pid: p, signal: "SIGKILL" }]));
  assert.deepEqual(killed.map((r) => r.error), [undefined, undefined], JSON.stringify(killed));
  await until("every connection settled", () => count("done") === connections, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(events.filter((e) => e.event !== "sent"))}`);
  });
  const settled = events.filter((e) => e.event === "done");
  const refusedOnes = new Set(events.filter((e) => e.event === "refused" && e.code === "E_FRAME_BUDGET").map((e) => e.c));
  for (const done of settled) assert.ok(!done.closed || refusedOnes.has(done.c), `connection ${done.c} closed without a refusal: ${JSON.stringify(events.filter((e) => e.c === done.c && e.event !== "sent"))}`);
  assert.ok(settled.filter((d) => !d.closed).length >= 2, "most connections keep going");
  // A write taken before the programs ended is answered null; one past what may wait for a
  // program, E_INPUT_BUSY at once; one read after they ended, E_NOT_FOUND.
  const codes = new Set(events.filter((e) => e.event === "answered" && e.error).map((e) => e.error));
  assert.ok(codes.has("E_INPUT_BUSY"), `writes past what may wait are refused: ${[...codes].join(", ")}`);
  assert.deepEqual([...codes].filter((code) => code !== "E_NOT_FOUND" && code !== "E_INPUT_BUSY"), []);
});

test("60 reads of a 20 MiB file sent at once, unread or in one batch, leave the agent's memory bounded", async (t) => {
  const base = tempDir("paddock-sec-reads-");
  fs.chmodSync(base, 0o755);
  const workspace = path.join(base, "ws");
  fs.mkdirSync(workspace);
  fs.writeFileSync(path.join(workspace, "big"), Buffer.alloc(20 * MiB, "a"));
  execFileSync("chown", ["-R", `${userA.uid}:${userA.gid}`, workspace]);
  const frame = (message: object) => {
    const body = Buffer.from(JSON.stringify(message));
    return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]);
  };

  /** On a fresh agent, userA's sandbox of the workspace, then the 60 reads sent as `shape`. */
  const run = async (shape: "pipelined" | "batched", mode: "unread" | "read") => {
    const { agent, socketPath } = await startAgent();
    const [created] = callAs(socketPath, userA, [["sandbox/create", { workspace }]]);
    const id = (created!.result as { id: string }).id;
    const reads = Array.from({ length: 60 }, (_, i) => ({ jsonrpc: "2.0", id: i + 1, method: "sandbox/readFile", params: { id, path: "big" } }));
    const initialize = frame({ jsonrpc: "2.0", id: 0, method: "initialize", params: { clientName: "reads" } });
    const file = path.join(base, shape);
    fs.writeFileSync(file, Buffer.concat([initialize, ...(shape === "pipelined" ? reads.map(frame) : [frame(reads)])]), { mode: 0o644 });

    const pid = agent.child.pid!;
    const child = spawn("setpriv", [`--reuid=${userA.uid}`, `--regid=${userA.gid}`, "--init-groups", process.execPath, path.join(clients, "pipeliner.js"), socketPath, file, mode], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
    const before = rssMiB(pid);
    let peak = before;
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, rssMiB(pid));
    }
    child.stdin.end();
    child.kill("SIGKILL");
    // The agent is well and answers afterwards.
    const root = await socketPeer(socketPath);
    assert.ok((await root.peer.call("initialize", {})).result);
    root.socket.destroy();
    const messages = out.split("\n").filter((l) => l).map((l) => JSON.parse(l) as { event: string; message?: RpcMessage | null });
    return { grown: peak - before, messages };
  };

  const unread = await run("pipelined", "unread");
  const batch = await run("batched", "read");
  t.diagnostic(`60 reads of 20 MiB: the agent grew by ${Math.round(unread.grown)} MiB with them pipelined and unread, ${Math.round(batch.grown)} MiB with them in one batch`);
  assert.ok(unread.grown < 400, `pipelined and unread: the agent grew by ${Math.round(unread.grown)} MiB`);
  assert.ok(batch.grown < 400, `one batch: the agent grew by ${Math.round(batch.grown)} MiB`);
  const answer = batch.messages.map((m) => m.message).find((m) => m && m.id === null);
  assert.equal(errorCode(answer ?? undefined), "E_RESPONSE_TOO_LARGE", JSON.stringify(batch.messages).slice(0, 500));
  assert.match(answer!.error!.message, /were not run/);
});

test("a client that reads nothing while its sandbox churns is held one 'list again' per sandbox, not every notification", async (t) => {
  const { agent, socketPath } = await startAgent();
  const base = tempDir("paddock-sec-churn-");
  fs.chmodSync(base, 0o755);
  const workspace = path.join(base, "ws");
  fs.mkdirSync(workspace);
  fs.writeFileSync(path.join(workspace, "README"), "churn\n");
  execFileSync("chown", ["-R", `${userA.uid}:${userA.gid}`, workspace]);
  const [created] = callAs(socketPath, userA, [["sandbox/create", { workspace }]]);
  const id = (created!.result as { id: string }).id;

  // The lazy client says initialize, then reads nothing until told to.
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { clientName: "lazy" } }));
  const initialize = path.join(base, "initialize");
  fs.writeFileSync(initialize, Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]), { mode: 0o644 });
  const lazy = spawn("setpriv", [`--reuid=${userA.uid}`, `--regid=${userA.gid}`, "--init-groups", process.execPath, path.join(clients, "pipeliner.js"), socketPath, initialize, "later"], { stdio: ["pipe", "pipe", "inherit"] });
  t.after(() => lazy.kill("SIGKILL"));
  let out = "";
  lazy.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
  await new Promise((r) => setTimeout(r, 1000));

  // 20 rounds of 1,000 new files with 250-character names: about 5 MB of sandbox/didChange.
  const rounds = 20;
  const churn = `for r in $(seq ${rounds}); do mkdir r$r; (cd r$r && seq 1000 | sed 's/^/${"n".repeat(245)}/' | xargs touch); sleep 0.1; done`;
  const pid = agent.child.pid!;
  const before = rssMiB(pid);
  const [ran] = callAs(socketPath, userA, [["sandbox/exec", { id, argv: ["sh", "-c", churn] }]]);
  assert.equal((ran!.result as { exitCode: number }).exitCode, 0, JSON.stringify(ran));
  await new Promise((r) => setTimeout(r, 1500));
  const grown = rssMiB(pid) - before;

  lazy.stdin.write("read\n");
  await new Promise((r) => setTimeout(r, 2000));
  const notes = out
    .split("\n")
    .filter((l) => l)
    .map((l) => JSON.parse(l) as { bytes?: number; message?: RpcMessage & { params?: { id?: string; paths?: string[]; count?: number; first?: string } } })
    .filter((e) => e.message?.method === "sandbox/didChange" && e.message.params?.id === id);
  const bytes = notes.reduce((sum, e) => sum + (e.bytes ?? 0), 0);
  t.diagnostic(`${rounds} rounds of 1,000 files (about ${rounds * 250} KB of changed paths) while a client read nothing: once it read, it got ${notes.length} sandbox/didChange of ${Math.round(bytes / 1024)} KB; the agent grew by ${Math.round(grown)} MiB`);
  assert.ok(notes.length >= 1, "the client hears that the sandbox changed");
  // What was sent before the client fell 1 MiB behind, what the socket itself holds, and one held.
  assert.ok(bytes < 3 * MiB, `the client that read nothing was sent ${Math.round(bytes / 1024)} KB of notifications`);
  const last = notes[notes.length - 1]!.message!.params!;
  assert.deepEqual(last.paths ?? [last.first], [""], "what it missed is one 'list everything again'");
});

/** A ping request, framed. */
function pingFrame(id: string): string {
  const body = JSON.stringify({ jsonrpc: "2.0", id, method: "system/ping", params: { data: id } });
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

test("after a header refused for its charset, the announced body is skipped and the next request answered", async () => {
  const { socketPath } = await startAgent();
  const client = await socketPeer(socketPath);
  assert.ok((await client.peer.call("initialize", {})).result);
  const latin1Body = JSON.stringify({ jsonrpc: "2.0", id: "latin1", method: "system/ping" });
  client.peer.sendBytes(`Content-Length: ${latin1Body.length}\r\nContent-Type: application/vscode-jsonrpc; charset=latin1\r\n\r\n${latin1Body}${pingFrame("after-charset")}`);
  const refusal = (await client.peer.next()) as RpcMessage;
  assert.equal(errorCode(refusal), "E_FRAME_HEADER");
  assert.match(refusal.error!.message, /UTF-8/);
  const answer = (await client.peer.next()) as RpcMessage;
  assert.deepEqual(answer.result, { data: "after-charset" }, `the next request is answered, got ${JSON.stringify(answer)}`);
  client.socket.destroy();
});

test("after a header with two different Content-Lengths, the client gets an error and the connection closes, never silence", async () => {
  const { socketPath } = await startAgent();
  const client = await socketPeer(socketPath);
  assert.ok((await client.peer.call("initialize", {})).result);
  client.peer.sendBytes(`Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}${pingFrame("after-two-lengths")}`);
  const refusal = (await client.peer.next()) as RpcMessage;
  assert.equal(errorCode(refusal), "E_FRAME_HEADER");
  assert.match(refusal.error!.message, /two different Content-Length/);
  assert.ok(refusal.error!.data?.hint);
  // Where that frame ends cannot be known, so nothing after it can be trusted: the next thing
  // the client sees is its answer or the end of the connection, not a wait.
  const after = await client.peer.next(5000).then(
    (m) => m as RpcMessage,
    (err: Error) => err,
  );
  if (after instanceof Error) assert.match(after.message, /ended/, "the connection closes");
  else assert.deepEqual(after.result, { data: "after-two-lengths" }, `got ${JSON.stringify(after)}`);
  client.socket.destroy();
});

test("admission: per-user slots, slots kept for root and the owner, budgets given back, sane defaults", () => {
  const limits = { ...DEFAULT_ADMISSION_LIMITS, maxConnections: 10, reservedForPrivileged: 3, maxConnectionsPerUid: 4, maxBufferedBytesPerUid: 100 };
  const admission = new Admission(limits, new Set([0, 500]));
  const refusedCode = (uid: number) => {
    try {
      admission.admit(uid);
      return undefined;
    } catch (err) {
      return (err as PaddockError).code;
    }
  };
  const tickets = [1001, 1001, 1001, 1001].map((uid) => admission.admit(uid));
  assert.equal(refusedCode(1001), "E_TOO_MANY_CONNECTIONS", "a fifth connection of one user");
  admission.admit(1002);
  admission.admit(1002);
  admission.admit(1003);
  assert.equal(refusedCode(1004), "E_TOO_MANY_CONNECTIONS", "the last 3 slots are kept for root and the owner");
  for (const uid of [0, 500, 0]) admission.admit(uid);
  assert.equal(refusedCode(0), "E_TOO_MANY_CONNECTIONS", "the global cap holds for root too");
  tickets[0]!.close();
  tickets[0]!.close();
  admission.admit(0);
  assert.equal(refusedCode(0), "E_TOO_MANY_CONNECTIONS", "a ticket closed twice frees one slot");

  const [a, b] = [tickets[1]!, tickets[2]!];
  assert.equal(a.reserve(60), undefined);
  assert.equal(b.reserve(40), undefined);
  assert.equal(b.reserve(1)?.code, "E_FRAME_BUDGET", "one user's connections share one budget");
  a.close();
  assert.equal(b.reserve(60), undefined, "a closed connection's bytes are given back");

  // Requests in flight: all of one user's connections together; those waiting hear of room.
  const inFlight = new Admission({ ...DEFAULT_ADMISSION_LIMITS, maxInFlightBytesPerUid: 100 }, new Set([0]));
  const [x, y, other] = [inFlight.admit(1001), inFlight.admit(1001), inFlight.admit(1002)];
  let rooms = 0;
  const stopListening = y.onRoom(() => rooms++);
  x.requestStarted(60);
  y.requestStarted(40);
  assert.ok(x.inFlightFull && y.inFlightFull, "one user's requests in flight share one limit");
  assert.equal(other.inFlightFull, false, "another user's are apart");
  x.requestEnded(60);
  assert.equal(rooms, 1);
  assert.equal(y.inFlightFull, false);
  x.close();
  stopListening();
  y.requestStarted(70);
  y.requestEnded(70);
  assert.equal(rooms, 1, "no word after unsubscribing");

  // The real defaults: deadlines generous for a local client, short for a hostile one.
  assert.equal(DEFAULT_ADMISSION_LIMITS.headerTimeoutMs, 10_000);
  assert.equal(DEFAULT_ADMISSION_LIMITS.maxConnectionsPerUid, CONNECTIONS_PER_USER);
  assert.equal(DEFAULT_ADMISSION_LIMITS.maxBufferedBytesPerUid, BUDGET_MiB * MiB);
  assert.ok(DEFAULT_ADMISSION_LIMITS.minBodyBytesPerSecond <= MiB);
  assert.deepEqual(admissionLimitsFromEnv({}), DEFAULT_ADMISSION_LIMITS);
  assert.equal(admissionLimitsFromEnv({ PADDOCK_FRAME_DEADLINE_MS: "500" }).headerTimeoutMs, 500);
  assert.throws(() => admissionLimitsFromEnv({ PADDOCK_FRAME_DEADLINE_MS: "soon" }), /PADDOCK_FRAME_DEADLINE_MS/);
});
