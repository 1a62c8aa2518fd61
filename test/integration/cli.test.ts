/** The paddock command line, as a person uses it: through a private agent, and with a real terminal. */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PADDOCK, runCli, tempDir } from "../helpers/agent-process";
import { makeWorkspace, treeHash } from "../helpers/sandbox-fixture";

const base = tempDir("paddock-cli-");
const stateDir = path.join(base, "state");
const env = { PADDOCK_SOCKET: "" };
/** Options go before `--`: everything after it is the sandboxed command's. */
const cli = (...args: string[]) => {
  const dash = args.indexOf("--");
  const withState = dash < 0 ? [...args, "--state-dir", stateDir] : [...args.slice(0, dash), "--state-dir", stateDir, ...args.slice(dash)];
  return runCli(withState, { env });
};

after(async () => {
  const { stdout } = await cli("ls", "--json");
  for (const s of (JSON.parse(stdout) as { sandboxes: { id: string }[] }).sandboxes) await cli("rm", s.id);
});

test("create, ls, exec (exit code and stdin passed through), stop, start, rm", async () => {
  const ws = makeWorkspace(base, "ws-cli");
  const before = treeHash(ws);
  const created = await cli("create", ws, "--json", "--name", "cli demo");
  assert.equal(created.code, 0, created.stderr);
  const { id, name } = JSON.parse(created.stdout) as { id: string; name: string };
  assert.equal(name, "cli demo");

  const ls = await cli("ls");
  assert.match(ls.stdout, new RegExp(`^${id}\\s+cli demo\\s+running\\s+process\\s+none`, "m"));

  const run = await cli("exec", id, "--", "sh", "-c", "echo to-out; echo to-err >&2; echo changed > README.md; exit 7");
  assert.equal(run.code, 7, run.stderr);
  assert.equal(run.stdout, "to-out\n");
  assert.equal(run.stderr, "to-err\n");
  assert.equal(treeHash(ws), before);

  const piped = spawnSync(process.execPath, [PADDOCK, "exec", id, "--state-dir", stateDir, "--", "tr", "a-z", "A-Z"], { input: "piped in\n", encoding: "utf8", env: { ...process.env, ...env } });
  assert.equal(piped.stdout, "PIPED IN\n");
  assert.equal(piped.status, 0);

  assert.match((await cli("stop", id)).stdout, /stopped/);
  const refused = await cli("exec", id, "--", "true");
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /is stopped\n {2}hint: start it/);
  assert.match((await cli("start", id)).stdout, /running/);
  assert.equal((await cli("exec", id, "--", "cat", "README.md")).stdout, "changed\n");
  assert.match((await cli("rm", id)).stdout, /deleted/);
  assert.match((await cli("rm", id)).stdout, /already gone/);
});

test("exec with a terminal: a real TTY, its size, and the exit code", async () => {
  const ws = makeWorkspace(base, "ws-tty");
  const { id } = JSON.parse((await cli("create", ws, "--json")).stdout) as { id: string };
  // script(1) gives the CLI a terminal of its own, as a person's shell would.
  const command = `stty cols 91 rows 33; ${process.execPath} ${PADDOCK} exec ${id} --state-dir ${stateDir} -- sh -c 'test -t 0 && echo is-a-tty; stty size; exit 4'`;
  const result = spawnSync("script", ["-qec", command, "/dev/null"], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 30_000 });
  assert.match(result.stdout, /is-a-tty/);
  assert.match(result.stdout, /33 91/);
  assert.equal(result.status, 4);
  // Without a command: the sandbox's own login shell, which reads the terminal.
  const shell = spawnSync("script", ["-qec", `${process.execPath} ${PADDOCK} exec ${id} --state-dir ${stateDir}`, "/dev/null"], { input: 'echo "in=$SHELL"; exit 6\n', encoding: "utf8", env: { ...process.env, ...env }, timeout: 30_000 });
  assert.match(shell.stdout, /in=\/\S+/);
  assert.equal(shell.status, 6, shell.stdout);
});

