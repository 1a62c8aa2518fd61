/**
 * Review methods against hostile selectors and hostile trees: a hunk that is no hunk of the
 * file, a folder the sandbox turned into a symlink, and a workspace folder swapped for a
 * symlink while approves run. A real root agent on a socket, real overlay mounts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { reviewFixture } from "../helpers/review-fixture";
import { fixtureForFile, refused } from "../helpers/sandbox-fixture";

const shared = fixtureForFile();
const { workspace, sandboxWith } = reviewFixture(shared);

/** Every entry below `dir` whose name is one of approve's temp files. */
function approveTemps(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((rel) => path.basename(rel).startsWith(".paddock-approve-"));
}

const LINES = Array.from({ length: 20 }, (_, i) => `line ${i}\n`).join("");

test("a hunk selector that is no hunk of the file is refused with E_HUNK_MISMATCH, by approve and reject alike", async () => {
  const ws = workspace("ws-hunks", { "f.txt": LINES });
  const id = await sandboxWith(ws, "sed -i -e 's/^line 3$/LINE 3/' -e 's/^line 15$/LINE 15/' f.txt");
  const sandboxText = (await shared.client.request("sandbox/exec", { id, argv: ["cat", "f.txt"] })).stdout;
  const huge = { path: "f.txt", oldStart: 0, oldEnd: 1e15, newStart: 0, newEnd: 1e15 };
  await refused(shared.client.request("sandbox/reject", { id, hunks: [huge] }), "E_HUNK_MISMATCH");
  await refused(shared.client.request("sandbox/approve", { id, hunks: [huge] }), "E_HUNK_MISMATCH");
  // Context that does not line up on both sides is no hunk either.
  const skewed = { path: "f.txt", oldStart: 1, oldEnd: 4, newStart: 2, newEnd: 4 };
  await refused(shared.client.request("sandbox/reject", { id, hunks: [skewed] }), "E_HUNK_MISMATCH");
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["cat", "f.txt"] })).stdout, sandboxText, "the sandbox kept both changes");
  assert.equal(fs.readFileSync(path.join(ws, "f.txt"), "utf8"), LINES, "the workspace is untouched");
  // A real hunk (as sandbox/diff gives it) still works.
  await shared.client.request("sandbox/reject", { id, hunks: [{ path: "f.txt", oldStart: 3, oldEnd: 4, newStart: 3, newEnd: 4 }] });
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["cat", "f.txt"] })).stdout, LINES.replace("line 15\n", "LINE 15\n"));
  await shared.client.request("sandbox/delete", { id });
});

test("a folder the sandbox replaced with a symlink is approved: its entries go, the symlink comes", async () => {
  const ws = workspace("ws-dir-to-link", { "dir/a.txt": "a\n", "dir/sub/b.txt": "b\n", "other/c.txt": "c\n", "keep.txt": "k\n" });
  const id = await sandboxWith(ws, "rm -rf dir && ln -s other dir");
  const result = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(result.conflicts, []);
  assert.deepEqual(result.skipped, []);
  assert.ok(result.applied.includes("dir"), JSON.stringify(result));
  assert.equal(fs.readlinkSync(path.join(ws, "dir")), "other");
  assert.equal(fs.readFileSync(path.join(ws, "dir", "c.txt"), "utf8"), "c\n", "the symlink leads where the sandbox's did");
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes, [], "nothing is left to review");
  await shared.client.request("sandbox/delete", { id });
});

test("a folder replaced by a symlink can be approved by naming the folder alone", async () => {
  const ws = workspace("ws-dir-to-link-named", { "dir/a.txt": "a\n", "x.txt": "x\n" });
  const id = await sandboxWith(ws, "rm -rf dir && ln -s x.txt dir && echo y > x.txt");
  const result = await shared.client.request("sandbox/approve", { id, paths: ["dir"] });
  assert.deepEqual(result.conflicts, []);
  assert.deepEqual([...result.applied].sort(), ["dir", "dir/a.txt"]);
  assert.equal(fs.readlinkSync(path.join(ws, "dir")), "x.txt");
  assert.equal(fs.readFileSync(path.join(ws, "x.txt"), "utf8"), "x\n", "what was not named stays a change");
  await shared.client.request("sandbox/delete", { id });
});

