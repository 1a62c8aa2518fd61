/** The approve journal's operations on a real folder: what a recovery must not do to a folder swapped in. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { runOps, type JournalOp } from "../../agent/review/journal";
import { Beneath } from "../../agent/sys/beneath";

test("a chmod planned for one folder leaves a folder moved into its place alone", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-journal-"));
  try {
    fs.mkdirSync(path.join(root, "d"), { mode: 0o755 });
    fs.chmodSync(path.join(root, "d"), 0o755);
    const planned = fs.statSync(path.join(root, "d"));
    const ops: JournalOp[] = [{ op: "chmod", path: "d", mode: 0o700, folder: `${planned.dev}:${planned.ino}` }];
    // Before the (recovered) journal runs, another folder takes the path.
    fs.renameSync(path.join(root, "d"), path.join(root, "d.old"));
    fs.mkdirSync(path.join(root, "d"));
    fs.chmodSync(path.join(root, "d"), 0o755);
    const ws = Beneath.open(root);
    try {
      const failures = await runOps(ws, ops);
      assert.equal(failures.length, 1);
      assert.match(failures[0]!.error, /no longer the folder/);
      assert.equal(fs.statSync(path.join(root, "d")).mode & 0o777, 0o755, "the folder swapped in keeps its mode");
      // The folder planned for, where it is now, is untouched too; and in place, the chmod is done.
      fs.rmdirSync(path.join(root, "d"));
      fs.renameSync(path.join(root, "d.old"), path.join(root, "d"));
      assert.deepEqual(await runOps(ws, ops), []);
      assert.equal(fs.statSync(path.join(root, "d")).mode & 0o777, 0o700);
    } finally {
      ws.close();
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
