/**
 * The agent's answer time to one client while another user holds 150 half-open connections
 * (each sent half a frame header and stopped), beside the same measured with no such
 * connections in the same run (the anchor). A root agent on a socket with --socket-group
 * nogroup; the connections are held by a process running as nobody, as a group member would.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { AgentClient } from "../protocol/client";
import { PADDOCK, percentile, ratio, round, waitForSocket, writeResults, type Row } from "./lib";

const PINGS = Number(process.env.BENCH_ROUNDS ?? 3000);
const FRESH = Number(process.env.BENCH_CONNECTS ?? 200);
const HALF_OPEN = 150;
const NOBODY = 65534;

/** Run as nobody: opens the connections one by one, each sending half a header; reports events. */
const HOLDER = `
const net = require("net");
const [socketPath, count] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
(async () => {
  for (let i = 0; i < Number(count); i++) {
    await new Promise((resolve) => {
      const socket = net.connect(socketPath);
      socket.on("error", () => resolve());
      socket.on("data", () => out({ i, event: "answered" }));
      socket.on("close", () => out({ i, event: "closed" }));
      socket.once("connect", () => {
        socket.write("Content-Len");
        resolve();
      });
    });
  }
  out({ event: "ready" });
})();
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
`;

interface Samples {
  pingsUs: number[];
  connectsMs: number[];
}

function summarize({ pingsUs, connectsMs }: Samples) {
  return {
    pingP50Us: round(percentile(pingsUs, 50)),
    pingP99Us: round(percentile(pingsUs, 99)),
    connectP50Ms: round(percentile(connectsMs, 50)),
    connectP99Ms: round(percentile(connectsMs, 99)),
  };
}

async function connect(socketPath: string): Promise<{ client: AgentClient; socket: net.Socket }> {
  const socket = net.connect(socketPath);
  await new Promise((resolve, reject) => (socket.once("connect", resolve), socket.once("error", reject)));
  socket.setNoDelay(true);
  return { client: new AgentClient(socket, socket), socket };
}