test("bad input: clear errors with hints, exit code 2, and nothing created", async () => {
  const before = await listCount();
  const missing = await cli("create", path.join(base, "nope"));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /does not exist\n {2}hint: /);
  const limits = await cli("create", makeWorkspace(base, "ws-bad"), "--memory", "lots");
  assert.match(limits.stderr, /--memory "lots" is not a number/);
  const noSandbox = await cli("exec", "sbx-000000000000");
  assert.match(noSandbox.stderr, /no sandbox|not found/i);
  const unknown = await cli("frobnicate");
  assert.match(unknown.stderr, /unknown command/);
  assert.equal(await listCount(), before);
  assert.equal(fs.readdirSync(path.join(stateDir, "sandboxes")).length, before);
});

async function listCount(): Promise<number> {
  return (JSON.parse((await cli("ls", "--json")).stdout) as { sandboxes: unknown[] }).sandboxes.length;
}

test("changes, diff (plain when piped, coloured on a terminal), approve and reject by path", async () => {
  const ws = makeWorkspace(base, "ws-review");
  fs.writeFileSync(path.join(ws, "keep.txt"), "keep\n");
  fs.writeFileSync(path.join(ws, "drop.txt"), "drop\n");
  const { id } = JSON.parse((await cli("create", ws, "--json")).stdout) as { id: string };
  await cli("exec", id, "--", "sh", "-c", "echo kept >> keep.txt; echo dropped >> drop.txt; echo new > new.txt");

  assert.equal((await cli("changes", id)).stdout, "M  drop.txt\nM  keep.txt\nA  new.txt\n");
  const piped = await cli("diff", id, path.join(ws, "keep.txt"));
  assert.equal(piped.stdout, "diff --git a/keep.txt b/keep.txt\n--- a/keep.txt\n+++ b/keep.txt\n@@ -1 +1,2 @@\n keep\n+kept\n");
  const tty = spawnSync("script", ["-qec", `${process.execPath} ${PADDOCK} diff ${id} --state-dir ${stateDir}`, "/dev/null"], { encoding: "utf8", env: { ...process.env, ...env, TERM: "xterm" }, timeout: 30_000 });
  assert.ok(tty.stdout.includes("\x1b[32m+kept\x1b[0m"), JSON.stringify(tty.stdout));

  const approved = await cli("approve", id, path.join(ws, "keep.txt"), path.join(ws, "new.txt"));
  assert.equal(approved.code, 0, approved.stderr);
  assert.match(approved.stdout, /Applied 2:\n {2}keep.txt\n {2}new.txt/);
  assert.equal(fs.readFileSync(path.join(ws, "keep.txt"), "utf8"), "keep\nkept\n");
  const rejected = await cli("reject", id, path.join(ws, "drop.txt"));
  assert.match(rejected.stdout, /Rejected 1/);
  assert.equal(fs.readFileSync(path.join(ws, "drop.txt"), "utf8"), "drop\n");
  assert.match(rejected.stdout, new RegExp(`Undo with: paddock undo ${id} [0-9a-f]{12}`));
  assert.equal((await cli("changes", id)).stdout, "No changes.\n");
  // Undo: the latest (the reject) goes first; --list shows what is left.
  assert.match((await cli("undo", id)).stdout, /Undid the reject of 1 \(the sandbox has its changes again\):\n {2}drop.txt/);
  assert.equal((await cli("changes", id)).stdout, "M  drop.txt\n");
  assert.match((await cli("undo", id, "--list")).stdout, /^[0-9a-f]{12} {2}\S+ {2}approved 2: keep.txt, new.txt\n$/);
  await cli("reject", id);

  // A conflict: nothing overwritten, exit code 1, and --force applies it.
  await cli("exec", id, "--", "sh", "-c", "echo sandbox > keep.txt");
  fs.writeFileSync(path.join(ws, "keep.txt"), "workspace\n");
  const conflict = await cli("approve", id);
  assert.equal(conflict.code, 1);
  assert.match(conflict.stdout, /Conflicts .*\n {2}keep.txt: both-modified/);
  assert.equal(fs.readFileSync(path.join(ws, "keep.txt"), "utf8"), "workspace\n");
  assert.equal((await cli("approve", id, "--force")).code, 0);
  assert.equal(fs.readFileSync(path.join(ws, "keep.txt"), "utf8"), "sandbox\n");
  const outside = await cli("diff", id, "/etc/passwd");
  assert.equal(outside.code, 2);
  assert.match(outside.stderr, /is not inside the sandbox's workspace/);
});
