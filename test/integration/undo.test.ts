/**
 * Undo of approve and reject with real sandboxes: the workspace and the sandbox are exactly as
 * before (every kind of edit, hunks, merges), nothing that changed since is lost, an undo a
 * crash cut short is finished by undoing again, and what undo keeps is bounded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fixtureForFile, refused } from "../helpers/sandbox-fixture";
import { copyTree, describeTree } from "../helpers/tree";
import { EDITS, reviewFixture } from "../helpers/review-fixture";
import { MAX_RECORDS } from "../../agent/review/undo-record";

const shared = fixtureForFile();
const { workspace, richWorkspace, sandboxWith, waitForBases } = reviewFixture(shared);

/** What a user compares in a sandbox: its changes and the patch of them. */
async function sandboxState(id: string): Promise<{ changes: unknown; patch: string }> {
  const { changes } = await shared.client.request("sandbox/changes", { id });
  const { patch } = await shared.client.request("sandbox/diff", { id });
  return { changes, patch };
}

const read = (ws: string, rel: string) => fs.readFileSync(path.join(ws, rel), "utf8");

test("undo of approve: every kind of edit goes back; the sandbox's changes are there to approve again", async () => {
  const ws = richWorkspace("ws-undo-approve");
  const direct = path.join(shared.fx.base, "ws-undo-direct");
  copyTree(ws, direct);
  execFileSync("sh", ["-c", EDITS], { cwd: direct });
  const before = describeTree(ws);
  const id = await sandboxWith(ws, EDITS);
  const sandboxBefore = await sandboxState(id);

  const approved = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(approved.skipped, []);
  assert.match(approved.undo ?? "", /^[0-9a-f]{12}$/, "approve says how to undo it");
  assert.deepEqual(describeTree(ws), describeTree(direct));

  const undone = await shared.client.request("sandbox/undo", { id, undo: approved.undo });
  assert.deepEqual(undone.skipped, []);
  assert.equal(undone.kind, "approve");
  assert.deepEqual(new Set(undone.restored), new Set(approved.applied));
  assert.deepEqual(describeTree(ws), before, "the workspace is exactly as before the approve");
  assert.deepEqual(await sandboxState(id), sandboxBefore, "the sandbox's changes are changes again");
  assert.deepEqual(fs.readdirSync(ws).filter((n) => n.startsWith(".paddock")), [], "no temp file is left");

  // Approving again is not a conflict (the bases went back too) and gives the same tree.
  const again = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual([again.conflicts, again.skipped], [[], []]);
  assert.deepEqual(describeTree(ws), describeTree(direct));
  await shared.client.request("sandbox/delete", { id });
});

test("undo of reject: the sandbox gets its changes back, the workspace is untouched", async () => {
  const ws = richWorkspace("ws-undo-reject");
  const before = describeTree(ws);
  const id = await sandboxWith(ws, EDITS);
  const sandboxBefore = await sandboxState(id);
  const rejected = await shared.client.request("sandbox/reject", { id });
  assert.deepEqual(rejected.skipped, []);
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes, []);

  const undone = await shared.client.request("sandbox/undo", { id });
  assert.deepEqual(undone.skipped, []);
  assert.deepEqual([undone.undone, undone.kind], [rejected.undo, "reject"], "without an id, the latest is undone");
  assert.deepEqual(await sandboxState(id), sandboxBefore, "the sandbox is exactly as before the reject");
  assert.deepEqual(describeTree(ws), before);
  const inside = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "cat edit.txt; readlink link; ls redo; cat dir2file"] });
  assert.equal(inside.stdout, "one\nTWO\nedit.txt\nkept.txt\nnew.txt\nnow-a-file\n", "programs in the sandbox see it at once");
  await shared.client.request("sandbox/delete", { id });
});

test("undo of one approved hunk and one rejected hunk gives the file back byte for byte, with its time", async () => {
  const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join("");
  const ws = workspace("ws-undo-hunks", { "f.txt": lines });
  const id = await sandboxWith(ws, "sed -i -e 's/^line 2$/TWO/' -e 's/^line 28$/TWENTY-EIGHT/' f.txt");
  const { files } = await shared.client.request("sandbox/diff", { id });
  const [first, second] = files[0]!.changes;
  const mtime = fs.statSync(path.join(ws, "f.txt")).mtimeMs;
  const sandboxBefore = await sandboxState(id);

  const approved = await shared.client.request("sandbox/approve", { id, hunks: [{ path: "f.txt", ...first! }] });
  assert.match(read(ws, "f.txt"), /TWO/);
  await shared.client.request("sandbox/undo", { id, undo: approved.undo });
  assert.equal(read(ws, "f.txt"), lines);
  assert.ok(Math.abs(fs.statSync(path.join(ws, "f.txt")).mtimeMs - mtime) < 0.01, "the file's time goes back too, to the microsecond (make and friends rely on it)");

  const rejected = await shared.client.request("sandbox/reject", { id, hunks: [{ path: "f.txt", ...second! }] });
  assert.doesNotMatch((await sandboxState(id)).patch, /TWENTY-EIGHT/);
  await shared.client.request("sandbox/undo", { id, undo: rejected.undo });
  assert.deepEqual(await sandboxState(id), sandboxBefore);
  await shared.client.request("sandbox/delete", { id });
});