/** system/ping round trips on an open connection; a fresh connection's initialize + sandbox/list. */
async function measure(socketPath: string): Promise<Samples> {
  const { client, socket } = await connect(socketPath);
  await client.initialize("bench");
  for (let i = 0; i < 300; i++) await client.request("system/ping", { data: "x" });
  const pings: number[] = [];
  for (let i = 0; i < PINGS; i++) {
    const t = process.hrtime.bigint();
    await client.request("system/ping", { data: "x" });
    pings.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  socket.destroy();
  const connects: number[] = [];
  for (let i = 0; i < FRESH; i++) {
    const t = performance.now();
    const fresh = await connect(socketPath);
    await fresh.client.initialize("bench");
    await fresh.client.request("sandbox/list", {});
    connects.push(performance.now() - t);
    fresh.socket.destroy();
  }
  return { pingsUs: pings, connectsMs: connects };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("this benchmark needs root: it runs the agent as root and the half-open connections as nobody");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-bench-conn-"));
  fs.chmodSync(work, 0o755);
  const socketPath = path.join(work, "run", "agent.sock");
  const agent = spawn(process.execPath, [PADDOCK, "agent", "--socket", socketPath, "--socket-group", "nogroup", "--state-dir", path.join(work, "state"), "--log-level", "error"], { stdio: "ignore" });
  try {
    await waitForSocket(socketPath);
    const anchorBefore = await measure(socketPath);

    const holder = spawn(process.execPath, ["-e", HOLDER, socketPath, String(HALF_OPEN)], { uid: NOBODY, gid: NOBODY, stdio: ["pipe", "pipe", "inherit"] });
    const events: { i?: number; event: string; at: number }[] = [];
    let partial = "";
    holder.stdout.on("data", (d: Buffer) => {
      const lines = (partial + d.toString("utf8")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) if (line) events.push({ ...(JSON.parse(line) as { i?: number; event: string }), at: performance.now() });
    });
    const heldSince = performance.now();
    const until = async (done: () => boolean, what: string, ms: number) => {
      const deadline = performance.now() + ms;
      while (!done()) {
        if (performance.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await until(() => events.some((e) => e.event === "ready"), "the half-open connections", 10_000);
    // The refused ones are answered and closed at once; let that settle before measuring.
    await new Promise((r) => setTimeout(r, 1200));
    const closedBefore = new Set(events.filter((e) => e.event === "closed").map((e) => e.i));
    const loaded = summarize(await measure(socketPath));
    const measuredWithin = round((performance.now() - heldSince) / 1000);
    const stillHeld = HALF_OPEN - new Set(events.filter((e) => e.event === "closed").map((e) => e.i)).size;
    // Then the ones the agent kept reach their header deadline and are dropped.
    await until(() => new Set(events.filter((e) => e.event === "closed").map((e) => e.i)).size >= HALF_OPEN, "the header deadline", 30_000);
    const lastClosed = Math.max(...events.filter((e) => e.event === "closed").map((e) => e.at));
    const droppedAfterS = round((lastClosed - heldSince) / 1000);
    holder.stdin.end();
    holder.kill();
    // The anchor is measured before and after, so the machine's drift weighs on both sides.
    const anchorAfter = await measure(socketPath);
    const anchor = summarize({ pingsUs: [...anchorBefore.pingsUs, ...anchorAfter.pingsUs], connectsMs: [...anchorBefore.connectsMs, ...anchorAfter.connectsMs] });

    const results = {
      config: { pings: PINGS, freshConnections: FRESH, halfOpen: HALF_OPEN },
      anchor,
      withHalfOpen: loaded,
      halfOpen: { refusedAtOnce: closedBefore.size, heldByAgentWhileMeasuring: stillHeld, measuredWithinSeconds: measuredWithin, allDroppedAfterSeconds: droppedAfterS },
      ratios: {
        pingP50: ratio(loaded.pingP50Us, anchor.pingP50Us),
        pingP99: ratio(loaded.pingP99Us, anchor.pingP99Us),
        connectP50: ratio(loaded.connectP50Ms, anchor.connectP50Ms),
        connectP99: ratio(loaded.connectP99Ms, anchor.connectP99Ms),
      },
    };
    const rows: Row[] = [
      ["system/ping round trip p50, 150 half-open connections held", `${loaded.pingP50Us} µs`, `${anchor.pingP50Us} µs without (×${results.ratios.pingP50})`, "≤ ×1.5", results.ratios.pingP50 <= 1.5],
      ["system/ping round trip p99, 150 half-open connections held", `${loaded.pingP99Us} µs`, `${anchor.pingP99Us} µs without (×${results.ratios.pingP99})`, "≤ ×2", results.ratios.pingP99 <= 2],
      ["new connection: connect + initialize + sandbox/list p50", `${loaded.connectP50Ms} ms`, `${anchor.connectP50Ms} ms without (×${results.ratios.connectP50})`, "≤ ×1.5", results.ratios.connectP50 <= 1.5],
      ["new connection: connect + initialize + sandbox/list p99", `${loaded.connectP99Ms} ms`, `${anchor.connectP99Ms} ms without (×${results.ratios.connectP99})`, "≤ ×2", results.ratios.connectP99 <= 2],
      ["half-open connections refused at once (one user's limit is 32)", `${closedBefore.size} of ${HALF_OPEN}`, "", `${HALF_OPEN - 32}`, closedBefore.size === HALF_OPEN - 32],
      ["the rest dropped at their header deadline (10 s)", `after ${droppedAfterS} s`, "", "≤ 12 s", droppedAfterS <= 12],
    ];
    writeResults(
      "connections",
      "Connections benchmark",
      `A root agent on a socket with --socket-group; the half-open connections are held by one other user (nobody), opened one after another, each having sent "Content-Len" and nothing more. The anchor is the same measure with no such connections, in the same run, just before and after (pooled); ${PINGS} pings on one connection, ${FRESH} fresh connections. The measures with them ran within ${measuredWithin} s of the first one, before their deadline.`,
      results,
      rows,
    );
  } finally {
    const exited = new Promise((resolve) => agent.once("exit", resolve));
    agent.kill("SIGTERM");
    await exited;
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
