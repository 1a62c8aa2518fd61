/**
 * Crash safety: kill -9 the agent at random instants of a 1,000-file approve, 50 times. Every
 * file is wholly old or wholly new, the restarted agent finishes or rolls back the whole
 * approve, and the sandbox still holds whatever was not applied.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { startFixture } from "../helpers/sandbox-fixture";

const FILES = 1000;
const TRIALS = 50;
const name = (i: number) => `f${String(i).padStart(4, "0")}.txt`;
/** A few KiB per file, so that a torn write would show. */
const content = (version: number, i: number) => `version ${version} of file ${i}\n`.repeat(200);

test(`kill -9 during a ${FILES}-file approve, ${TRIALS} times: no torn file, all or nothing, nothing lost`, async (t) => {
  const fx = await startFixture();
  const ws = path.join(fx.base, "ws-crash");
  fs.mkdirSync(path.join(ws, "src"), { recursive: true });
  for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(ws, "src", name(i)), content(0, i));
  let client = await fx.client();
  const { id } = await client.request("sandbox/create", { workspace: ws });
  const rewrite = async (version: number) => {
    // Also a new folder with a file: mkdir and a rename into it are part of each approve.
    const script = `mkdir("added-${version}") or die; open(my $n, ">", "added-${version}/new.txt") or die; close($n); for my $i (0..${FILES - 1}) { open(my $f, ">", sprintf("src/f%04d.txt", $i)) or die; print $f "version ${version} of file $i\\n" x 200; close($f) }`;
    const run = await client.request("sandbox/exec", { id, argv: ["perl", "-e", script] });
    assert.equal(run.exitCode, 0, run.stderr);
  };

  // One undisturbed approve tells how long one takes: the kills fall within that window.
  await rewrite(1);
  const started = Date.now();
  assert.equal((await client.request("sandbox/approve", { id })).applied.filter((p) => p.startsWith("src/")).length, FILES);
  const window = Math.max(50, (Date.now() - started) * 1.3);
  const trialsStarted = Date.now();

  let workspaceVersion = 1;
  const outcomes = { rolledBack: 0, finished: 0 };
  for (let trial = 2; trial < TRIALS + 2; trial++) {
    await rewrite(trial);
    const approving = client.request("sandbox/approve", { id }).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, Math.random() * window));
    fx.agent.child.kill("SIGKILL");
    await fx.agent.exited;
    await approving;
    client.close();
    await fx.restart(); // recovery runs before the agent serves anyone
    client = await fx.client();

    const versions = new Set<number>();
    for (let i = 0; i < FILES; i++) {
      const text = fs.readFileSync(path.join(ws, "src", name(i)), "utf8");
      const version = text === content(trial, i) ? trial : text === content(workspaceVersion, i) ? workspaceVersion : -1;
      assert.notEqual(version, -1, `trial ${trial}: ${name(i)} is neither the old nor the new version`);
      versions.add(version);
    }
    assert.equal(versions.size, 1, `trial ${trial}: the approve was applied in part`);
    assert.equal(fs.existsSync(path.join(ws, `added-${trial}`, "new.txt")), versions.has(trial), `trial ${trial}: the new folder follows the files`);
    assert.deepEqual(fs.readdirSync(path.join(ws, "src")).filter((n) => n.startsWith(".paddock")), [], `trial ${trial}: temp files left`);
    assert.equal(fs.existsSync(path.join(fx.stateDir, "sandboxes", id, "approve-journal.json")), false);
    const pending = (await client.request("sandbox/changes", { id })).changes.filter((c) => c.path.startsWith("src/")).length;
    if (versions.has(trial)) {
      outcomes.finished++;
      workspaceVersion = trial;
      assert.equal(pending, 0);
    } else {
      outcomes.rolledBack++;
      assert.equal(pending, FILES, `trial ${trial}: the sandbox still holds every change`);
    }
  }
  t.diagnostic(`approve window ${Math.round(window)} ms; ${JSON.stringify(outcomes)}; ${Math.round((Date.now() - trialsStarted) / TRIALS)} ms per trial`);
  // Both ways out happened: the kills really fell inside approves.
  assert.ok(outcomes.rolledBack > 0 && outcomes.finished > 0, JSON.stringify(outcomes));
  await fx.stop();
});
