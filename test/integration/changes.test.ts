/** sandbox/changes: what a sandbox changed, read from its upper directory, exactly. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Change } from "../../protocol/methods";
import { fixtureForFile, refused } from "../helpers/sandbox-fixture";

const shared = fixtureForFile();

function workspace(name: string): string {
  const ws = path.join(shared.fx.base, name);
  const write = (rel: string, content: string | Buffer, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
    fs.writeFileSync(path.join(ws, rel), content, { mode });
  };
  write("keep.txt", "unchanged\n");
  write("edit.txt", "one\ntwo\n");
  write("same.txt", "same\n");
  write("chmod.sh", "#!/bin/sh\n");
  write("gone.txt", "bye\n");
  write("tree/a.txt", "a\n");
  write("tree/sub/b.txt", "b\n");
  write("redo/old.txt", "old\n");
  write("redo/kept-name.txt", "before\n");
  write("typechange", "was a file\n");
  fs.symlinkSync("keep.txt", path.join(ws, "link"));
  return ws;
}

const summary = (changes: Change[]) => changes.map((c) => `${c.kind[0]!.toUpperCase()} ${c.type} ${c.path}`);

test("every kind of change is reported once, exactly; untouched and identical files are not", async () => {
  const ws = workspace("ws-changes");
  const { id } = await shared.client.request("sandbox/create", { workspace: ws });
  const script = [
    "printf 'one\\nTWO\\n' > edit.txt",
    "cp same.txt /tmp/s && cat /tmp/s > same.txt", // written, but identical
    "chmod 755 chmod.sh",
    "rm gone.txt",
    "rm -rf tree",
    "rm -rf redo && mkdir redo && echo new > redo/new.txt && echo before > redo/kept-name.txt",
    "ln -sfn edit.txt link",
    "ln -s nowhere dangling",
    "mkdir -p 'new dir/ü' && printf '\\000\\001binary' > 'new dir/ü/data.bin' && : > empty",
    "rm typechange && mkdir typechange",
  ].join(" && ");
  const run = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", script] });
  assert.equal(run.exitCode, 0, run.stderr);
  const { changes } = await shared.client.request("sandbox/changes", { id });
  assert.deepEqual(summary(changes), [
    "M file chmod.sh",
    "A symlink dangling",
    "M file edit.txt",
    "A file empty",
    "D file gone.txt",
    "M symlink link",
    "A directory new dir",
    "A directory new dir/ü",
    "A file new dir/ü/data.bin",
    "D file redo/old.txt",
    "A file redo/new.txt",
    "D directory tree",
    "D file tree/a.txt",
    "D directory tree/sub",
    "D file tree/sub/b.txt",
    "D file typechange",
    "A directory typechange",
  ].sort((a, b) => (a.split(" ")[2]! < b.split(" ")[2]! ? -1 : a.split(" ")[2]! > b.split(" ")[2]! ? 1 : 0)));
  const bin = changes.find((c) => c.path === "new dir/ü/data.bin")!;
  assert.deepEqual([bin.binary, bin.size], [true, 8]);
  assert.equal(changes.find((c) => c.path === "chmod.sh")!.mode, 0o755);
  assert.equal(changes.find((c) => c.path === "edit.txt")!.binary, false);
  await shared.client.request("sandbox/delete", { id });
});

test("an upper entry with an overlay redirect attribute is refused, not guessed at", async () => {
  const ws = workspace("ws-redirect");
  const { id } = await shared.client.request("sandbox/create", { workspace: ws });
  await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo x > edit.txt"] });
  const upper = path.join(shared.fx.stateDir, "sandboxes", id, "upper", "edit.txt");
  const set = spawnSync("python3", ["-c", `import os; os.setxattr(${JSON.stringify(upper)}, "trusted.overlay.redirect", b"/keep.txt")`]);
  assert.equal(set.status, 0, set.stderr?.toString());
  await refused(shared.client.request("sandbox/changes", { id }), "E_UNSUPPORTED_CHANGE", /edit\.txt carries an overlay redirect/);
  await shared.client.request("sandbox/delete", { id });
});