test("undo of a merged approve gives the workspace its own edit back and the sandbox its own copy", async () => {
  const base = Array.from({ length: 12 }, (_, i) => `${i}\n`).join("");
  const ws = workspace("ws-undo-merge", { "merge.txt": base });
  const id = await sandboxWith(ws, "sed -i 's/^1$/one/' merge.txt");
  await waitForBases(id, ["merge.txt"]);
  const ours = base.replace("10\n", "ten\n");
  fs.writeFileSync(path.join(ws, "merge.txt"), ours);
  const sandboxBefore = await sandboxState(id);

  const approved = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(approved.merged, ["merge.txt"]);
  const undone = await shared.client.request("sandbox/undo", { id });
  assert.deepEqual(undone.skipped, []);
  assert.equal(read(ws, "merge.txt"), ours);
  assert.deepEqual(await sandboxState(id), sandboxBefore);
  assert.equal(Buffer.from((await shared.client.request("sandbox/readFile", { id, path: "merge.txt" })).content, "base64").toString(), base.replace("1\n", "one\n"));
  await shared.client.request("sandbox/delete", { id });
});

test("undo is refused, and changes nothing, when either side changed since; it is done once", async () => {
  const ws = workspace("ws-undo-stale", { "a.txt": "a\n", "b.txt": "b\n" });
  const id = await sandboxWith(ws, "echo A > a.txt && echo B > b.txt");
  const approved = await shared.client.request("sandbox/approve", { id });
  fs.writeFileSync(path.join(ws, "b.txt"), "the user's edit after approve\n");
  const err = await refused(shared.client.request("sandbox/undo", { id, undo: approved.undo }), "E_CHANGED_SINCE", /b\.txt changed since it was approved/);
  assert.deepEqual(err.extra["paths"], ["b.txt"]);
  assert.deepEqual([read(ws, "a.txt"), read(ws, "b.txt")], ["A\n", "the user's edit after approve\n"], "not even a.txt went back");

  const id2 = await sandboxWith(ws, "echo again > a.txt");
  const rejected = await shared.client.request("sandbox/reject", { id: id2 });
  await shared.client.request("sandbox/exec", { id: id2, argv: ["sh", "-c", "echo newer > a.txt"] });
  await refused(shared.client.request("sandbox/undo", { id: id2, undo: rejected.undo }), "E_CHANGED_SINCE", /a\.txt \(in the sandbox\) changed since it was rejected/);

  // Undone once, an approve has nothing left to undo.
  fs.writeFileSync(path.join(ws, "b.txt"), "B\n");
  await shared.client.request("sandbox/undo", { id, undo: approved.undo });
  assert.deepEqual([read(ws, "a.txt"), read(ws, "b.txt")], ["a\n", "b\n"]);
  await refused(shared.client.request("sandbox/undo", { id, undo: approved.undo }), "E_NOT_FOUND", /no approve or reject/);
  await refused(shared.client.request("sandbox/undo", { id }), "E_NOT_FOUND", /nothing to undo/);
  await shared.client.request("sandbox/delete", { id });
  await shared.client.request("sandbox/delete", { id: id2 });
});

test("an undo a crash cut short is finished by undoing again", async () => {
  const ws = workspace("ws-undo-again", { "a.txt": "a\n" });
  const id = await sandboxWith(ws, "echo A > a.txt && echo new > n.txt");
  const approved = await shared.client.request("sandbox/approve", { id });
  // A crash after the files went back but before the record went: the record is still there.
  const dir = path.join(shared.fx.stateDir, "sandboxes", id, "undo");
  const saved = Object.fromEntries(fs.readdirSync(dir).map((n) => [n, fs.readFileSync(path.join(dir, n))]));
  await shared.client.request("sandbox/undo", { id });
  for (const [name, bytes] of Object.entries(saved)) fs.writeFileSync(path.join(dir, name), bytes);
  const again = await shared.client.request("sandbox/undo", { id, undo: approved.undo });
  assert.deepEqual(again.skipped, []);
  assert.deepEqual(describeTree(ws), ["a.txt file 644 87428fc522803d31"]);
  await shared.client.request("sandbox/delete", { id });
});

test("undo keeps the last operations of a sandbox, lists them newest first, and says when one is too large to keep", async () => {
  const ws = workspace("ws-undo-bounds", { "f.txt": "0\n" });
  const id = await sandboxWith(ws, "true");
  const ids: string[] = [];
  for (let i = 1; i <= MAX_RECORDS + 2; i++) {
    await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", `echo ${i} > f.txt`] });
    ids.push((await shared.client.request("sandbox/reject", { id })).undo!);
  }
  const { undo } = await shared.client.request("sandbox/undoList", { id });
  assert.deepEqual(undo.map((u) => u.undo), ids.slice(-MAX_RECORDS).reverse());
  assert.deepEqual([undo[0]!.kind, undo[0]!.paths, undo[0]!.count], ["reject", ["f.txt"], 1]);
  await refused(shared.client.request("sandbox/undo", { id, undo: ids[0]! }), "E_NOT_FOUND");
  // An older one can be undone while its paths are as it left them (the workspace's f.txt, here);
  // the newer one, whose f.txt that then changes, no longer can.
  await shared.client.request("sandbox/undo", { id, undo: ids.at(-2)! });
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["cat", "f.txt"] })).stdout, `${MAX_RECORDS + 1}\n`);
  await refused(shared.client.request("sandbox/undo", { id, undo: ids.at(-1)! }), "E_CHANGED_SINCE", /f\.txt \(in the sandbox\)/);

  // A change larger than undo keeps is still done, and says it cannot be undone (sparse: no disk used).
  execFileSync("truncate", ["-s", "300M", path.join(ws, "big.bin")]);
  await shared.client.request("sandbox/exec", { id, argv: ["rm", "big.bin"] });
  const big = await shared.client.request("sandbox/approve", { id, paths: ["big.bin"] });
  assert.deepEqual(big.applied, ["big.bin"]);
  assert.equal(big.undo, undefined);
  assert.match(big.undoUnavailable ?? "", /more than 256 MiB/);
  assert.equal(fs.existsSync(path.join(ws, "big.bin")), false);
  await shared.client.request("sandbox/delete", { id });
});
