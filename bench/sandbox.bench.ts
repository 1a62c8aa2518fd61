/**
 * Sandboxes: create on workspaces of 1k, 10k and 100k files (beside `git worktree add` and
 * `cp -a` of the same tree), `sandbox/exec true` (beside a bare bwrap), and PTY throughput
 * and keystroke echo (beside a raw pty), all measured in one run.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pty from "node-pty";
import type { AgentClient } from "../protocol/client";
import { percentile, ratio, round, startBenchAgent, timeMs, writeResults, type Row } from "./lib";

const SIZES = (process.env.BENCH_SIZES ?? "1000,10000,100000").split(",").map(Number);
const CREATES = Number(process.env.BENCH_CREATES ?? 20);
const EXECS = Number(process.env.BENCH_EXECS ?? 50);
const PTY_BYTES = Number(process.env.BENCH_PTY_BYTES ?? 100 * 1024 * 1024);

function makeTree(dir: string, files: number): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) fs.mkdirSync(sub);
    fs.writeFileSync(path.join(sub, `f${i}.txt`), `file ${i}\n`);
  }
}

const git = (cwd: string, ...args: string[]) => execFileSync("git", ["-c", "user.email=b@b", "-c", "user.name=b", ...args], { cwd, stdio: "ignore" });

/**
 * sandbox/changes with 1,000 modified files in the largest workspace, beside `git status` of
 * a worktree with the same edits and `diff -rq` of the workspace against the sandbox's view.
 */
async function changesBench(client: AgentClient, ws: string, worktree: string): Promise<Row[]> {
  const edit = "for i in $(seq 0 999); do echo edited >> d$((i / 100))/f$i.txt; done";
  const { id } = await client.request("sandbox/create", { workspace: ws });
  await client.request("sandbox/exec", { id, argv: ["sh", "-c", edit] });
  execFileSync("sh", ["-c", edit], { cwd: worktree });
  const samples: number[] = [];
  let count = 0;
  for (let i = 0; i < 10; i++) samples.push(await timeMs(async () => (count = (await client.request("sandbox/changes", { id })).changes.length)));
  const status = await timeMs(() => execFileSync("git", ["status", "--porcelain"], { cwd: worktree, maxBuffer: 64 * 1024 * 1024 }));
  const merged = path.join(path.dirname(ws), "state", "sandboxes", id, "merged");
  const diff = await timeMs(() => spawnSync("diff", ["-rq", ws, fs.existsSync(merged) ? merged : ws], { maxBuffer: 64 * 1024 * 1024 }));
  await client.request("sandbox/delete", { id });
  const p50 = round(percentile(samples, 50));
  return [[`sandbox/changes, ${count} modified of ${Math.max(...SIZES)} files (p50)`, `${p50} ms`, `git status ${round(status)} ms; diff -rq ${round(diff)} ms`, "≤ 20 ms", p50 <= 20]];
}

const changesRows: Row[] = [];

async function createBench(client: AgentClient, work: string): Promise<{ rows: Row[]; results: object[] }> {
  const rows: Row[] = [];
  const results: object[] = [];
  for (const files of SIZES) {
    const ws = path.join(work, `ws-${files}`);
    makeTree(ws, files);
    const samples: number[] = [];
    for (let i = 0; i < CREATES; i++) {
      let id = "";
      samples.push(await timeMs(async () => (id = (await client.request("sandbox/create", { workspace: ws })).id)));
      await client.request("sandbox/delete", { id });
    }
    const p50 = round(percentile(samples, 50));
    const copy = await timeMs(() => execFileSync("cp", ["-a", ws, `${ws}-copy`]));
    fs.rmSync(`${ws}-copy`, { recursive: true, force: true });
    git(ws, "init", "-q");
    git(ws, "add", "-A");
    git(ws, "commit", "-q", "-m", "tree");
    const worktree = await timeMs(() => git(ws, "worktree", "add", "-q", `${ws}-wt`));
    if (files === Math.max(...SIZES)) changesRows.push(...(await changesBench(client, ws, `${ws}-wt`)));
    fs.rmSync(`${ws}-wt`, { recursive: true, force: true });
    fs.rmSync(ws, { recursive: true, force: true });
    results.push({ files, createP50Ms: p50, createP99Ms: round(percentile(samples, 99)), cpAMs: round(copy), gitWorktreeAddMs: round(worktree) });
    rows.push([`sandbox/create, ${files} files (p50)`, `${p50} ms`, `cp -a ${round(copy)} ms; git worktree add ${round(worktree)} ms`, "≤ 15 ms, flat in size", p50 <= 15]);
  }
  return { rows, results };
}

