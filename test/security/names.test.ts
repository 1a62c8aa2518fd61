/**
 * Changes that must neither block nor hide from review, with a real root agent and real
 * process sandboxes: a tree deeper than PATH_MAX (made inside the sandbox with relative cd's,
 * as no single path can name it), and names that are not UTF-8.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { reviewFixture } from "../helpers/review-fixture";
import { fixtureForFile } from "../helpers/sandbox-fixture";
import { copyTree } from "../helpers/tree";

const shared = fixtureForFile();
const { workspace, sandboxWith } = reviewFixture(shared);

async function inSandbox(id: string, script: string): Promise<string> {
  const run = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", script] });
  assert.equal(run.exitCode, 0, run.stderr);
  return run.stdout;
}

const LEVEL = "d".repeat(200);
/**
 * 30 levels of 200-character names below deep/ (paths pass 4095 bytes at the 21st), and a file
 * at the bottom; `cd -P` changes directory relatively (sh's logical cd would use the whole path).
 */
const DEEP_TREE = `mkdir deep && echo shallow > deep/shallow.txt && (cd deep && i=0 && while [ $i -lt 30 ]; do mkdir ${LEVEL} && cd -P ${LEVEL} || exit 1; i=$((i + 1)); done && echo bottom > f)`;

test("a tree deeper than PATH_MAX is listed as one folder with a note, and the rest is reviewed as usual", async () => {
  // The file approved alone is in a folder of its own: approving it changes that folder, not
  // the one of the new files approved later (which would make them conflicts).
  const ws = workspace("ws-deep", { "sub/edit.txt": "one\n", "keep.txt": "keep\n" });
  const id = await sandboxWith(ws, `printf 'two\\n' > sub/edit.txt && echo new > new.txt && echo other > other.txt && ${DEEP_TREE} && echo beside > beside.txt`);

  const { changes } = await shared.client.request("sandbox/changes", { id });
  const deep = changes.filter((c) => c.path === "deep");
  assert.equal(deep.length, 1, JSON.stringify(changes.map((c) => c.path.slice(0, 40))));
  assert.equal(deep[0]!.deepTree, true);
  assert.match(deep[0]!.note ?? "", /longer than 4095 bytes/);
  assert.ok(
    changes.every((c) => Buffer.byteLength(c.path) <= 4095),
    "every listed path can be named in a request",
  );
  const listed = new Set(changes.map((c) => c.path));
  for (const rel of ["sub/edit.txt", "new.txt", "other.txt", "beside.txt", "deep/shallow.txt"]) assert.ok(listed.has(rel), rel);

  const { patch } = await shared.client.request("sandbox/diff", { id });
  assert.match(patch, /^-one\n\+two$/m);

  assert.deepEqual((await shared.client.request("sandbox/approve", { id, paths: ["sub/edit.txt"] })).applied, ["sub/edit.txt"]);
  assert.equal(fs.readFileSync(path.join(ws, "sub/edit.txt"), "utf8"), "two\n");
  assert.deepEqual((await shared.client.request("sandbox/reject", { id, paths: ["new.txt"] })).rejected, ["new.txt"]);
  assert.equal(await inSandbox(id, "test -e new.txt || echo gone"), "gone\n");

  // Approving everything applies what can be, and says why the deep tree is held back.
  const all = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(all.applied, ["beside.txt", "other.txt"]);
  assert.deepEqual(all.conflicts, []);
  assert.equal(all.skipped.length, 1, JSON.stringify(all.skipped));
  assert.equal(all.skipped[0]!.path, "deep");
  assert.match(all.skipped[0]!.reason, /longer than 4095 bytes/);
  assert.ok(!fs.existsSync(path.join(ws, "deep")), "no part of the deep tree reaches the workspace");

  // Rejecting its top folder removes the whole tree from the sandbox.
  const rejected = await shared.client.request("sandbox/reject", { id, paths: ["deep"] });
  assert.deepEqual(rejected.skipped, []);
  assert.deepEqual(rejected.rejected.filter((p) => p !== "deep" && !p.startsWith("deep/")), []);
  assert.ok(rejected.rejected.includes("deep"));
  assert.equal(await inSandbox(id, "test -e deep || echo gone"), "gone\n");
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes, []);
  await shared.client.request("sandbox/delete", { id });
});

const bytesOf = (name: string) => Buffer.from(name, "latin1");

