/**
 * One sandbox churning, another client waiting: the agent's answer time to another client's
 * requests (sandbox/list, and sandbox/changes of another sandbox) while one sandbox makes
 * 100,000 folders, beside the same requests to the same agent idle, measured in the same run.
 * Also what the churn costs the agent (inotify watches held, RSS) and how soon a file written
 * afterwards, deep in a folder without a watch of its own, is reported by sandbox/didChange.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { AgentClient } from "../protocol/client";
import type { AgentNotifications } from "../protocol/methods";
import { WATCHES_PER_SANDBOX, defaultWatchLimits, hostWatchLimit } from "../agent/changeset/watch-budget";
import { percentile, ratio, round, startBenchAgent, writeResults, type Row } from "./lib";
import { inotifyWatches, rssMiB } from "../test/helpers/proc";

const THOUSANDS = Number(process.env.BENCH_FOLDER_THOUSANDS ?? 100);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 10_000);
/** Sampling goes on this long after the churn ends: the agent may still be catching up. */
const TAIL_MS = 5000;
const PAUSE_MS = 5;
const CHURN = `for i in $(seq 1 ${THOUSANDS}); do mkdir d$i && (cd d$i && mkdir $(seq 1 1000)); done`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function workspace(dir: string): string {
  fs.mkdirSync(path.join(dir, "src"), { recursive: true });
  fs.writeFileSync(path.join(dir, "README.md"), "# bench\n");
  fs.writeFileSync(path.join(dir, "src", "main.c"), "int main(void) { return 0; }\n");
  return dir;
}

/** Round trips of another client's requests, one after another, until `done` says so. */
async function answerTimes(client: AgentClient, otherId: string, done: () => boolean): Promise<number[]> {
  const samples: number[] = [];
  while (!done()) {
    for (const request of [() => client.request("sandbox/list"), () => client.request("sandbox/changes", { id: otherId })]) {
      const started = performance.now();
      await request();
      samples.push(performance.now() - started);
    }
    await sleep(PAUSE_MS);
  }
  return samples;
}

function summary(samples: number[]) {
  return { requests: samples.length, p50Ms: round(percentile(samples, 50)), p99Ms: round(percentile(samples, 99)), maxMs: round(Math.max(...samples)) };
}

