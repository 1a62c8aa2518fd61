/** `npm run package`: a .vsix that holds what the extension and its agent need, and whose agent runs. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, tempDir } from "../helpers/agent-process";

test("the .vsix: the bundles, the native helpers and modules, no sources; its own agent works", { timeout: 180_000 }, () => {
  // dist/ is already built by npm test: packaging must not rebuild it under tests that run it.
  execFileSync(process.execPath, ["scripts/package.mjs"], { cwd: REPO, stdio: "pipe", env: { ...process.env, PADDOCK_PACKAGE_PREBUILT: "1", PADDOCK_PACKAGE_QUIET: "1" } });
  const { version } = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8")) as { version: string };
  const vsix = path.join(REPO, `paddock-${version}.vsix`);
  assert.ok(fs.statSync(vsix).size < 5 * 1024 * 1024, "under 5 MiB");
  const dir = tempDir("paddock-vsix-");
  execFileSync("unzip", ["-q", vsix, "-d", dir]);
  const ext = path.join(dir, "extension");
  for (const file of ["package.json", "dist/extension.js", "dist/paddock.js", "dist/native/paddock-enter", "dist/node_modules/node-pty/build/Release/pty.node", "dist/node_modules/@koromix/koffi-linux-x64/linux_x64/koffi.node"]) {
    assert.ok(fs.existsSync(path.join(ext, file)), `${file} is in the .vsix`);
  }
  const listed = execFileSync("find", [ext, "-name", "*.ts", "-o", "-name", "*.map", "-o", "-name", "*.cc"], { encoding: "utf8" }).trim();
  assert.equal(listed, "", "no sources or source maps");

  // The agent as the extension will spawn it, from the unpacked .vsix alone.
  const stateDir = path.join(dir, "state");
  const ws = path.join(dir, "ws");
  fs.mkdirSync(ws);
  fs.writeFileSync(path.join(ws, "a.txt"), "before\n");
  const paddock = (...args: string[]) => spawnSync(process.execPath, [path.join(ext, "dist", "paddock.js"), ...args, "--state-dir", stateDir], { encoding: "utf8", env: { ...process.env, PADDOCK_SOCKET: "" } });
  const created = paddock("create", ws, "--json");
  assert.equal(created.status, 0, created.stderr);
  const { id } = JSON.parse(created.stdout) as { id: string };
  // A terminal through the packaged node-pty: script(1) gives the CLI a TTY.
  const tty = spawnSync("script", ["-qec", `${process.execPath} ${path.join(ext, "dist", "paddock.js")} exec ${id} --state-dir ${stateDir} -- sh -c 'test -t 0 && echo after > a.txt'`, "/dev/null"], { encoding: "utf8", env: { ...process.env, PADDOCK_SOCKET: "" } });
  assert.equal(tty.status, 0, tty.stdout);
  assert.match(paddock("diff", id).stdout, /^-before\n\+after\n/m);
  assert.equal(paddock("rm", id).status, 0);
});