test("race: a workspace folder swapped for a symlink while approves run leaves no temp file behind", async () => {
  const outside = path.join(shared.fx.base, "race-outside");
  fs.mkdirSync(outside);
  const files = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`d/f${i}.txt`, `${i}\n`]));
  const ws = workspace("ws-swap", files);
  const id = await sandboxWith(ws, "for f in d/*.txt; do echo changed >> $f; done");
  // On the host, in the real workspace: the folder goes, a symlink takes its place, the folder comes back.
  const swapper = spawn("sh", ["-c", `cd ${ws} && while :; do mv d d.real && ln -s ${outside} d && rm d && mv d.real d; done`], { stdio: "ignore", detached: true });
  let approves = 0;
  try {
    // At least 4 s and at least 10 approves, however slow the machine.
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline || approves < 10) {
      await shared.client.request("sandbox/approve", { id }).catch((err: { code?: string }) => assert.equal(err.code, "E_UNSAFE_PATH", String(err)));
      // Something to approve again next time.
      await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "for f in d/*.txt; do echo again >> $f; done"] });
      approves++;
    }
  } finally {
    // The whole group: an `mv` the shell had started must not finish after the check below began.
    const exited = new Promise((resolve) => swapper.once("exit", resolve));
    process.kill(-swapper.pid!, "SIGKILL");
    await exited;
  }
  // The swapper may have been stopped half-way: put the folder back.
  if (fs.lstatSync(path.join(ws, "d"), { throwIfNoEntry: false })?.isSymbolicLink()) fs.rmSync(path.join(ws, "d"));
  // (Stopped between its two moves, the shell may have left d.real beside a d it moved back.)
  if (fs.existsSync(path.join(ws, "d.real")) && !fs.existsSync(path.join(ws, "d"))) fs.renameSync(path.join(ws, "d.real"), path.join(ws, "d"));
  assert.deepEqual(approveTemps(ws), [], "no temp file is left in the workspace");
  assert.deepEqual(fs.readdirSync(outside), [], "nothing was written outside the workspace");
  await shared.client.request("sandbox/delete", { id });
});

test("a sandbox file named like approve's temp file is listed, but approve leaves it out and says why", async () => {
  // A command copying a folder while an approve ran (mv across the overlay copies) copies the temp it saw.
  const temp = "d/.paddock-approve-0123456789ab-0";
  const ws = workspace("ws-temp-name", { "d/a.txt": "a\n" });
  const id = await sandboxWith(ws, `echo copied > ${temp} && echo b > d/b.txt`);
  const listed = (await shared.client.request("sandbox/changes", { id })).changes.map((c) => c.path);
  assert.ok(listed.includes(temp), "the file is a change like any other: not hidden from review");
  const result = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(result.applied, ["d/b.txt"]);
  assert.match(result.skipped.find((s) => s.path === temp)?.reason ?? "", /temp files/);
  assert.deepEqual(approveTemps(ws), [], "the workspace has no file of that name");
  // Reject takes it out of the sandbox as usual.
  await shared.client.request("sandbox/reject", { id, paths: [temp] });
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes, []);
  await shared.client.request("sandbox/delete", { id });
});

test("a sandbox's own .wh. files and user.overlay attributes are content on a kernel overlay: nothing reads as deleted", async () => {
  const ws = workspace("ws-spoof", { "README.md": "# keep\n", "src/main.c": "int main;\n", "src/util.c": "int util;\n" });
  // What the real overlay writes when it deletes (a 0/0 device), next to what only looks like it.
  const script = [
    "echo > .wh.README.md",
    "echo > src/.wh..wh..opq",
    "echo > src/.wh.util.c",
    `/usr/bin/python3 -c 'import os; os.setxattr("src", "user.overlay.opaque", b"y"); os.setxattr("src", "user.fuseoverlayfs.opaque", b"y")'`,
  ].join(" && ");
  const id = await sandboxWith(ws, script);
  const listed = (await shared.client.request("sandbox/changes", { id })).changes.map((c) => `${c.kind} ${c.path}`);
  assert.deepEqual(listed, ["added .wh.README.md", "added src/.wh..wh..opq", "added src/.wh.util.c"], "what the sandbox sees is what review shows");
  // The sandbox sees all of it, and so does sandbox/readFile.
  const seen = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "ls -A . src | tr '\\n' ' '"] });
  assert.match(seen.stdout, /README\.md.*main\.c.*util\.c/);
  assert.deepEqual((await shared.client.request("sandbox/readFile", { id, path: "src" })).entries, [".wh..wh..opq", ".wh.util.c", "main.c", "util.c"]);
  assert.equal(Buffer.from((await shared.client.request("sandbox/readFile", { id, path: ".wh.README.md" })).content, "base64").toString(), "\n");
  const result = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(result.applied.sort(), [".wh.README.md", "src/.wh..wh..opq", "src/.wh.util.c"]);
  for (const kept of ["README.md", "src/main.c", "src/util.c"]) assert.ok(fs.existsSync(path.join(ws, kept)), `${kept} is still in the workspace`);
  // A real deletion still reads as one.
  await shared.client.request("sandbox/exec", { id, argv: ["rm", "src/util.c"] });
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes.map((c) => `${c.kind} ${c.path}`), ["deleted src/util.c"]);
  await shared.client.request("sandbox/delete", { id });
});

