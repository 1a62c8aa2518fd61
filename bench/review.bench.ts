/**
 * Review: `sandbox/diff` of a 10,000-line file with 100 edits (beside GNU `diff -u` and
 * `git diff --no-index` of the same two files), and approve of 1,000 changed files with every
 * fsync (beside `git apply` of the same change, which does not fsync), and its undo (beside
 * `git apply -R`), in one run. Approve's time includes keeping what it replaces for undo.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { percentile, ratio, round, startBenchAgent, timeMs, writeResults, type Row } from "./lib";

const DIFFS = Number(process.env.BENCH_DIFFS ?? 30);
const APPROVES = Number(process.env.BENCH_APPROVES ?? 7);
const FILES = 1000;

async function main(): Promise<void> {
  const agent = await startBenchAgent("paddock-bench-review-");
  const client = await agent.client();
  const rows: Row[] = [];
  const results: Record<string, unknown> = {};
  try {
    // ---- diff -----------------------------------------------------------------------------
    const big = path.join(agent.work, "ws-diff");
    fs.mkdirSync(big);
    const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i}: ${"lorem ipsum dolor sit amet ".repeat(2)}\n`);
    fs.writeFileSync(path.join(big, "big.txt"), lines.join(""));
    const edited = lines.map((line, i) => (i % 100 === 50 ? `edited ${line}` : line));
    const { id: diffId } = await client.request("sandbox/create", { workspace: big });
    await client.request("sandbox/writeFile", { id: diffId, path: "big.txt", content: Buffer.from(edited.join("")).toString("base64") });
    const diffSamples: number[] = [];
    let hunks = 0;
    for (let i = 0; i < DIFFS; i++) diffSamples.push(await timeMs(async () => (hunks = (await client.request("sandbox/diff", { id: diffId })).files[0]!.changes.length)));
    const editedFile = path.join(agent.work, "big.edited.txt");
    fs.writeFileSync(editedFile, edited.join(""));
    const median = async (run: () => unknown) => percentile(await Promise.all(Array.from({ length: 5 }, () => timeMs(run))), 50);
    const gnu = await median(() => spawnSync("diff", ["-u", path.join(big, "big.txt"), editedFile]));
    const gitDiff = await median(() => spawnSync("git", ["diff", "--no-index", path.join(big, "big.txt"), editedFile]));
    const diffP50 = round(percentile(diffSamples, 50));
    rows.push([`sandbox/diff, 10,000 lines with ${hunks} edits (p50)`, `${diffP50} ms`, `diff -u ${round(gnu)} ms; git diff --no-index ${round(gitDiff)} ms (×${ratio(diffP50, gitDiff)})`, "≤ 20 ms", diffP50 <= 20]);
    results.diff = { p50Ms: diffP50, p90Ms: round(percentile(diffSamples, 90)), hunks, gnuDiffMs: round(gnu), gitDiffMs: round(gitDiff) };
    await client.request("sandbox/delete", { id: diffId });

    // ---- approve --------------------------------------------------------------------------
    // Every round on fresh copies (as a user's approve usually meets its workspace): ext4 is slow
    // to create files where many were just replaced (it skips inodes freed seconds ago), which
    // would make back-to-back rounds measure the file system's churn, not approve.
    const template = path.join(agent.work, "ws-template");
    for (let d = 0; d < 10; d++) fs.mkdirSync(path.join(template, "src", `d${d}`), { recursive: true });
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(template, "src", `d${i % 10}`, `f${i}.txt`), `file ${i}\n`.repeat(50));
    const approveSamples: number[] = [];
    const gitApplySamples: number[] = [];
    const undoSamples: number[] = [];
    const gitReverseSamples: number[] = [];
    const script = `for my $i (0..${FILES - 1}) { open(my $f, ">>", sprintf("src/d%d/f%d.txt", $i % 10, $i)) or die; print $f "approved\\n"; close($f) }`;
    for (let round_ = 1; round_ <= APPROVES; round_++) {
      const ws = path.join(agent.work, `ws-approve-${round_}`);
      const anchor = path.join(agent.work, `ws-anchor-${round_}`);
      execFileSync("cp", ["-a", template, ws]);
      execFileSync("cp", ["-a", template, anchor]);
      const { id } = await client.request("sandbox/create", { workspace: ws });
      await client.request("sandbox/exec", { id, argv: ["perl", "-e", script] });
      const { patch } = await client.request("sandbox/diff", { id });
      execFileSync("sync");
      gitApplySamples.push(await timeMs(() => execFileSync("git", ["apply", "-"], { cwd: anchor, input: patch })));
      let approved: { applied: string[]; undo?: string } = { applied: [] };
      approveSamples.push(await timeMs(async () => (approved = await client.request("sandbox/approve", { id }))));
      if (approved.applied.length !== FILES) throw new Error(`approve applied ${approved.applied.length} files, not ${FILES}`);
      execFileSync("sync");
      gitReverseSamples.push(await timeMs(() => execFileSync("git", ["apply", "-R", "-"], { cwd: anchor, input: patch })));
      let restored = 0;
      undoSamples.push(await timeMs(async () => (restored = (await client.request("sandbox/undo", { id, undo: approved.undo! })).restored.length)));
      if (restored !== FILES) throw new Error(`undo restored ${restored} files, not ${FILES}`);
      await client.request("sandbox/delete", { id });
    }
    const approveP50 = round(percentile(approveSamples, 50));
    const gitApply = round(percentile(gitApplySamples, 50));
    rows.push([`sandbox/approve, ${FILES} modified files, fsync included (p50)`, `${approveP50} ms`, `git apply ${gitApply} ms, no fsync (×${ratio(approveP50, gitApply)})`, "≤ 500 ms", approveP50 <= 500]);
    results.approve = { files: FILES, p50Ms: approveP50, samplesMs: approveSamples.map(round), gitApplyP50Ms: gitApply };
    const undoP50 = round(percentile(undoSamples, 50));
    const gitReverse = round(percentile(gitReverseSamples, 50));
    rows.push([`sandbox/undo of that approve, ${FILES} files back, fsync included (p50)`, `${undoP50} ms`, `git apply -R ${gitReverse} ms, no fsync (×${ratio(undoP50, gitReverse)})`, "≤ 500 ms", undoP50 <= 500]);
    results.undo = { files: FILES, p50Ms: undoP50, samplesMs: undoSamples.map(round), gitApplyReverseP50Ms: gitReverse };
  } finally {
    client.close();
    agent.stop();
  }
  writeResults("review", "Review benchmark", "Anchors are measured on the same files in the same run.", results, rows);
  fs.rmSync(agent.work, { recursive: true, force: true });
}

void main();
