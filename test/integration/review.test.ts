/**
 * Review with real sandboxes: diff, approve and reject (whole paths and hunks), conflicts,
 * readFile/writeFile and live updates, checked against the files on disk.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fixtureForFile, refused, waitFor } from "../helpers/sandbox-fixture";
import { copyTree, describeTree } from "../helpers/tree";
import { EDITS, reviewFixture } from "../helpers/review-fixture";
import type { AgentNotifications } from "../../protocol/methods";
import { applyLineChanges, computeLineChanges, splitLines } from "../../agent/review/line-changes";

const shared = fixtureForFile();

const { workspace, richWorkspace, sandboxWith, waitForBases } = reviewFixture(shared);

test("differential: the edits run in a sandbox and approved give the same tree as run directly", async () => {
  const ws = richWorkspace("ws-diff-approve");
  const direct = path.join(shared.fx.base, "ws-diff-direct");
  copyTree(ws, direct);
  execFileSync("sh", ["-c", EDITS], { cwd: direct });
  const before = describeTree(ws);
  const id = await sandboxWith(ws, EDITS);
  assert.deepEqual(describeTree(ws), before, "nothing reaches the workspace before approve");

  const result = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(result.conflicts, []);
  assert.deepEqual(result.skipped, []);
  assert.deepEqual(describeTree(ws), describeTree(direct));
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes, [], "an approved path is no longer a change");
  assert.deepEqual(fs.readdirSync(ws).filter((n) => n.startsWith(".paddock")), [], "no temp file is left");
  await shared.client.request("sandbox/delete", { id });
});

test("differential: the same edits rejected leave the workspace as it was, and the sandbox like it", async () => {
  const ws = richWorkspace("ws-diff-reject");
  const before = describeTree(ws);
  const id = await sandboxWith(ws, EDITS);
  const { changes } = await shared.client.request("sandbox/changes", { id });
  const result = await shared.client.request("sandbox/reject", { id });
  assert.deepEqual(result.skipped, []);
  assert.deepEqual(new Set(result.rejected), new Set(changes.map((c) => c.path)));
  assert.deepEqual(describeTree(ws), before);
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes, [], "the sandbox shows the workspace's version again");
  const inside = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "cat edit.txt; readlink link; ls redo; test -d dir2file && echo dir"] });
  assert.equal(inside.stdout, "one\ntwo\nkeep.txt\nkept.txt\nold.txt\ndir\n");
  await shared.client.request("sandbox/delete", { id });
});

test("sandbox/diff is a patch that git apply turns the workspace into the sandbox with", async () => {
  const ws = richWorkspace("ws-git-apply");
  const id = await sandboxWith(ws, EDITS);
  const { patch, files } = await shared.client.request("sandbox/diff", { id });
  assert.match(patch, /^Binary files, not included .*\n {2}added: bin.dat\n/);
  assert.ok(files.find((f) => f.path === "bin.dat")?.binary);
  assert.ok(!patch.includes("\u0001"), "binary content is named, not dumped");

  // git applies the whole patch; with the binary file (named, not included) copied, the result is the sandbox's tree.
  const copy = path.join(shared.fx.base, "ws-git-apply-copy");
  copyTree(ws, copy);
  const applied = spawnSync("git", ["apply", "-"], { cwd: copy, input: patch, encoding: "utf8" });
  assert.equal(applied.status, 0, applied.stderr);
  fs.writeFileSync(path.join(copy, "bin.dat"), Buffer.from((await shared.client.request("sandbox/readFile", { id, path: "bin.dat" })).content, "base64"));
  await shared.client.request("sandbox/approve", { id });
  // git does not track directories: compare files and links, with the executable bit.
  const filesOnly = (root: string) => describeTree(root).filter((l) => !/ dir \d+$/.test(l)).map((l) => l.replace(/ file (\d+)/, (_m, mode: string) => ` file ${Number.parseInt(mode, 8) & 0o100 ? "x" : "-"}`));
  assert.deepEqual(filesOnly(copy), filesOnly(ws));
  await shared.client.request("sandbox/delete", { id });
});

const TEN = Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join("");

test("hunks: approve one hunk and reject another; the results are those hunks applied by hand", async () => {
  const ws = workspace("ws-hunks", { "f.txt": TEN });
  const edited = TEN.replace("line 2\n", "line two\n").replace("line 15\n", "line fifteen\n").replace("line 28\n", "");
  const id = await sandboxWith(ws, `printf '%s' '${edited}' > f.txt`);
  const { files } = await shared.client.request("sandbox/diff", { id, paths: ["f.txt"] });
  const hunks = files[0]!.changes;
  assert.equal(hunks.length, 3);

  const approved = await shared.client.request("sandbox/approve", { id, hunks: [{ path: "f.txt", ...hunks[1]! }] });
  assert.deepEqual(approved.applied, ["f.txt"]);
  const oldLines = splitLines(TEN);
  const newLines = splitLines(edited);
  const byHand = (pick: (i: number) => boolean) => applyLineChanges(oldLines, newLines, computeLineChanges(oldLines, newLines), (_c, i) => pick(i));
  assert.equal(fs.readFileSync(path.join(ws, "f.txt"), "utf8"), byHand((i) => i === 1));

  // Now the sandbox differs from the workspace by hunks 0 and 2; reject the last.
  const now = (await shared.client.request("sandbox/diff", { id, paths: ["f.txt"] })).files[0]!.changes;
  assert.equal(now.length, 2);
  const rejected = await shared.client.request("sandbox/reject", { id, hunks: [{ path: "f.txt", ...now[1]! }] });
  assert.deepEqual(rejected.rejected, ["f.txt"]);
  const inSandbox = Buffer.from((await shared.client.request("sandbox/readFile", { id, path: "f.txt" })).content, "base64").toString("utf8");
  assert.equal(inSandbox, byHand((i) => i !== 2));
  assert.equal(fs.readFileSync(path.join(ws, "f.txt"), "utf8"), byHand((i) => i === 1), "reject never touches the workspace");

  // A hunk that no longer matches is refused, and nothing changes.
  await refused(shared.client.request("sandbox/approve", { id, hunks: [{ path: "f.txt", ...now[1]! }] }), "E_HUNK_MISMATCH");
  await shared.client.request("sandbox/delete", { id });
});

test("conflicts of each kind are reported with the three versions; edits in lines apart are merged; nothing is overwritten without force", async () => {
  const base = Array.from({ length: 12 }, (_, i) => `${i}\n`).join("");
  const ws = workspace("ws-conflicts", { "both.txt": base, "merge.txt": base, "del-sb.txt": "x\n", "del-ws.txt": "y\n", "type.txt": "t\n" });
  const id = await sandboxWith(ws, [
    "echo sandbox > both.txt",
    "sed -i 's/^1$/one/' merge.txt",
    "rm del-sb.txt",
    "echo sandbox >> del-ws.txt",
    "rm type.txt && ln -s both.txt type.txt",
    "echo sandbox > added.txt",
  ].join(" && "));
  await waitForBases(id, ["both.txt", "merge.txt", "del-ws.txt", "added.txt"]);
  // Meanwhile, someone works in the workspace.
  fs.writeFileSync(path.join(ws, "both.txt"), "workspace\n");
  fs.writeFileSync(path.join(ws, "merge.txt"), base.replace("10\n", "ten\n"));
  fs.appendFileSync(path.join(ws, "del-sb.txt"), "workspace\n");
  fs.rmSync(path.join(ws, "del-ws.txt"));
  fs.rmSync(path.join(ws, "type.txt"));
  fs.mkdirSync(path.join(ws, "type.txt"));
  fs.writeFileSync(path.join(ws, "added.txt"), "workspace\n");
  const before = describeTree(ws).filter((line) => !line.includes("merge.txt"));

  const result = await shared.client.request("sandbox/approve", { id });
  const mergedText = base.replace("1\n", "one\n").replace("10\n", "ten\n");
  assert.deepEqual([result.applied, result.merged], [["merge.txt"], ["merge.txt"]], "lines apart: merged without asking");
  assert.equal(fs.readFileSync(path.join(ws, "merge.txt"), "utf8"), mergedText);
  assert.equal(Buffer.from((await shared.client.request("sandbox/readFile", { id, path: "merge.txt" })).content, "base64").toString(), mergedText, "the sandbox has the merge too");
  assert.equal((await shared.client.request("sandbox/changes", { id })).changes.some((c) => c.path === "merge.txt"), false, "nothing left to review there");
  const reasons = Object.fromEntries(result.conflicts.map((c) => [c.path, c.reason]));
  assert.deepEqual(reasons, {
    "added.txt": "added-in-both",
    "both.txt": "both-modified",
    "del-sb.txt": "deleted-in-sandbox",
    "del-ws.txt": "deleted-in-workspace",
    "type.txt": "type-changed",
  });
  assert.deepEqual(describeTree(ws).filter((line) => !line.includes("merge.txt")), before, "nothing else was written");
  const both = result.conflicts.find((c) => c.path === "both.txt")!;
  assert.deepEqual([both.base, both.workspace, both.sandbox, both.merged], [base, "workspace\n", "sandbox\n", undefined]);

  // force, per path: the sandbox's version wins there, and only there.
  const forced = await shared.client.request("sandbox/approve", { id, paths: ["both.txt", "added.txt"], force: ["both.txt"] });
  assert.deepEqual(forced.applied, ["both.txt"]);
  assert.deepEqual(forced.conflicts.map((c) => c.path), ["added.txt"]);
  assert.equal(fs.readFileSync(path.join(ws, "both.txt"), "utf8"), "sandbox\n");
  assert.equal(fs.readFileSync(path.join(ws, "added.txt"), "utf8"), "workspace\n");
  await shared.client.request("sandbox/delete", { id });
});

test("a file the workspace changed too: its diff is against the base, its hunks merge into the workspace, the sandbox keeps the rest", async () => {
  const base = Array.from({ length: 20 }, (_, i) => `${i}\n`).join("");
  const ws = workspace("ws-against-base", { "f.txt": base });
  const id = await sandboxWith(ws, "sed -i 's/^2$/two/; s/^15$/fifteen/' f.txt");
  await waitForBases(id, ["f.txt"]);
  // The user edits the same file in the workspace, in another line.
  const userEdit = base.replace("8\n", "eight\n");
  fs.writeFileSync(path.join(ws, "f.txt"), userEdit);

  const listed = (await shared.client.request("sandbox/changes", { id })).changes.find((c) => c.path === "f.txt");
  assert.equal(listed?.againstBase, true, "the workspace moved on: the diff is against the base");
  const { patch, files } = await shared.client.request("sandbox/diff", { id, paths: ["f.txt"] });
  assert.deepEqual(files[0]!.changes.length, 2, "the sandbox's two changes, and not the user's edit read backwards");
  assert.doesNotMatch(patch, /eight/, patch);
  assert.equal(Buffer.from((await shared.client.request("sandbox/readFile", { id, path: "f.txt", base: true })).content, "base64").toString(), base, "the base, as the diff's left side");

  // Approving the first change merges it with the user's edit; the sandbox keeps its second on top of both.
  const approved = await shared.client.request("sandbox/approve", { id, hunks: [{ path: "f.txt", ...files[0]!.changes[0]! }] });
  assert.deepEqual([approved.applied, approved.merged, approved.conflicts], [["f.txt"], ["f.txt"], []]);
  const afterApprove = userEdit.replace("2\n", "two\n");
  assert.equal(fs.readFileSync(path.join(ws, "f.txt"), "utf8"), afterApprove);
  const inSandbox = async () => Buffer.from((await shared.client.request("sandbox/readFile", { id, path: "f.txt" })).content, "base64").toString();
  assert.equal(await inSandbox(), afterApprove.replace("15\n", "fifteen\n"));
  const rest = await shared.client.request("sandbox/diff", { id, paths: ["f.txt"] });
  assert.equal(rest.files[0]!.changes.length, 1, rest.patch);
  assert.match(rest.patch, /^-15\n\+fifteen$/m);
  assert.equal((await shared.client.request("sandbox/changes", { id })).changes.find((c) => c.path === "f.txt")?.againstBase, undefined, "the workspace is the base again");

  // The user edits again; rejecting the last change gives the sandbox the workspace's file, and leaves the workspace alone.
  const secondEdit = afterApprove.replace("18\n", "eighteen\n");
  fs.writeFileSync(path.join(ws, "f.txt"), secondEdit);
  const last = (await shared.client.request("sandbox/diff", { id, paths: ["f.txt"] })).files[0]!.changes;
  assert.equal(last.length, 1, "still only the sandbox's change");
  const rejected = await shared.client.request("sandbox/reject", { id, hunks: [{ path: "f.txt", ...last[0]! }] });
  assert.deepEqual(rejected.rejected, ["f.txt"]);
  assert.equal(await inSandbox(), secondEdit);
  assert.equal(fs.readFileSync(path.join(ws, "f.txt"), "utf8"), secondEdit, "reject never touches the workspace");
  assert.equal((await shared.client.request("sandbox/changes", { id })).changes.some((c) => c.path === "f.txt"), false, "nothing left to review");
  await shared.client.request("sandbox/delete", { id });
});

test("a merge the sandbox could not take too keeps its base: a second approve loses none of the user's edits", async () => {
  const base = Array.from({ length: 12 }, (_, i) => `${i}\n`).join("");
  const ws = workspace("ws-merge-kept-base", { "m.txt": base });
  const id = await sandboxWith(ws, "sed -i 's/^1$/one/' m.txt");
  await waitForBases(id, ["m.txt"]);
  fs.writeFileSync(path.join(ws, "m.txt"), base.replace("10\n", "ten\n"));
  const merged = base.replace("1\n", "one\n").replace("10\n", "ten\n");
  // The sandbox's copy cannot be replaced (as when the agent dies between the two writes).
  const upperFile = path.join(shared.fx.stateDir, "sandboxes", id, "upper", "m.txt");
  execFileSync("chattr", ["+i", upperFile]);
  let first;
  try {
    first = await shared.client.request("sandbox/approve", { id });
  } finally {
    execFileSync("chattr", ["-i", upperFile]);
  }
  assert.deepEqual([first.applied, first.merged], [["m.txt"], ["m.txt"]]);
  assert.match(first.skipped[0]?.reason ?? "", /the sandbox keeps its own copy/);
  assert.equal(fs.readFileSync(path.join(ws, "m.txt"), "utf8"), merged);

  // The sandbox's older copy reads as its own change against the base, never as removing "ten".
  assert.equal((await shared.client.request("sandbox/changes", { id })).changes.find((c) => c.path === "m.txt")?.againstBase, true);
  const { patch } = await shared.client.request("sandbox/diff", { id, paths: ["m.txt"] });
  assert.doesNotMatch(patch, /ten/, patch);
  const second = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(second.conflicts, []);
  assert.equal(fs.readFileSync(path.join(ws, "m.txt"), "utf8"), merged, "the user's edit is still there");
  await shared.client.request("sandbox/delete", { id });
});

test("without a captured base, a workspace file changed after the sandbox's change is still a conflict", async () => {
  const ws = workspace("ws-nobase", { "f.txt": "base\n" });
  const id = await sandboxWith(ws, "echo sandbox > f.txt");
  await waitForBases(id, ["f.txt"]);
  fs.rmSync(path.join(shared.fx.stateDir, "sandboxes", id, "bases.json"), { force: true });
  fs.writeFileSync(path.join(ws, "f.txt"), "workspace\n");
  const result = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(result.conflicts.map((c) => [c.path, c.reason]), [["f.txt", "both-modified"]]);
  assert.equal(fs.readFileSync(path.join(ws, "f.txt"), "utf8"), "workspace\n");
  await shared.client.request("sandbox/delete", { id });
});

test("without a captured base, a file deleted in the workspace after the sandbox changed it is a conflict", async () => {
  const ws = workspace("ws-nobase-deleted", { "f.txt": "base\n", "other.txt": "o\n" });
  const id = await sandboxWith(ws, "echo sandbox > f.txt");
  await waitForBases(id, ["f.txt"]);
  fs.rmSync(path.join(shared.fx.stateDir, "sandboxes", id, "bases.json"), { force: true });
  fs.rmSync(path.join(ws, "f.txt"));
  const result = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual(result.conflicts.map((c) => [c.path, c.reason]), [["f.txt", "deleted-in-workspace"]]);
  assert.equal(fs.existsSync(path.join(ws, "f.txt")), false);
  await shared.client.request("sandbox/delete", { id });
});

test("a workspace file saved while approve runs is kept: the approve plans against what it saw", async () => {
  const files = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`many/f${i}.txt`, `${i}\n`]));
  const ws = workspace("ws-live-save", files);
  const id = await sandboxWith(ws, "for f in many/*.txt; do echo sandbox >> $f; done");
  // Saves land during the approve: each is either applied over (planned before the save) or kept.
  let saving = true;
  const saves = (async () => {
    for (let i = 0; saving; i = (i + 1) % 300) {
      fs.writeFileSync(path.join(ws, `many/f${i}.txt`), `saved by the user ${i}\n`);
      await new Promise((r) => setImmediate(r));
    }
  })();
  const result = await shared.client.request("sandbox/approve", { id });
  saving = false;
  await saves;
  for (const { path: rel, reason } of result.skipped) assert.match(reason, /changed in the workspace while it was being approved/, rel);
  for (let i = 0; i < 300; i++) {
    const text = fs.readFileSync(path.join(ws, `many/f${i}.txt`), "utf8");
    assert.match(text, /^(\d+\nsandbox\n|saved by the user \d+\n)$/, `f${i}.txt is one whole version`);
  }
  await shared.client.request("sandbox/delete", { id });
});

test("approving a file in a new folder brings the folder, not its other files", async () => {
  const ws = workspace("ws-newdir", { "a.txt": "a\n" });
  const id = await sandboxWith(ws, "mkdir -p new/deeper && echo 1 > new/deeper/one.txt && echo 2 > new/two.txt");
  const result = await shared.client.request("sandbox/approve", { id, paths: ["new/deeper/one.txt"] });
  assert.deepEqual(result.applied, ["new", "new/deeper", "new/deeper/one.txt"]);
  assert.equal(fs.readFileSync(path.join(ws, "new/deeper/one.txt"), "utf8"), "1\n");
  assert.equal(fs.existsSync(path.join(ws, "new/two.txt")), false);
  assert.deepEqual((await shared.client.request("sandbox/changes", { id })).changes.map((c) => c.path), ["new/two.txt"]);
  await shared.client.request("sandbox/delete", { id });
});

test("approving twice in a row, and after the workspace moved on, is not a conflict", async () => {
  const ws = workspace("ws-again", { "f.txt": "1\n", "g.txt": "g\n" });
  const id = await sandboxWith(ws, "echo 2 > f.txt");
  assert.deepEqual((await shared.client.request("sandbox/approve", { id })).applied, ["f.txt"]);
  const again = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo 3 > f.txt"] });
  assert.equal(again.exitCode, 0);
  const second = await shared.client.request("sandbox/approve", { id });
  assert.deepEqual([second.applied, second.conflicts], [["f.txt"], []]);
  assert.equal(fs.readFileSync(path.join(ws, "f.txt"), "utf8"), "3\n");
  await shared.client.request("sandbox/delete", { id });
});

test("special files, setuid bits and privileged attributes are never applied, and are reported", async () => {
  const ws = workspace("ws-special", { "keep.txt": "k\n" });
  const id = await sandboxWith(ws, "mkfifo pipe && echo s > suid && chmod 4755 suid && echo c > cap && echo t > trusted && mkdir tdir");
  // What a privileged process could leave in the upper directory: a file capability, a trusted attribute.
  const upper = path.join(shared.fx.stateDir, "sandboxes", id, "upper");
  execFileSync("python3", ["-c", "import os, sys; os.setxattr(sys.argv[1], 'security.capability', bytes.fromhex('0100000200200000000000000000000000000000')); os.setxattr(sys.argv[2], 'trusted.paddock', b'1'); os.setxattr(sys.argv[3], 'trusted.paddock', b'1')", path.join(upper, "cap"), path.join(upper, "trusted"), path.join(upper, "tdir")]);
  const result = await shared.client.request("sandbox/approve", { id });
  const reasons = result.skipped.map((s) => `${s.path}: ${s.reason}`);
  assert.ok(reasons.includes("pipe: special files (devices, FIFOs, sockets) are never applied"), reasons.join("\n"));
  assert.ok(reasons.includes("suid: setuid bit not applied: approve never makes a program that runs with other rights"), reasons.join("\n"));
  assert.ok(reasons.includes("cap: attribute security.capability not applied"), reasons.join("\n"));
  assert.ok(reasons.includes("trusted: attribute trusted.paddock not applied"), reasons.join("\n"));
  assert.ok(reasons.includes("tdir: attribute trusted.paddock not applied"), reasons.join("\n"));
  const attributes = execFileSync("python3", ["-c", "import os, sys; print(os.listxattr(sys.argv[1]) + os.listxattr(sys.argv[2]))", path.join(ws, "cap"), path.join(ws, "trusted")], { encoding: "utf8" });
  assert.equal(attributes.trim(), "[]", "the files are applied without them");
  assert.equal(fs.existsSync(path.join(ws, "pipe")), false);
  assert.equal(fs.statSync(path.join(ws, "suid")).mode & 0o7777, 0o755);
  await shared.client.request("sandbox/delete", { id });
});

test("readFile shows the sandbox's side; writeFile edits it, and the sandbox sees the edit at once", async () => {
  const ws = workspace("ws-rw", { "a.txt": "workspace\n", "dir/b.txt": "b\n" });
  const id = await sandboxWith(ws, "echo sandbox > a.txt && rm dir/b.txt && echo c > dir/c.txt");
  const read = (p: string) => shared.client.request("sandbox/readFile", { id, path: p });
  assert.equal(Buffer.from((await read("a.txt")).content, "base64").toString(), "sandbox\n");
  assert.deepEqual((await read("dir")).entries, ["c.txt"]);
  await refused(read("dir/b.txt"), "E_NOT_FOUND");
  await refused(read("../etc/passwd"), "E_INVALID_PARAMS");

  await shared.client.request("sandbox/writeFile", { id, path: "a.txt", content: Buffer.from("edited by the user\n").toString("base64") });
  const seen = await shared.client.request("sandbox/exec", { id, argv: ["cat", "a.txt"] });
  assert.equal(seen.stdout, "edited by the user\n");
  assert.equal(fs.readFileSync(path.join(ws, "a.txt"), "utf8"), "workspace\n");
  await refused(shared.client.request("sandbox/writeFile", { id, path: "nowhere/x.txt", content: "" }), "E_NOT_FOUND");

  // A stopped sandbox is mounted just for the write.
  await shared.client.request("sandbox/stop", { id });
  await shared.client.request("sandbox/writeFile", { id, path: "new.txt", content: Buffer.from("n\n").toString("base64") });
  await shared.client.request("sandbox/start", { id });
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["cat", "new.txt"] })).stdout, "n\n");
  await shared.client.request("sandbox/delete", { id });
});

test("sandbox/didChange follows a running command, debounced", async () => {
  const ws = workspace("ws-live", { "a.txt": "a\n" });
  const { id } = await shared.client.request("sandbox/create", { workspace: ws });
  const seen: string[][] = [];
  const client = await shared.fx.client();
  client.onNotification((method, params) => {
    const change = params as AgentNotifications["sandbox/didChange"];
    if (method === "sandbox/didChange" && change.id === id) seen.push(change.paths);
  });
  await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo b > a.txt; mkdir d; for i in 1 2 3 4 5; do echo $i > d/f$i; done; rm a.txt"] });
  await waitFor("the notifications", () => (seen.flat().includes("d/f5") && seen.flat().includes("a.txt") ? true : undefined)).catch((err) => {
    console.log("SEEN", JSON.stringify(seen), fs.readFileSync(path.join(shared.fx.stateDir, "logs", "agent.log"), "utf8").split("\n").filter((l) => /bases|didChange|error/i.test(l)).slice(-5).join("\n"));
    throw err;
  });
  assert.ok(seen.length < 10, `debounced into a few notifications, got ${seen.length}`);
  await shared.client.request("sandbox/delete", { id });
});

test("race: a sandbox swapping a folder for a symlink to outside while approve runs never gets a write outside", async () => {
  const outside = path.join(shared.fx.base, "outside");
  fs.mkdirSync(outside);
  const files = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`d/f${i}.txt`, `${i}\n`]));
  const ws = workspace("ws-race", files);
  const id = await sandboxWith(ws, "for f in d/*.txt; do echo changed >> $f; done");
  // In a tight loop: the folder goes, a symlink to outside takes its place, the folder comes back,
  // and files are rewritten so that every approve has something to do.
  const swapper = `i=0; while :; do i=$((i+1)); mv d d.real && ln -s ${outside} d && rm d && mv d.real d; echo $i > d/f$((i % 40)).txt; done`;
  const { pid } = await shared.client.request("process/spawn", { id, argv: ["sh", "-c", swapper] });
  try {
    // At least 3 s and at least 10 approves, however slow the machine.
    let approves = 0;
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline || approves < 10) {
      await shared.client.request("sandbox/approve", { id }).catch((err: { code?: string }) => {
        // A refusal because something moved is fine; anything else is not.
        assert.equal(err.code, "E_UNSAFE_PATH", String(err));
      });
      approves++;
    }
  } finally {
    await shared.client.request("process/kill", { pid, signal: "SIGKILL" });
  }
  assert.deepEqual(fs.readdirSync(outside), [], "nothing was written outside the workspace");
  // Every file in the workspace holds what the workspace or the sandbox had at some moment (the
  // swapper's `>` empties a file just before it writes it: that moment counts too).
  for (const line of describeTree(ws)) {
    const [rel, type] = line.split(" ");
    assert.doesNotMatch(rel!, /\.paddock-approve-/, "no temp file of approve is left in the workspace");
    if (type === "file") assert.match(fs.readFileSync(path.join(ws, rel!), "utf8"), /^(\d+\n(changed\n)?)?$/, rel);
    if (type === "symlink") assert.equal(fs.readlinkSync(path.join(ws, rel!)), outside, "a symlink the sandbox had, approved as a symlink");
  }
  await shared.client.request("sandbox/delete", { id });
});
