/**
 * Measured inside VS Code's extension host (bench/extension.bench.ts runs it): the
 * extension's own activation time, how long the views take to follow 5,000 changed files
 * beside the agent's own listing of them, how long one written file takes to reach Source
 * Control, and one change approved from a diff's gutter to reach the disk. Results go to
 * $PADDOCK_BENCH_OUT.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { PaddockApi } from "../../../extension/extension";

const FILES = 5000;

async function waitFor<T>(probe: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;

export async function run(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
  const api = await vscode.extensions.getExtension<PaddockApi>("paddock.paddock")!.activate();
  await waitFor(() => api.agent.current.kind === "running");
  const client = api.agent.client();
  const { id } = await client.request("sandbox/create", { workspace: folder });
  api.model.upsert((await client.request("sandbox/get", { id })));

  // A command writes 5,000 files: how long until Source Control lists them all.
  const script = `for my $i (0..${FILES - 1}) { my $d = "gen/d" . int($i / 100); mkdir "gen"; mkdir $d; open(my $f, ">", "$d/f$i.txt") or die; print $f "file $i\\n"; close($f) }`;
  const run = await client.request("sandbox/exec", { id, argv: ["perl", "-e", script] });
  if (run.exitCode !== 0) throw new Error(run.stderr);
  const written = performance.now();
  await waitFor(() => api.scm.resourcesOf(id).length >= FILES);
  const followMs = performance.now() - written;

  // One refresh of the views (list + Source Control + decorations) beside the agent's listing alone.
  const agentMs: number[] = [];
  const refreshMs: number[] = [];
  for (let i = 0; i < 7; i++) {
    let t = performance.now();
    await client.request("sandbox/changes", { id });
    agentMs.push(performance.now() - t);
    t = performance.now();
    await api.model.refreshChanges(id);
    refreshMs.push(performance.now() - t);
  }
  // The Explorer asks a decoration per file it shows: all 5,000 at once.
  const uris = api.scm.resourcesOf(id).map((r) => r.resourceUri);
  const decorate = performance.now();
  for (const uri of uris) api.scm.provideFileDecoration(uri);
  const decorationsMs = performance.now() - decorate;

  await client.request("sandbox/delete", { id });

  // One file a command writes: until Source Control lists it, beside the agent's own
  // notification of it; and Approve on one change (the gutter's command) until the file on
  // disk has it, beside the agent's sandbox/approve of a hunk alone.
  const small = (await client.request("sandbox/create", { workspace: folder })).id;
  api.model.upsert(await client.request("sandbox/get", { id: small }));
  const lines = Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join("");
  const writeToScmMs: number[] = [];
  const writeToNoticeMs: number[] = [];
  const approveToDiskMs: number[] = [];
  const agentApproveMs: number[] = [];
  for (let i = 0; i < 7; i++) {
    const rel = `one-${i}.txt`;
    fs.writeFileSync(path.join(folder, rel), lines);
    // Past the clock slack within which a workspace write could read as made after the sandbox's (a conflict).
    await new Promise((r) => setTimeout(r, 50));
    let noticed = 0;
    const listening = api.agent.onNotification(({ method, params }) => {
      if (method === "sandbox/didChange" && (params as { paths: string[] }).paths.some((p) => p === rel || p === "")) noticed ||= performance.now();
    });
    await client.request("sandbox/exec", { id: small, argv: ["sh", "-c", `sed -i 's/^line 20$/line twenty/' ${rel}`] });
    const written = performance.now();
    await waitFor(() => api.scm.resourcesOf(small).some((r) => r.path === rel));
    writeToScmMs.push(performance.now() - written);
    await waitFor(() => noticed > 0);
    writeToNoticeMs.push(Math.max(0, noticed - written));
    listening.dispose();
    // What the diff editor's gutter passes for that change (line 20 of both sides, 1-based).
    const mapping = { original: { startLineNumber: 20, endLineNumberExclusive: 21 }, modified: { startLineNumber: 20, endLineNumberExclusive: 21 } };
    const modifiedUri = vscode.Uri.file(path.join(folder, rel)).with({ scheme: "paddock", query: `sandbox=${small}&readonly` });
    const clicked = performance.now();
    await vscode.commands.executeCommand("paddock.approveDiffHunk", { mapping, originalUri: vscode.Uri.file(path.join(folder, rel)), modifiedUri });
    await waitFor(() => fs.readFileSync(path.join(folder, rel), "utf8").includes("line twenty\n"));
    approveToDiskMs.push(performance.now() - clicked);
    // The same approve through the agent alone (another file, the same change).
    const bare = `bare-${i}.txt`;
    fs.writeFileSync(path.join(folder, bare), lines);
    await new Promise((r) => setTimeout(r, 50));
    await client.request("sandbox/exec", { id: small, argv: ["sh", "-c", `sed -i 's/^line 20$/line twenty/' ${bare}`] });
    const t = performance.now();
    await client.request("sandbox/approve", { id: small, hunks: [{ path: bare, oldStart: 19, oldEnd: 20, newStart: 19, newEnd: 20 }] });
    agentApproveMs.push(performance.now() - t);
  }
  await client.request("sandbox/delete", { id: small });
  const results = {
    activationMs: api.activationMs,
    files: FILES,
    followMs,
    refreshMedianMs: median(refreshMs),
    agentChangesMedianMs: median(agentMs),
    decorationsMs,
    writeToScmMedianMs: median(writeToScmMs),
    writeToNoticeMedianMs: median(writeToNoticeMs),
    approveToDiskMedianMs: median(approveToDiskMs),
    agentApproveMedianMs: median(agentApproveMs),
  };
  fs.writeFileSync(process.env.PADDOCK_BENCH_OUT ?? path.join(folder, "bench.json"), JSON.stringify(results));
  console.log(`bench: ${JSON.stringify(results)}`);
}
