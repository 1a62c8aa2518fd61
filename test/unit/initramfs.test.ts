import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { buildInitramfs } from "../../agent/guest/initramfs";
import { kernelReleaseOf } from "../../agent/guest/kernel";

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

test("a bzImage's release is read from its boot header; anything else has none", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-bzimage-"));
  try {
    const image = Buffer.alloc(0x1000);
    image.write("HdrS", 0x202, "latin1");
    image.writeUInt16LE(0x600, 0x20e);
    image.write("6.1.0-99-amd64 (builder@example) #1 SMP\0", 0x800, "latin1");
    fs.writeFileSync(path.join(dir, "bzImage"), image);
    assert.equal(kernelReleaseOf(path.join(dir, "bzImage")), "6.1.0-99-amd64");
    fs.writeFileSync(path.join(dir, "not-a-kernel"), Buffer.alloc(0x1000));
    assert.equal(kernelReleaseOf(path.join(dir, "not-a-kernel")), undefined);
    assert.equal(kernelReleaseOf(path.join(dir, "missing")), undefined);
    fs.writeFileSync(path.join(dir, "short"), "HdrS");
    assert.equal(kernelReleaseOf(path.join(dir, "short")), undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
