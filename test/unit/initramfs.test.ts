import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { buildInitramfs } from "../../agent/vm/initramfs";

test("the initramfs is a newc archive that cpio lists with the right types, sizes and device numbers", () => {
  const archive = buildInitramfs([
    { type: "dir", path: "dev" },
    { type: "chardev", path: "dev/console", major: 5, minor: 1 },
    { type: "file", path: "/init", data: Buffer.from("#!/bin/sh\necho hi\n"), mode: 0o755 },
    { type: "symlink", path: "bin", target: "usr/bin" },
  ]);
  assert.equal(archive.length % 4, 0);
  const listing = execFileSync("cpio", ["-t", "-v", "--quiet"], { input: archive }).toString("utf8");
  const lines = listing.trim().split("\n");
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^drwxr-xr-x .* dev$/);
  assert.match(lines[1]!, /^crw------- .* 5,\s+1 .* dev\/console$/);
  assert.match(lines[2]!, /^-rwxr-xr-x .* 18 .* init$/);
  assert.match(lines[3]!, /^lrwxrwxrwx .* bin -> usr\/bin$/);
});

test("paths that climb out of the archive are refused", () => {
  assert.throws(() => buildInitramfs([{ type: "file", path: "../etc/passwd", data: Buffer.alloc(0) }]), /invalid initramfs path/);
  assert.throws(() => buildInitramfs([{ type: "dir", path: "/" }]), /invalid initramfs path/);
});