test("names that are not UTF-8 are listed with their bytes, diffed, approved byte for byte and rejectable", async () => {
  const ws = workspace("ws-bytes", { "keep.txt": "keep\n" });
  fs.writeFileSync(Buffer.concat([bytesOf(`${ws}/`), bytesOf("old\xff.txt")]), "old\n");
  const id = await sandboxWith(
    ws,
    [
      "echo x > \"$(printf 'bad\\377\\376.txt')\"",
      "mkdir \"$(printf 'dir\\377')\" && echo y > \"$(printf 'dir\\377')/in.txt\"",
      "rm \"$(printf 'old\\377.txt')\"",
      "echo z > good.txt",
    ].join(" && "),
  );

  const { changes } = await shared.client.request("sandbox/changes", { id });
  const summary = changes.map((c) => ({ path: c.path, kind: c.kind, type: c.type, pathBytes: c.pathBytes }));
  const b64 = (name: string) => bytesOf(name).toString("base64");
  assert.deepEqual(summary, [
    { path: "bad\\xFF\\xFE.txt", kind: "added", type: "file", pathBytes: b64("bad\xff\xfe.txt") },
    { path: "dir\\xFF", kind: "added", type: "directory", pathBytes: b64("dir\xff") },
    { path: "dir\\xFF/in.txt", kind: "added", type: "file", pathBytes: b64("dir\xff/in.txt") },
    { path: "good.txt", kind: "added", type: "file", pathBytes: undefined },
    { path: "old\\xFF.txt", kind: "deleted", type: "file", pathBytes: b64("old\xff.txt") },
  ]);

  // sandbox/readFile takes the escaped path too, and so does sandbox/writeFile (an edit in VS Code).
  const read = await shared.client.request("sandbox/readFile", { id, path: "dir\\xFF/in.txt" });
  assert.equal(Buffer.from(read.content, "base64").toString("utf8"), "y\n");
  await shared.client.request("sandbox/writeFile", { id, path: "dir\\xFF/in.txt", content: Buffer.from("y\n").toString("base64") });
  assert.equal(await inSandbox(id, "ls \"$(printf 'dir\\377')\""), "in.txt\n", "the file itself was written, not a new one of the escaped name");

  // The patch quotes the names as git does, and git apply makes the very same names.
  const { patch, files } = await shared.client.request("sandbox/diff", { id });
  assert.ok(patch.includes('diff --git "a/bad\\377\\376.txt" "b/bad\\377\\376.txt"\n'), patch);
  assert.deepEqual(files.map((f) => f.path), ["bad\\xFF\\xFE.txt", "dir\\xFF/in.txt", "good.txt", "old\\xFF.txt"]);
  const copy = path.join(shared.fx.base, "ws-bytes-copy");
  copyTree(ws, copy);
  const applied = spawnSync("git", ["apply", "-"], { cwd: copy, input: patch, encoding: "utf8" });
  assert.equal(applied.status, 0, applied.stderr);
  assert.deepEqual(fs.readdirSync(copy, { encoding: "buffer" }).map((n) => n.toString("latin1")).sort(), ["bad\xff\xfe.txt", "dir\xff", "good.txt", "keep.txt"]);

  // Named by their escaped paths, they are rejected: the sandbox has the workspace's version again.
  const rejected = await shared.client.request("sandbox/reject", { id, paths: ["bad\\xFF\\xFE.txt", "old\\xFF.txt"] });
  const { undo: rejectUndo, ...rejectedRest } = rejected;
  assert.deepEqual(rejectedRest, { rejected: ["bad\\xFF\\xFE.txt", "old\\xFF.txt"], skipped: [] });
  assert.match(rejectUndo ?? "", /^[0-9a-f]{12}$/, "the reject can be undone");
  assert.equal(await inSandbox(id, "test -e \"$(printf 'bad\\377\\376.txt')\" || echo gone; cat \"$(printf 'old\\377.txt')\""), "gone\nold\n");

  // Approving everything brings the rest, with the names' very bytes.
  const all = await shared.client.request("sandbox/approve", { id });
  const { undo: approveUndo, ...allRest } = all;
  assert.deepEqual(allRest, { applied: ["dir\\xFF", "dir\\xFF/in.txt", "good.txt"], merged: [], conflicts: [], skipped: [] });
  assert.match(approveUndo ?? "", /^[0-9a-f]{12}$/, "the approve can be undone");
  assert.equal(fs.readFileSync(Buffer.concat([bytesOf(`${ws}/`), bytesOf("dir\xff/in.txt")]), "utf8"), "y\n");
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes, []);
  await shared.client.request("sandbox/delete", { id });
});
