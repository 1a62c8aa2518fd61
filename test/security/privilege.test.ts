/**
 * A user must never gain root through the review methods: readFile, writeFile, approve and
 * reject work with the sandbox owner's rights, as a shell of theirs would. A real root agent on
 * a socket, a real user, a workspace holding what `sudo make install` leaves behind.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { startFixture, type Fixture } from "../helpers/sandbox-fixture";
import { callAs, ensureUser, runAs, type CallResult, type TestUser } from "../helpers/users";

const GROUP = "paddock-priv-grp";
let fx: Fixture;
let user: TestUser;

before(async () => {
  user = ensureUser("paddock-priv", GROUP);
  fx = await startFixture(["--socket-group", GROUP]);
});
after(async () => {
  await fx.stop();
});

/** A workspace of the user's with root's files in it. */
function workspace(name: string): string {
  const ws = path.join(fx.base, name);
  fs.mkdirSync(path.join(ws, "rootdir"), { recursive: true });
  fs.chownSync(ws, user.uid, user.gid);
  fs.writeFileSync(path.join(ws, "notes.txt"), "mine\n");
  fs.chownSync(path.join(ws, "notes.txt"), user.uid, user.gid);
  fs.writeFileSync(path.join(ws, "helper"), "#!/bin/sh\necho original\n", { mode: 0o755 });
  fs.chmodSync(path.join(ws, "helper"), 0o4755);
  fs.writeFileSync(path.join(ws, "rootonly"), "root's secret\n", { mode: 0o600 });
  fs.writeFileSync(path.join(ws, "rootdir", "config"), "root's config\n", { mode: 0o644 });
  return ws;
}

function ok(answer: CallResult | undefined): Record<string, unknown> {
  assert.ok(answer && "result" in answer && !answer.error, JSON.stringify(answer));
  return answer.result ?? {};
}

function code(answer: CallResult | undefined): string | undefined {
  return answer?.error?.data?.code;
}

function createAs(ws: string): string {
  const [created] = callAs(fx.socketPath, user, [["sandbox/create", { workspace: ws }]]);
  return ok(created).id as string;
}

