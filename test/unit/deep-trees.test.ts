/**
 * Trees deeper than a path can name (PATH_MAX) and names that are not UTF-8, in hand-made
 * upper and lower directories: how listChanges reports them and how Beneath removes them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { listChanges } from "../../agent/changeset/changes";
import { UpperFormat } from "../../agent/changeset/upper-format";
import { Beneath } from "../../agent/sys/beneath";

function scratch(): { base: string; lower: string; upper: string } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-deep-"));
  const lower = path.join(base, "lower");
  const upper = path.join(base, "upper");
  fs.mkdirSync(lower);
  fs.mkdirSync(upper);
  return { base, lower, upper };
}

/** `levels` folders named `name` below `dir`/`top`, made one relative chdir at a time, with a file at the bottom. */
function deepTree(dir: string, top: string, levels: number, name: string): void {
  const back = process.cwd();
  try {
    process.chdir(dir);
    for (const folder of [top, ...Array.from({ length: levels }, () => name)]) {
      fs.mkdirSync(folder);
      process.chdir(folder);
    }
    fs.writeFileSync("bottom", "x");
  } finally {
    process.chdir(back);
  }
}

const remove = (dir: string) => execFileSync("rm", ["-rf", "--", dir]);
const LONG = "d".repeat(200);

test("a new tree deeper than PATH_MAX is one change with a note at its top; nothing listed is longer than 4095 bytes", async () => {
  const { base, lower, upper } = scratch();
  deepTree(upper, "deep", 30, LONG);
  fs.writeFileSync(path.join(upper, "deep", "shallow.txt"), "s");
  fs.writeFileSync(path.join(upper, "beside.txt"), "b");
  const changes = await listChanges(upper, lower, UpperFormat.kernel);
  assert.ok(changes.every((c) => Buffer.byteLength(c.path) <= 4095));
  const marked = changes.filter((c) => c.deepTree);
  assert.deepEqual(marked.map((c) => [c.path, c.kind, c.type]), [["deep", "added", "directory"]]);
  assert.match(marked[0]!.note!, /^deep holds paths longer than 4095 bytes/);
  assert.ok(changes.some((c) => c.path === "deep/shallow.txt"));
  assert.ok(changes.some((c) => c.path === "beside.txt"));
  remove(base);
});

test("a change deep inside a tree the workspace has is reported at the deepest folder that can be named", async () => {
  const { base, lower, upper } = scratch();
  deepTree(lower, "deep", 25, LONG);
  // The sandbox wrote the bottom file: the upper dir has the folders copied up, and the file.
  deepTree(upper, "deep", 25, LONG);
  const changes = await listChanges(upper, lower, UpperFormat.kernel);
  assert.equal(changes.length, 1, JSON.stringify(changes.map((c) => c.path.length)));
  const [change] = changes;
  assert.equal(change!.deepTree, true);
  assert.equal(change!.kind, "modified");
  assert.equal(change!.type, "directory");
  assert.equal(change!.path, ["deep", ...Array.from({ length: 20 }, () => LONG)].join("/"), "the deepest folder a path can name");
  remove(base);
});

test("a deleted deep workspace tree is reported at its top; names that are not UTF-8 are listed on both sides", async () => {
  const { base, lower, upper } = scratch();
  deepTree(lower, "deep", 25, LONG);
  execFileSync("mknod", [path.join(upper, "deep"), "c", "0", "0"]);
  fs.writeFileSync(Buffer.from(`${lower}/old\xff`, "latin1"), "old");
  execFileSync("python3", ["-c", "import os, stat, sys; os.mknod(os.fsencode(sys.argv[1]) + b'/old\\xff', stat.S_IFCHR, 0)", upper]);
  fs.writeFileSync(Buffer.from(`${upper}/new\xfe`, "latin1"), "new");
  const changes = await listChanges(upper, lower, UpperFormat.kernel);
  const top = changes.filter((c) => c.deepTree);
  assert.deepEqual(top.map((c) => [c.path, c.kind]), [["deep", "deleted"]]);
  const raw = changes.filter((c) => c.pathBytes);
  assert.deepEqual(raw.map((c) => [c.path, c.kind, Buffer.from(c.pathBytes!, "base64").toString("latin1")]), [
    ["new\\xFE", "added", "new\xfe"],
    ["old\\xFF", "deleted", "old\xff"],
  ]);
  remove(base);
});

test("removeTree walks descriptors: a tree deeper than PATH_MAX, and more levels than it holds open, goes; no descriptor is left", async () => {
  const { base, upper } = scratch();
  deepTree(upper, "deep", 150, "n".repeat(60));
  execFileSync("python3", ["-c", "import os, sys; os.makedirs(os.fsencode(sys.argv[1]) + b'/x\\xff/y/y')", path.join(upper, "deep")]);
  const fds = () => fs.readdirSync("/proc/self/fd").length;
  const before = fds();
  const tree = Beneath.open(upper);
  tree.removeTree("deep");
  tree.close();
  assert.deepEqual(fs.readdirSync(upper), []);
  assert.equal(fds(), before);
  remove(base);
});

test("a chain as deep as a path can name (2000 folders) is listed without running out of stack", async () => {
  const { base, lower, upper } = scratch();
  deepTree(upper, "a", 2000, "a");
  const changes = await listChanges(upper, lower, UpperFormat.kernel);
  assert.equal(changes.length, 2002);
  assert.ok(!changes.some((c) => c.deepTree));
  remove(base);
});
