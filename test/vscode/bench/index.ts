/**
 * Measured inside VS Code's extension host (bench/extension.bench.ts runs it): the
 * extension's own activation time, and how long the views take to follow 5,000 changed files,
 * beside the agent's own listing of them. Results go to $PADDOCK_BENCH_OUT.
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
  const results = { activationMs: api.activationMs, files: FILES, followMs, refreshMedianMs: median(refreshMs), agentChangesMedianMs: median(agentMs), decorationsMs };
  fs.writeFileSync(process.env.PADDOCK_BENCH_OUT ?? path.join(folder, "bench.json"), JSON.stringify(results));
  console.log(`bench: ${JSON.stringify(results)}`);
}