async function main(): Promise<void> {
  const agent = await startBenchAgent("paddock-bench-watcher-");
  const pid = agent.child.pid!;
  try {
    const other = await agent.client();
    const churner = await agent.client();
    const { id: otherId } = await other.request("sandbox/create", { workspace: workspace(path.join(agent.work, "ws-other")) });
    await other.request("sandbox/exec", { id: otherId, argv: ["sh", "-c", "echo changed > README.md"] });
    const { id } = await churner.request("sandbox/create", { workspace: workspace(path.join(agent.work, "ws-churn")) });
    await sleep(1000);

    // The anchor: the same requests, the same agent, nothing churning.
    const idleRss = rssMiB(pid);
    const idleWatches = inotifyWatches(pid);
    const idleEnd = performance.now() + IDLE_MS;
    const idle = await answerTimes(other, otherId, () => performance.now() > idleEnd);

    let maxWatches = idleWatches;
    let maxRss = idleRss;
    const probe = setInterval(() => {
      maxWatches = Math.max(maxWatches, inotifyWatches(pid));
      maxRss = Math.max(maxRss, rssMiB(pid));
    }, 250);
    let tailEnd = Infinity;
    const churnStarted = performance.now();
    const churn = churner.request("sandbox/exec", { id, argv: ["sh", "-c", CHURN] }).then((result) => {
      tailEnd = performance.now() + TAIL_MS;
      return { result, seconds: (performance.now() - churnStarted) / 1000 };
    });
    const busy = await answerTimes(other, otherId, () => performance.now() > tailEnd);
    const { result, seconds } = await churn;
    clearInterval(probe);
    if (result.exitCode !== 0) throw new Error(`the churn failed: ${result.stderr}`);

    // Files written afterwards, deep in the tree (past the folders that have a watch): how soon
    // each is reported. One written while the churn's own tail is still being rescanned may be
    // folded into "list everything again" ([""]); then another is written, until one is named.
    const heard: { path: string; at: number }[] = [];
    churner.onNotification((method, params) => {
      const change = params as AgentNotifications["sandbox/didChange"];
      if (method === "sandbox/didChange" && change.id === id) for (const rel of change.paths) heard.push({ path: rel, at: performance.now() });
    });
    const lateWrites: { ms: number; reported: "by name" | "everything" | "not within 120 s" }[] = [];
    for (let attempt = 1; attempt <= 5; attempt++) {
      const late = `d${THOUSANDS}/1000/late-${attempt}.txt`;
      const from = heard.length;
      const written = performance.now();
      await churner.request("sandbox/exec", { id, argv: ["sh", "-c", `echo late > ${late}`] });
      let answer: { path: string; at: number } | undefined;
      while (!answer && performance.now() - written < 120_000) {
        await sleep(20);
        const after = heard.slice(from);
        answer = after.find((h) => h.path === late) ?? after.find((h) => h.path === "");
      }
      lateWrites.push(answer ? { ms: round(answer.at - written), reported: answer.path === late ? "by name" : "everything" } : { ms: NaN, reported: "not within 120 s" });
      if (answer?.path !== "") break;
    }
    const named = lateWrites.find((w) => w.reported === "by name");

    const idleSummary = summary(idle);
    const busySummary = summary(busy);
    const limits = defaultWatchLimits();
    const results = {
      config: { folders: THOUSANDS * 1000, idleMs: IDLE_MS, tailMs: TAIL_MS, hostMaxUserWatches: hostWatchLimit(), watchLimits: limits },
      idle: idleSummary,
      churning: busySummary,
      p50Ratio: ratio(busySummary.p50Ms, idleSummary.p50Ms),
      p99Ratio: ratio(busySummary.p99Ms, idleSummary.p99Ms),
      churnSeconds: round(seconds),
      inotifyWatches: { idle: idleWatches, max: maxWatches },
      rssMiB: { idle: idleRss, max: maxRss },
      lateWrites,
    };
    const rows: Row[] = [
      [`answer to another client while a sandbox makes ${THOUSANDS * 1000} folders, p50`, `${busySummary.p50Ms} ms`, `idle agent ${idleSummary.p50Ms} ms (×${results.p50Ratio})`, "", undefined],
      [`answer to another client while a sandbox makes ${THOUSANDS * 1000} folders, p99`, `${busySummary.p99Ms} ms`, `idle agent ${idleSummary.p99Ms} ms (×${results.p99Ratio})`, "≤ 250 ms", busySummary.p99Ms <= 250],
      ["slowest answer meanwhile", `${busySummary.maxMs} ms`, `idle agent ${idleSummary.maxMs} ms`, "≤ 1,000 ms", busySummary.maxMs <= 1000],
      ["inotify watches the agent holds (max)", `${maxWatches}`, `${idleWatches} before the churn`, `≤ ${WATCHES_PER_SANDBOX} more`, maxWatches - idleWatches <= WATCHES_PER_SANDBOX],
      ["agent RSS (max)", `${maxRss} MiB`, `${idleRss} MiB before the churn`, "≤ 100 MiB more", maxRss - idleRss <= 100],
      ["a file written after the churn, in a folder without a watch: reported by name after", named ? `${named.ms} ms` : "never", lateWrites.length > 1 ? `${lateWrites.length - 1} earlier write(s) reported as [""] after ${lateWrites.filter((w) => w.reported === "everything").map((w) => `${w.ms} ms`).join(", ")}` : "", "", undefined],
      ["the churn itself (sandbox/exec)", `${round(seconds)} s`, "", "", undefined],
    ];
    writeResults(
      "watcher",
      "Change watcher under churn",
      `Another client's sandbox/list and sandbox/changes (of another sandbox), one after another with ${PAUSE_MS} ms between, while one sandbox makes ${THOUSANDS} folders of 1,000 folders (and for ${TAIL_MS / 1000} s after); the anchor is the same requests to the same agent idle, for ${IDLE_MS / 1000} s before. Host fs.inotify.max_user_watches ${hostWatchLimit()}: the agent allows itself ${limits.total}, ${limits.perSandbox} per sandbox.`,
      results,
      rows,
    );
    await churner.request("sandbox/delete", { id });
    await other.request("sandbox/delete", { id: otherId });
    other.close();
    churner.close();
  } finally {
    agent.stop();
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
