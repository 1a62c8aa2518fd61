/**
 * The extension in a real VS Code (code-server's Node extension host): its own activation time,
 * the views following 5,000 changed files beside the agent's own listing of them, a written
 * file's way to Source Control, and an approved change's way to the disk.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { build } from "esbuild";
import { runExtensionTests, startCodeServer, REPO } from "../test/vscode/harness";
import { round, ratio, writeResults, type Row } from "./lib";

async function main(): Promise<void> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-bench-vscode-"));
  const folder = path.join(base, "workspace");
  fs.mkdirSync(folder);
  const suite = path.join(base, "bench.js");
  const out = path.join(base, "results.json");
  await build({ entryPoints: [path.join(REPO, "test", "vscode", "bench", "index.ts")], bundle: true, platform: "node", format: "cjs", target: "node20", outfile: suite, external: ["vscode"], logLevel: "warning" });
  process.env.PADDOCK_BENCH_OUT = out; // code-server, and so its extension host, inherit it
  const server = await startCodeServer(path.join(base, "code-server"), { "paddock.agent.stateDir": path.join(base, "state") });
  try {
    const run = await runExtensionTests(server, { folder, testsBundle: suite, artifacts: path.join(base, "artifacts"), timeoutMs: 300_000 });
    if (run.code !== 0) throw new Error(`the benchmark failed in VS Code:\n${run.log.slice(-4000)}`);
  } finally {
    await server.stop();
  }
  const r = JSON.parse(fs.readFileSync(out, "utf8")) as {
    activationMs: number;
    files: number;
    followMs: number;
    refreshMedianMs: number;
    agentChangesMedianMs: number;
    decorationsMs: number;
    writeToScmMedianMs: number;
    writeToNoticeMedianMs: number;
    approveToDiskMedianMs: number;
    agentApproveMedianMs: number;
  };
  const rows: Row[] = [
    ["extension activation, its own time (bundle evaluation + activate(), not VS Code's work between)", `${round(r.activationMs)} ms`, "", "≤ 50 ms", r.activationMs <= 50],
    [`views follow a command writing ${r.files} files (until Source Control lists them all)`, `${round(r.followMs)} ms`, "includes 100 + 150 ms of debouncing", "", undefined],
    [`one refresh of ${r.files} changes (list, Source Control, decorations; median)`, `${round(r.refreshMedianMs)} ms`, `agent's sandbox/changes alone ${round(r.agentChangesMedianMs)} ms (×${ratio(r.refreshMedianMs, r.agentChangesMedianMs)})`, "responsive", undefined],
    [`file decorations for ${r.files} files`, `${round(r.decorationsMs)} ms`, "", "", undefined],
    ["a command writes one file → it shows in Source Control (median of 7)", `${round(r.writeToScmMedianMs)} ms`, `the agent's sandbox/didChange for it ${round(r.writeToNoticeMedianMs)} ms; the rest is the 150 ms debounce and one listing`, "", undefined],
    ["Approve on one change in a diff's gutter → the file on disk has it (median of 7)", `${round(r.approveToDiskMedianMs)} ms`, `the agent's sandbox/approve of that hunk alone ${round(r.agentApproveMedianMs)} ms (×${ratio(r.approveToDiskMedianMs, r.agentApproveMedianMs)})`, "", undefined],
  ];
  writeResults("extension", "Extension benchmark", "Measured in code-server 4.100.3's Node extension host, driven by Debian's Chromium.", r, rows);
  fs.rmSync(base, { recursive: true, force: true });
}

void main();