async function execBench(client: AgentClient, work: string) {
  const ws = path.join(work, "ws-exec");
  makeTree(ws, 10);
  const { id } = await client.request("sandbox/create", { workspace: ws });
  const viaAgent: number[] = [];
  for (let i = 0; i < EXECS; i++) viaAgent.push(await timeMs(() => client.request("sandbox/exec", { id, argv: ["true"] })));
  const bare: number[] = [];
  const bwrap = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--bind", ws, ws, "--unshare-all", "--die-with-parent", "--new-session", "--", "true"];
  for (let i = 0; i < EXECS; i++) bare.push(await timeMs(() => spawnSync("bwrap", bwrap)));
  await client.request("sandbox/delete", { id });
  const a = round(percentile(viaAgent, 50));
  const b = round(percentile(bare, 50));
  return { result: { execTrueP50Ms: a, bareBwrapP50Ms: b, ratio: ratio(a, b) }, row: ["sandbox/exec true (p50)", `${a} ms`, `bare bwrap ${b} ms (×${ratio(a, b)})`, "≤ 2.5× bare bwrap", a <= 2.5 * b] as Row };
}

/** Bytes per second a pty delivers from `head -c N /dev/zero`, raw. */
function rawPtyRate(bytes: number): Promise<number> {
  return new Promise((resolve) => {
    const started = performance.now();
    let got = 0;
    const term = pty.spawn("sh", ["-c", `stty raw -echo; head -c ${bytes} /dev/zero | tr '\\0' x`], { cols: 80, rows: 24, env: { PATH: process.env.PATH ?? "" } });
    term.onData((d) => (got += d.length));
    term.onExit(() => resolve(got / ((performance.now() - started) / 1000)));
  });
}

async function ptyBench(client: AgentClient, work: string) {
  const ws = path.join(work, "ws-pty");
  makeTree(ws, 10);
  const { id } = await client.request("sandbox/create", { workspace: ws });
  let got = 0;
  let exited = false;
  let echoAt: (() => void) | undefined;
  let pid = 0;
  client.onNotification((method, params) => {
    const p = params as { pid: number; data?: string };
    if (p.pid !== pid) return;
    if (method === "process/output") {
      got += p.data!.length;
      echoAt?.();
    }
    if (method === "process/exit") exited = true;
  });
  const started = performance.now();
  pid = (await client.request("process/spawn", { id, argv: ["sh", "-c", `stty raw -echo; head -c ${PTY_BYTES} /dev/zero | tr '\\0' x`], pty: { cols: 80, rows: 24 } })).pid;
  while (!exited) await new Promise((r) => setTimeout(r, 5));
  const agentRate = got / ((performance.now() - started) / 1000);
  const rawRate = await rawPtyRate(PTY_BYTES);

  // Keystroke echo: one character into `cat` on a pty, until its echo comes back.
  pid = (await client.request("process/spawn", { id, argv: ["cat"], pty: { cols: 80, rows: 24 } })).pid;
  await new Promise((r) => setTimeout(r, 300));
  const echoes: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    await new Promise<void>((resolve) => {
      echoAt = resolve;
      void client.request("process/write", { pid, data: "k" });
    });
    echoes.push(performance.now() - t);
  }
  echoAt = undefined;
  await client.request("process/kill", { pid, signal: "SIGKILL" });
  await client.request("sandbox/delete", { id });
  const mbps = (r: number) => round(r / 1e6);
  const echoP50 = Math.round(percentile(echoes, 50) * 1000) / 1000;
  return {
    result: { ptyMBps: mbps(agentRate), rawPtyMBps: mbps(rawRate), keystrokeEchoP50Ms: echoP50 },
    rows: [
      ["PTY throughput through the agent", `${mbps(agentRate)} MB/s`, `raw pty ${mbps(rawRate)} MB/s (×${ratio(agentRate, rawRate)})`, "≥ 100 MB/s", agentRate >= 100e6],
      ["keystroke echo at the agent boundary (p50)", `${echoP50} ms`, "", "≤ 2 ms", echoP50 <= 2],
    ] as Row[],
  };
}

async function main(): Promise<void> {
  const agent = await startBenchAgent("paddock-bench-sbx-");
  try {
    const client = await agent.client();
    const create = await createBench(client, agent.work);
    const exec = await execBench(client, agent.work);
    const ptyResult = await ptyBench(client, agent.work);
    client.close();
    writeResults(
      "sandbox",
      "Sandbox benchmark",
      "Anchors are measured on the same trees in the same run.",
      { create: create.results, exec: exec.result, pty: ptyResult.result },
      [...create.rows, ...changesRows, exec.row, ...ptyResult.rows],
    );
  } finally {
    agent.stop();
    await new Promise((r) => setTimeout(r, 500));
    fs.rmSync(agent.work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