/** What `work` gives, and the slowest of another client's pings while it ran. */
async function withPingsMeanwhile<T>(work: () => Promise<T>): Promise<{ value: T; slowestPing: number }> {
  const other = await shared.fx.client();
  let slowestPing = 0;
  let pinging = true;
  const pings = (async () => {
    while (pinging) {
      const started = performance.now();
      await other.request("system/ping", { data: "meanwhile" });
      slowestPing = Math.max(slowestPing, performance.now() - started);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  try {
    return { value: await work(), slowestPing };
  } finally {
    pinging = false;
    await pings;
    other.close();
  }
}

test("a request naming 15,000 paths against 15,000 changes keeps other clients answered", async (t) => {
  const ws = workspace("ws-many-paths", { "README": "many\n" });
  const id = await sandboxWith(ws, "mkdir made && cd made && seq 15000 | xargs touch");
  // Each path named is no change (a sibling folder's), so approve only selects, and skips them all.
  const asked = Array.from({ length: 15_000 }, (_, i) => `elsewhere/${i + 1}`);
  const { value: result, slowestPing } = await withPingsMeanwhile(() => shared.client.request("sandbox/approve", { id, paths: asked }));
  t.diagnostic(`approve naming 15,000 paths among 15,000 changes: another client's slowest ping ${Math.round(slowestPing)} ms`);
  assert.equal(result.applied.length, 0);
  assert.equal(result.skipped.length, 15_000);
  assert.ok(slowestPing < 2000, `another client waited ${Math.round(slowestPing)} ms for a ping`);
  assert.deepEqual(fs.readdirSync(ws), ["README"], "nothing reached the workspace");
  await shared.client.request("sandbox/delete", { id });
});

test("listing and diffing a sandbox of 50,000 changes keeps other clients answered", async (t) => {
  const ws = workspace("ws-many-changes", { "README": "many\n" });
  const id = await sandboxWith(ws, "mkdir made && cd made && seq 50000 | xargs touch");
  const started = performance.now();
  const listed = await withPingsMeanwhile(() => shared.client.request("sandbox/changes", { id }));
  const listMs = performance.now() - started;
  const diffed = await withPingsMeanwhile(() => shared.client.request("sandbox/diff", { id, paths: ["made/1"] }));
  const slowest = Math.max(listed.slowestPing, diffed.slowestPing);
  t.diagnostic(`sandbox/changes of 50,000 changes took ${Math.round(listMs)} ms; another client's slowest ping meanwhile ${Math.round(slowest)} ms`);
  assert.equal(listed.value.changes.length, 50_001, "every file and the folder");
  assert.ok(diffed.value.files.some((f) => f.path === "made/1"), JSON.stringify(diffed.value).slice(0, 300));
  assert.ok(slowest < 1000, `another client waited ${Math.round(slowest)} ms for a ping while the listing took ${Math.round(listMs)} ms`);
  await shared.client.request("sandbox/delete", { id });
});

test("approving and rejecting 4,000 files keeps other clients answered", async (t) => {
  const make = "mkdir made && cd made && for i in $(seq 4000); do echo $i > $i; done";
  const approving = await sandboxWith(workspace("ws-approve-many", { "README": "many\n" }), make);
  const approved = await withPingsMeanwhile(() => shared.client.request("sandbox/approve", { id: approving }));
  const rejecting = await sandboxWith(workspace("ws-reject-many", { "README": "many\n" }), make);
  const rejected = await withPingsMeanwhile(() => shared.client.request("sandbox/reject", { id: rejecting }));
  t.diagnostic(`another client's slowest ping: ${Math.round(approved.slowestPing)} ms while 4,000 files were approved, ${Math.round(rejected.slowestPing)} ms while they were rejected`);
  assert.equal(approved.value.applied.length, 4001);
  assert.equal(rejected.value.rejected.length, 4001);
  assert.equal(fs.readFileSync(path.join(shared.fx.base, "ws-approve-many", "made", "4000"), "utf8"), "4000\n");
  assert.deepEqual((await shared.client.request("sandbox/changes", { id: rejecting })).changes, []);
  assert.ok(approved.slowestPing < 1000, `another client waited ${Math.round(approved.slowestPing)} ms while approve ran`);
  // Reject changes the sandbox, and the watcher then takes the 4,000 paths it changed (in slices
  // too; once one step, 1.2 s was seen under the whole suite's load).
  assert.ok(rejected.slowestPing < 1500, `another client waited ${Math.round(rejected.slowestPing)} ms while reject ran`);
  for (const id of [approving, rejecting]) await shared.client.request("sandbox/delete", { id });
});
