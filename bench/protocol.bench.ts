/**
 * Protocol round trip over the Unix socket and over stdio, beside a floor measured in the
 * same run: an echo of the same bytes over the same kind of channel, with no JSON-RPC.
 * Also: the agent's idle memory and `paddock check` cold and from cache.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { Readable, Writable } from "node:stream";
import { AgentClient, isListening } from "../protocol/client";
import { encodeFrame } from "../protocol/framing";

const REPO = path.resolve(__dirname, "..");
const PADDOCK = path.join(REPO, "dist", "paddock.js");
const LATENCY_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5000);
const THROUGHPUT_REQUESTS = Number(process.env.BENCH_REQUESTS ?? 40000);
const WINDOW = 64;

const ECHO_SERVER = `
const net = require("net");
const mode = process.argv[1];
if (mode === "stdio") process.stdin.pipe(process.stdout);
else net.createServer((s) => s.pipe(s)).listen(mode);
`;

interface Channel {
  input: Readable;
  output: Writable;
  close(): void;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function waitForSocket(socketPath: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await isListening(socketPath)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${socketPath}`);
}

async function connectSocket(socketPath: string): Promise<Channel> {
  const socket = net.connect(socketPath);
  await new Promise((resolve, reject) => (socket.once("connect", resolve), socket.once("error", reject)));
  socket.setNoDelay(true);
  return { input: socket, output: socket, close: () => socket.destroy() };
}

function childChannel(child: ChildProcess): Channel {
  return { input: child.stdout!, output: child.stdin!, close: () => child.stdin!.end() };
}

/**
 * The floor: the same framed bytes echoed back. A round trip is complete when a whole frame's
 * worth of bytes came back; for throughput, WINDOW frames stay in flight, each written on its
 * own as the RPC client does.
 */
async function measureEcho(channel: Channel, frame: Buffer) {
  let received = 0;
  let onFrames: ((completed: number) => void) | undefined;
  channel.input.on("data", (d: Buffer) => {
    received += d.length;
    const completed = Math.floor(received / frame.length);
    received -= completed * frame.length;
    if (completed > 0) onFrames?.(completed);
  });
  const once = () =>
    new Promise<void>((resolve) => {
      onFrames = () => resolve();
      channel.output.write(frame);
    });
  for (let i = 0; i < 500; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_ROUNDS; i++) {
    const t = process.hrtime.bigint();
    await once();
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const started = performance.now();
  await new Promise<void>((resolve) => {
    let sent = 0;
    let done = 0;
    onFrames = (completed) => {
      done += completed;
      for (let i = 0; i < completed && sent < THROUGHPUT_REQUESTS; i++, sent++) channel.output.write(frame);
      if (done >= THROUGHPUT_REQUESTS) resolve();
    };
    for (; sent < WINDOW; sent++) channel.output.write(frame);
  });
  const seconds = (performance.now() - started) / 1000;
  return summarize(samples, THROUGHPUT_REQUESTS / seconds);
}

async function measureRpc(client: AgentClient) {
  for (let i = 0; i < 500; i++) await client.request("system/ping", { data: "x" });
  const samples: number[] = [];
  for (let i = 0; i < LATENCY_ROUNDS; i++) {
    const t = process.hrtime.bigint();
    await client.request("system/ping", { data: "x" });
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < THROUGHPUT_REQUESTS) {
      next++;
      await client.request("system/ping", { data: "x" });
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, worker));
  const seconds = (performance.now() - started) / 1000;
  return summarize(samples, THROUGHPUT_REQUESTS / seconds);
}

function summarize(samples: number[], requestsPerSecond: number) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50Us: round(percentile(sorted, 50)), p99Us: round(percentile(sorted, 99)), requestsPerSecond: Math.round(requestsPerSecond) };
}

const round = (n: number) => Math.round(n * 10) / 10;
const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024);
}