test("sandbox/readFile refuses what the user cannot read, as a command in the sandbox is refused", () => {
  const ws = workspace("ws-read");
  const id = createAs(ws);
  const [inside, read, readable] = callAs(fx.socketPath, user, [
    ["sandbox/exec", { id, argv: ["cat", "rootonly"] }],
    ["sandbox/readFile", { id, path: "rootonly" }],
    ["sandbox/readFile", { id, path: "notes.txt" }],
  ]);
  assert.match(String(ok(inside).stderr), /Permission denied/);
  assert.equal(code(read), "E_PERMISSION_DENIED", JSON.stringify(read));
  assert.doesNotMatch(JSON.stringify(read), /cm9vdCdzIHNlY3JldA|root's secret/, "no byte of the file comes back");
  assert.ok(read!.error!.data!.hint, "a hint says why");
  assert.equal(Buffer.from(String(ok(readable).content), "base64").toString(), "mine\n");
});

test("writeFile then approve never makes a root-owned setuid program of the user's bytes", () => {
  const ws = workspace("ws-setuid");
  const id = createAs(ws);
  const program = fs.readFileSync("/usr/bin/id").toString("base64");
  const [write, approved] = callAs(fx.socketPath, user, [
    ["sandbox/writeFile", { id, path: "helper", content: program }],
    ["sandbox/approve", { id }],
  ]);
  ok(write);
  ok(approved);
  const st = fs.statSync(path.join(ws, "helper"));
  assert.equal(st.mode & 0o6000, 0, "no setuid or setgid bit");
  assert.equal(st.uid, user.uid, "the user's content belongs to the user");
  const ran = runAs(user, [path.join(ws, "helper"), "-u"]);
  assert.equal(ran.stdout.trim(), String(user.uid), `euid is the user's: ${ran.stdout}${ran.stderr}`);
});

test("a setuid program made in the sandbox loses the bit on approve, and says so", () => {
  const ws = workspace("ws-made");
  const id = createAs(ws);
  const [made, approved] = callAs(fx.socketPath, user, [
    ["sandbox/exec", { id, argv: ["sh", "-c", "cp /usr/bin/id mine && chmod 6755 mine && stat -c %a mine"] }],
    ["sandbox/approve", { id, paths: ["mine"] }],
  ]);
  assert.equal(String(ok(made).stdout).trim(), "6755");
  const result = ok(approved) as { applied: string[]; skipped: { path: string; reason: string }[] };
  assert.deepEqual(result.applied, ["mine"]);
  assert.ok(result.skipped.some((s) => s.path === "mine" && /setuid/.test(s.reason)), JSON.stringify(result.skipped));
  const st = fs.statSync(path.join(ws, "mine"));
  assert.equal(st.mode & 0o7777, 0o755);
  assert.equal(st.uid, user.uid);
});

test("nothing is created in, or rewritten inside, a folder the user cannot write", () => {
  const ws = workspace("ws-rootdir");
  const id = createAs(ws);
  const [newFile, rewrite, approved] = callAs(fx.socketPath, user, [
    ["sandbox/writeFile", { id, path: "rootdir/new.txt", content: Buffer.from("planted\n").toString("base64") }],
    ["sandbox/writeFile", { id, path: "rootdir/config", content: Buffer.from("rewritten\n").toString("base64") }],
    ["sandbox/approve", { id }],
  ]);
  assert.equal(code(newFile), "E_PERMISSION_DENIED", JSON.stringify(newFile));
  assert.equal(code(rewrite), "E_PERMISSION_DENIED", JSON.stringify(rewrite));
  ok(approved);
  assert.equal(fs.existsSync(path.join(ws, "rootdir", "new.txt")), false);
  assert.equal(fs.readFileSync(path.join(ws, "rootdir", "config"), "utf8"), "root's config\n");
  assert.equal(fs.statSync(path.join(ws, "rootdir", "config")).uid, 0);
});

test("approve as root of a user's sandbox still writes with the user's rights", async () => {
  const ws = workspace("ws-root-approves");
  const id = createAs(ws);
  const [made] = callAs(fx.socketPath, user, [["sandbox/exec", { id, argv: ["sh", "-c", "echo changed > notes.txt; cp /usr/bin/id mine; chmod 4755 mine"] }]]);
  ok(made);
  const admin = await fx.client();
  const result = await admin.request("sandbox/approve", { id });
  assert.deepEqual([...result.applied].sort(), ["mine", "notes.txt"]);
  for (const name of ["mine", "notes.txt"]) {
    const st = fs.statSync(path.join(ws, name));
    assert.equal(st.uid, user.uid, name);
    assert.equal(st.mode & 0o6000, 0, name);
  }
});

test("reject restores with the user's rights: what the user cannot read is not copied back", () => {
  const ws = workspace("ws-reject");
  const id = createAs(ws);
  const [changed, rejected, after] = callAs(fx.socketPath, user, [
    ["sandbox/exec", { id, argv: ["sh", "-c", "echo changed > notes.txt; rm -f rootonly helper"] }],
    ["sandbox/reject", { id }],
    ["sandbox/exec", { id, argv: ["sh", "-c", "cat notes.txt; cat helper; cat rootonly"] }],
  ]);
  ok(changed);
  const result = ok(rejected) as { rejected: string[]; skipped: { path: string; reason: string }[] };
  assert.deepEqual([...result.rejected].sort(), ["helper", "notes.txt"]);
  assert.ok(result.skipped.some((s) => s.path === "rootonly" && /permission/i.test(s.reason)), JSON.stringify(result.skipped));
  assert.equal(String(ok(after).stdout), "mine\n#!/bin/sh\necho original\n");
  // The workspace was never touched.
  assert.equal(fs.readFileSync(path.join(ws, "rootonly"), "utf8"), "root's secret\n");
});

test("a change to a file the user cannot read does not stop the diff: it is named, not shown", () => {
  const ws = workspace("ws-diff");
  const id = createAs(ws);
  const [changed, diff] = callAs(fx.socketPath, user, [
    ["sandbox/exec", { id, argv: ["sh", "-c", "rm -f rootonly; echo more >> notes.txt"] }],
    ["sandbox/diff", { id }],
  ]);
  ok(changed);
  const result = ok(diff) as { patch: string; files: { path: string; binary: boolean }[] };
  assert.match(result.patch, /\+more/);
  assert.doesNotMatch(result.patch, /root's secret/);
  assert.deepEqual(result.files.find((f) => f.path === "rootonly"), { path: "rootonly", binary: true, changes: [] });
});

test("approving a hunk of a root setuid script gives the user's file without the bit", () => {
  const ws = workspace("ws-hunk-setuid");
  fs.writeFileSync(path.join(ws, "tool.sh"), "#!/bin/sh\necho one\necho two\n");
  fs.chmodSync(path.join(ws, "tool.sh"), 0o4755);
  const id = createAs(ws);
  const [write, approved] = callAs(fx.socketPath, user, [
    ["sandbox/writeFile", { id, path: "tool.sh", content: Buffer.from("#!/bin/sh\necho ONE\necho two\n").toString("base64") }],
    ["sandbox/approve", { id, hunks: [{ path: "tool.sh", oldStart: 1, oldEnd: 2, newStart: 1, newEnd: 2 }] }],
  ]);
  ok(write);
  const result = ok(approved) as { applied: string[]; skipped: { path: string; reason: string }[] };
  assert.deepEqual(result.applied, ["tool.sh"]);
  assert.ok(result.skipped.some((s) => s.path === "tool.sh" && /setuid/.test(s.reason)), JSON.stringify(result.skipped));
  const st = fs.statSync(path.join(ws, "tool.sh"));
  assert.equal(st.mode & 0o7777, 0o755);
  assert.equal(st.uid, user.uid);
  assert.equal(fs.readFileSync(path.join(ws, "tool.sh"), "utf8"), "#!/bin/sh\necho ONE\necho two\n");
});

test("bases an older agent read with root's rights are not used: no conflict report shows them", async () => {
  const ws = workspace("ws-old-bases");
  const id = createAs(ws);
  // What an agent before the owner's rights left: a base holding root's file.
  const bases = path.join(fx.stateDir, "sandboxes", id, "bases.json");
  fs.writeFileSync(bases, JSON.stringify({ "notes.txt": { present: true, type: "file", mode: 0o644, identity: "0:0:0:0:0", data: Buffer.from("root's secret\n").toString("base64") } }));
  const [changed, approved] = callAs(fx.socketPath, user, [
    ["sandbox/exec", { id, argv: ["sh", "-c", "echo sandbox > notes.txt"] }],
    ["sandbox/approve", { id }],
  ]);
  ok(changed);
  assert.doesNotMatch(JSON.stringify(approved), /root's secret/);
});

test("a workspace behind a folder the user cannot enter is out of reach, as in a shell", () => {
  const locked = path.join(fx.base, "locked");
  fs.mkdirSync(locked, { mode: 0o755 });
  const ws = path.join(locked, "ws");
  fs.mkdirSync(ws);
  fs.chownSync(ws, user.uid, user.gid);
  fs.writeFileSync(path.join(ws, "notes.txt"), "mine\n");
  fs.chownSync(path.join(ws, "notes.txt"), user.uid, user.gid);
  const id = createAs(ws);
  // Root closes the way in afterwards: the user can no longer reach the folder, nor through Paddock.
  fs.chmodSync(locked, 0o700);
  const [read, write, approved, create, probe] = callAs(fx.socketPath, user, [
    ["sandbox/readFile", { id, path: "notes.txt" }],
    // The sandbox itself stays the user's to edit; the workspace is what is out of reach.
    ["sandbox/writeFile", { id, path: "planted", content: Buffer.from("x").toString("base64") }],
    ["sandbox/approve", { id }],
    ["sandbox/create", { workspace: ws }],
    ["sandbox/create", { workspace: path.join(locked, "nothing-here") }],
  ]);
  assert.equal(code(read), "E_INVALID_WORKSPACE", JSON.stringify(read));
  ok(write);
  assert.equal(code(approved), "E_INVALID_WORKSPACE", JSON.stringify(approved));
  assert.equal(code(create), "E_INVALID_WORKSPACE", JSON.stringify(create));
  assert.match(create!.error!.message, /cannot be reached/);
  assert.match(probe!.error!.message, /cannot be reached/, "whether something exists behind the folder is not told");
  assert.equal(fs.existsSync(path.join(ws, "planted")), false);
  fs.chmodSync(locked, 0o755);
});

test("sandbox/changes says nothing of what the user cannot see: no root folder's names, no guess of a root file confirmed", () => {
  const ws = workspace("ws-changes");
  fs.mkdirSync(path.join(ws, "secret"), { mode: 0o700 });
  fs.writeFileSync(path.join(ws, "secret", "passwords.txt"), "hunter2\n");
  fs.writeFileSync(path.join(ws, "decoy"), "decoy\n");
  fs.chownSync(path.join(ws, "decoy"), user.uid, user.gid);
  fs.writeFileSync(path.join(ws, "pin"), "PIN=4821\n", { mode: 0o600 });
  const id = createAs(ws);
  const [prepared] = callAs(fx.socketPath, user, [["sandbox/exec", { id, argv: ["sh", "-c", "rm decoy && printf 'PIN=4821\\n' > guess && chmod 600 guess"] }]]);
  ok(prepared);
  // In the real workspace, the user puts root's folder where the sandbox deleted a file, and root's file under the guess's name.
  const moved = runAs(user, ["sh", "-c", `cd ${ws} && mv decoy decoy.bak && mv secret decoy && mv pin guess`]);
  assert.equal(moved.status, 0, moved.stderr);
  const [listed] = callAs(fx.socketPath, user, [["sandbox/changes", { id }]]);
  const paths = (ok(listed).changes as { path: string; kind: string }[]).map((c) => `${c.kind} ${c.path}`);
  assert.ok(!paths.some((p) => p.includes("passwords")), paths.join("\n"));
  assert.ok(paths.includes("modified guess"), `a file the user cannot read is never found equal: ${paths.join("\n")}`);
});

test("undo puts files back with the user's rights: theirs, never setuid for another, and never what they cannot read", () => {
  const ws = workspace("ws-undo-rights");
  const id = createAs(ws);
  const [made, approvedOwn, approvedRoots, undone, listed] = callAs(fx.socketPath, user, [
    ["sandbox/exec", { id, argv: ["sh", "-c", "echo changed > notes.txt; rm -f helper rootonly; echo mine > helper"] }],
    ["sandbox/approve", { id, paths: ["notes.txt", "helper"] }],
    ["sandbox/approve", { id, paths: ["rootonly"] }],
    ["sandbox/undo", { id }],
    ["sandbox/undoList", { id }],
  ]);
  ok(made);
  assert.match(String(ok(approvedOwn).undo), /^[0-9a-f]{12}$/);
  // The user may delete root's file in their folder, but undo could not have kept it for them.
  const roots = ok(approvedRoots) as { applied: string[]; undo?: string; undoUnavailable?: string };
  assert.deepEqual(roots.applied, ["rootonly"]);
  assert.equal(roots.undo, undefined);
  assert.match(roots.undoUnavailable ?? "", /could not keep rootonly: your rights do not let you read it/);
  // The latest undoable is the first approve: notes.txt and root's setuid helper come back as they were, but the helper as the user's.
  assert.deepEqual((ok(undone) as { restored: string[] }).restored.sort(), ["helper", "notes.txt"]);
  assert.equal(fs.readFileSync(path.join(ws, "notes.txt"), "utf8"), "mine\n");
  assert.equal(fs.readFileSync(path.join(ws, "helper"), "utf8"), "#!/bin/sh\necho original\n");
  const helper = fs.statSync(path.join(ws, "helper"));
  assert.deepEqual([helper.uid, helper.mode & 0o7777], [user.uid, 0o755], "the user's file, without root's setuid bit");
  assert.deepEqual((ok(listed) as { undo: unknown[] }).undo, []);
  // The kept versions are the agent's, out of the user's reach.
  const kept = path.join(fx.stateDir, "sandboxes", id, "undo");
  assert.equal(fs.statSync(kept).mode & 0o077, 0);
  assert.notEqual(runAs(user, ["ls", kept]).status, 0);
});
