/** Shared pieces of the benchmarks: timing, percentiles, an agent to measure, result files. */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { AgentClient, isListening } from "../protocol/client";

export const REPO = path.resolve(__dirname, "..");
export const PADDOCK = path.join(REPO, "dist", "paddock.js");

export const round = (n: number) => Math.round(n * 10) / 10;
export const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export async function timeMs(work: () => Promise<unknown> | unknown): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

export async function waitForSocket(socketPath: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await isListening(socketPath)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nothing listens on ${socketPath}`);
}

export interface BenchAgent {
  work: string;
  stateDir: string;
  socketPath: string;
  child: ChildProcess;
  client(): Promise<AgentClient>;
  stop(): void;
}

/** An agent on a socket with a fresh state dir under a scratch directory. */
export async function startBenchAgent(prefix: string, env: NodeJS.ProcessEnv = {}): Promise<BenchAgent> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const stateDir = path.join(work, "state");
  const socketPath = path.join(work, "run", "agent.sock");
  const child = spawn(process.execPath, [PADDOCK, "agent", "--socket", socketPath, "--state-dir", stateDir, "--log-level", "warn"], { stdio: "ignore", env: { ...process.env, ...env } });
  await waitForSocket(socketPath);
  return {
    work,
    stateDir,
    socketPath,
    child,
    async client() {
      const client = await AgentClient.connect(socketPath);
      await client.initialize("bench");
      return client;
    },
    stop() {
      child.kill("SIGTERM");
    },
  };
}

export function machine() {
  return { cpus: os.cpus().length, kernel: os.release(), node: process.version };
}

export type Row = readonly [measure: string, value: string, anchor: string, target: string, met: boolean | undefined];

/** Writes bench/results/<name>.json and <name>.md, and prints the table. */
export function writeResults(name: string, title: string, note: string, results: object, rows: Row[]): void {
  const table = [
    `# ${title} (${new Date().toISOString()})`,
    "",
    `${machine().cpus} cores, kernel ${machine().kernel}, Node ${machine().node}. ${note}`,
    "",
    "| measure | Paddock | anchor (same run) | target | met |",
    "|---|---|---|---|---|",
    ...rows.map(([measure, value, anchor, target, met]) => `| ${measure} | ${value} | ${anchor} | ${target} | ${met === undefined ? "" : met ? "yes" : "NO"} |`),
    "",
  ].join("\n");
  const dir = path.join(REPO, "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify({ date: new Date().toISOString(), machine: machine(), ...results }, null, 2) + "\n");
  fs.writeFileSync(path.join(dir, `${name}.md`), table);
  console.log(table);
}