function timeCli(args: string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PADDOCK, ...args], { stdio: "ignore" });
    child.on("exit", (code) => (code === 0 || code === 1 ? resolve(Math.round(performance.now() - started)) : reject(new Error(`paddock ${args.join(" ")} exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-bench-"));
  const stateDir = path.join(work, "state");
  const socketPath = path.join(work, "run", "agent.sock");
  const echoSocket = path.join(work, "echo.sock");
  const frame = encodeFrame(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "system/ping", params: { data: "x" } }));

  const agent = spawn(process.execPath, [PADDOCK, "agent", "--socket", socketPath, "--state-dir", stateDir, "--log-level", "warn"], { stdio: "ignore" });
  const echo = spawn(process.execPath, ["-e", ECHO_SERVER, echoSocket], { stdio: "ignore" });
  try {
    await waitForSocket(socketPath);
    await waitForSocket(echoSocket);

    const socketChannel = await connectSocket(socketPath);
    const socketClient = new AgentClient(socketChannel.input, socketChannel.output);
    await socketClient.initialize("bench");
    await new Promise((r) => setTimeout(r, 1000));
    const idleRss = rssMiB(agent.pid!);
    const socketRpc = await measureRpc(socketClient);
    const socketFloor = await measureEcho(await connectSocket(echoSocket), frame);

    const stdioAgent = spawn(process.execPath, [PADDOCK, "agent", "--stdio", "--state-dir", path.join(work, "state-stdio"), "--log-level", "warn"], { stdio: ["pipe", "pipe", "ignore"] });
    const stdioClient = new AgentClient(stdioAgent.stdout, stdioAgent.stdin);
    await stdioClient.initialize("bench");
    const stdioRpc = await measureRpc(stdioClient);
    stdioClient.close();
    const stdioEcho = spawn(process.execPath, ["-e", ECHO_SERVER, "stdio"], { stdio: ["pipe", "pipe", "ignore"] });
    const stdioFloor = await measureEcho(childChannel(stdioEcho), frame);
    stdioEcho.kill();
    socketChannel.close();

    const checkCold = await timeCli(["check", "--refresh", "--state-dir", stateDir]);
    const checkCached = await timeCli(["check", "--state-dir", stateDir]);
    const cachedClient = await connectSocket(socketPath);
    const client = new AgentClient(cachedClient.input, cachedClient.output);
    await client.initialize("bench");
    const t = performance.now();
    await client.request("system/check", {});
    const checkCachedRequestMs = round(performance.now() - t);
    cachedClient.close();

    const results = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, kernel: os.release(), node: process.version },
      config: { latencyRounds: LATENCY_ROUNDS, throughputRequests: THROUGHPUT_REQUESTS, window: WINDOW },
      socket: { rpc: socketRpc, floor: socketFloor, p50Ratio: ratio(socketRpc.p50Us, socketFloor.p50Us), throughputRatio: ratio(socketRpc.requestsPerSecond, socketFloor.requestsPerSecond) },
      stdio: { rpc: stdioRpc, floor: stdioFloor, p50Ratio: ratio(stdioRpc.p50Us, stdioFloor.p50Us), throughputRatio: ratio(stdioRpc.requestsPerSecond, stdioFloor.requestsPerSecond) },
      agentIdleRssMiB: idleRss,
      check: { coldCliMs: checkCold, cachedCliMs: checkCached, cachedRequestMs: checkCachedRequestMs },
    };
    const targets = [
      ["socket round trip p50", `${socketRpc.p50Us} µs`, `floor ${socketFloor.p50Us} µs (×${results.socket.p50Ratio})`, "≤ 200 µs", socketRpc.p50Us <= 200],
      ["socket round trip p99", `${socketRpc.p99Us} µs`, `floor ${socketFloor.p99Us} µs`, "", true],
      ["socket requests/s (one connection, 64 in flight)", `${socketRpc.requestsPerSecond}`, `floor ${socketFloor.requestsPerSecond} (×${results.socket.throughputRatio})`, "≥ 20,000", socketRpc.requestsPerSecond >= 20000],
      ["stdio round trip p50", `${stdioRpc.p50Us} µs`, `floor ${stdioFloor.p50Us} µs (×${results.stdio.p50Ratio})`, "", true],
      ["stdio round trip p99", `${stdioRpc.p99Us} µs`, `floor ${stdioFloor.p99Us} µs`, "", true],
      ["stdio requests/s", `${stdioRpc.requestsPerSecond}`, `floor ${stdioFloor.requestsPerSecond} (×${results.stdio.throughputRatio})`, "", true],
      ["agent idle RSS", `${idleRss} MiB`, "", "≤ 60 MiB", idleRss <= 60],
      ["paddock check, booting the probe (CLI wall time)", `${checkCold} ms`, "", "≤ 10,000 ms", checkCold <= 10000],
      ["paddock check from cache (CLI wall time, incl. node start)", `${checkCached} ms`, "", "", true],
      ["system/check from cache (request)", `${checkCachedRequestMs} ms`, "", "≤ 50 ms", checkCachedRequestMs <= 50],
    ] as const;
    const table = [
      `# Protocol benchmark (${results.date})`,
      "",
      `${results.machine.cpus} cores, kernel ${results.machine.kernel}, Node ${results.machine.node}. Floors are echoes of the same bytes over the same kind of channel, measured in this run.`,
      "",
      "| measure | Paddock | floor | target | met |",
      "|---|---|---|---|---|",
      ...targets.map(([name, value, floor, target, met]) => `| ${name} | ${value} | ${floor} | ${target} | ${target ? (met ? "yes" : "NO") : ""} |`),
      "",
    ].join("\n");
    const dir = path.join(REPO, "bench", "results");
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "protocol.json"), JSON.stringify(results, null, 2) + "\n");
    fs.writeFileSync(path.join(dir, "protocol.md"), table);
    console.log(table);
  } finally {
    agent.kill("SIGTERM");
    echo.kill();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
