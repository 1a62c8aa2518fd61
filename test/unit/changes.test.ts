/**
 * listChanges over hand-made upper directories: both whiteout forms, both opaque forms, each
 * counted only in the format of the overlay that writes it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { listChanges } from "../../agent/changeset/changes";
import { UpperFormat } from "../../agent/changeset/upper-format";

function layers() {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-changes-"));
  const lower = path.join(base, "lower");
  const upper = path.join(base, "upper");
  for (const rel of ["dir/x.txt", "dir/y.txt", "file.txt"]) {
    fs.mkdirSync(path.dirname(path.join(lower, rel)), { recursive: true });
    fs.writeFileSync(path.join(lower, rel), rel);
  }
  fs.mkdirSync(upper);
  return { base, lower, upper };
}

const kinds = async (upper: string, lower: string, format = UpperFormat.fuse) => (await listChanges(upper, lower, format)).map((c) => `${c.kind} ${c.path}`);

function setAttribute(file: string, name: string): void {
  execFileSync("python3", ["-c", `import os; os.setxattr(${JSON.stringify(file)}, ${JSON.stringify(name)}, b"y")`]);
}

test("fuse-overlayfs's whiteouts (.wh.NAME) and opaque markers (.wh..wh..opq) read like the kernel's", async () => {
  const { base, lower, upper } = layers();
  fs.writeFileSync(path.join(upper, ".wh.file.txt"), "");
  fs.mkdirSync(path.join(upper, "dir"));
  fs.writeFileSync(path.join(upper, "dir", ".wh..wh..opq"), "");
  fs.writeFileSync(path.join(upper, "dir", "x.txt"), "dir/x.txt"); // re-created identical: no change
  assert.deepEqual(await kinds(upper, lower), ["deleted dir/y.txt", "deleted file.txt"]);
  fs.rmSync(base, { recursive: true, force: true });
});

test("kernel whiteouts (0/0 character devices) and the opaque attribute (as root, like every test here)", async () => {
  const { base, lower, upper } = layers();
  execFileSync("mknod", [path.join(upper, "file.txt"), "c", "0", "0"]);
  fs.mkdirSync(path.join(upper, "dir"));
  setAttribute(path.join(upper, "dir"), "trusted.overlay.opaque");
  fs.writeFileSync(path.join(upper, "dir", "z.txt"), "new");
  assert.deepEqual(await kinds(upper, lower, UpperFormat.kernel), ["deleted dir/x.txt", "deleted dir/y.txt", "added dir/z.txt", "deleted file.txt"]);
  fs.rmSync(base, { recursive: true, force: true });
});

test("on a kernel overlay, .wh. names and user.* attributes that a sandbox made are content, not deletions", async () => {
  const { base, lower, upper } = layers();
  fs.writeFileSync(path.join(upper, ".wh.file.txt"), "");
  fs.mkdirSync(path.join(upper, "dir"));
  fs.writeFileSync(path.join(upper, "dir", ".wh..wh..opq"), "");
  setAttribute(path.join(upper, "dir"), "user.overlay.opaque");
  setAttribute(path.join(upper, "dir"), "user.fuseoverlayfs.opaque");
  assert.deepEqual(await kinds(upper, lower, UpperFormat.kernel), ["added .wh.file.txt", "added dir/.wh..wh..opq"]);
  // Rootless overlayfs (userxattr) keeps its attributes under user.overlay.: there that one counts, trusted.* does not.
  assert.deepEqual(await kinds(upper, lower, UpperFormat.userxattr), ["added .wh.file.txt", "added dir/.wh..wh..opq", "deleted dir/x.txt", "deleted dir/y.txt"]);
  fs.rmSync(path.join(upper, "dir"), { recursive: true });
  fs.mkdirSync(path.join(upper, "dir"));
  setAttribute(path.join(upper, "dir"), "trusted.overlay.opaque");
  assert.deepEqual(await kinds(upper, lower, UpperFormat.userxattr), ["added .wh.file.txt"]);
  fs.rmSync(base, { recursive: true, force: true });
});

test("a workspace directory swapped for a symlink is not followed: nothing outside is read or listed", async () => {
  const { base, lower, upper } = layers();
  const outside = path.join(base, "outside");
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, "secret.txt"), "secret");
  fs.rmSync(path.join(lower, "dir"), { recursive: true });
  fs.symlinkSync(outside, path.join(lower, "dir"));
  fs.mkdirSync(path.join(upper, "dir"));
  fs.writeFileSync(path.join(upper, "dir", ".wh..wh..opq"), "");
  fs.writeFileSync(path.join(upper, "dir", ".wh.secret.txt"), "");
  const listed = await kinds(upper, lower);
  assert.ok(listed.every((l) => !l.includes("secret")), listed.join(", "));
  assert.deepEqual(listed, ["deleted dir", "added dir"]);
  fs.rmSync(base, { recursive: true, force: true });
});
