/**
 * `npm start` as a newcomer uses it: it prints where to open Paddock, the page asks for the
 * password it printed, VS Code opens the folder with the Paddock view; a sandbox is created
 * from that view; Ctrl-C stops everything and leaves no process, mount or sandbox behind.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { tempDir } from "../helpers/agent-process";
import { mountsUnder } from "../helpers/sandbox-fixture";
import { launchBrowser, REPO } from "../vscode/harness";

const ARTIFACTS = path.join(REPO, "test-artifacts", "start");

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

test("npm start: the URL and password it prints open VS Code with Paddock; Ctrl-C leaves nothing behind", { timeout: 600_000 }, async () => {
  const base = tempDir("paddock-start-");
  fs.chmodSync(base, 0o755);
  const run = path.join(base, "run");
  const folder = path.join(base, "my-project");
  fs.mkdirSync(folder);
  fs.writeFileSync(path.join(folder, "hello.txt"), "hello\n");
  const port = await freePort();
  // As `npm start` run from my-project: npm sets INIT_CWD to where it was run.
  const start = spawn("bash", [path.join(REPO, "scripts", "start.sh")], { cwd: REPO, env: { ...process.env, PADDOCK_START_DIR: run, PADDOCK_PORT: String(port), INIT_CWD: folder }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  start.stdout.on("data", (d: Buffer) => (output += d.toString("utf8")));
  start.stderr.on("data", (d: Buffer) => (output += d.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => start.once("exit", (code) => resolve(code)));
  const browser = await launchBrowser();
  try {
    const deadline = Date.now() + 300_000;
    while (!/Paddock is running/.test(output)) {
      if (start.exitCode !== null) assert.fail(`npm start exited early:\n${output}`);
      if (Date.now() > deadline) assert.fail(`npm start did not get ready:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const url = /Open\s+(http:\/\/127\.0\.0\.1:\d+\/)/.exec(output)?.[1];
    const password = /Password\s+(\S+)/.exec(output)?.[1];
    assert.equal(url, `http://127.0.0.1:${port}/`);
    assert.ok(password);
    assert.match(output, new RegExp(`Folder\\s+${folder}`));
    assert.match(output, /ssh -L/);

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
    try {
      await page.goto(url!);
      await page.fill("input[type=password]", password!);
      await page.keyboard.press("Enter");
      await page.waitForSelector(".monaco-workbench", { timeout: 60_000 });
      // The Paddock view, from the activity bar, with the button a newcomer is told to press.
      await page.locator(".activitybar [aria-label^='Paddock']").first().click({ timeout: 60_000 });
      // The welcome view's button (not the view's title action of the same name).
      const create = page.locator(".welcome-view-content").getByRole("button", { name: "Create Sandbox" });
      await create.waitFor({ timeout: 60_000 });
      await shot("1-paddock-view");
      await create.click();
      // The runtime quick pick, then the name: Enter takes the first runtime and a made-up name.
      await page.locator(".quick-input-widget").getByText("Process (bubblewrap)").waitFor({ timeout: 60_000 });
      await shot("2-create-runtime");
      await page.keyboard.press("Enter");
      await page.locator(".quick-input-widget input").waitFor();
      await page.keyboard.press("Enter");
      await page.locator(".monaco-list-row", { hasText: "my-project-" }).first().waitFor({ timeout: 60_000 });
      await shot("3-sandbox-created");
    } catch (err) {
      await shot("failed").catch(() => undefined);
      throw err;
    }
    const listed = spawnSync(process.execPath, [path.join(REPO, "dist", "paddock.js"), "ls", "--json", "--socket", path.join(run, "run", "agent.sock")], { encoding: "utf8" });
    assert.equal((JSON.parse(listed.stdout) as { sandboxes: unknown[] }).sandboxes.length, 1, "the sandbox made in the browser is the agent's");
  } finally {
    await browser.close();
    start.kill("SIGINT"); // what Ctrl-C sends to the script
  }
  const code = await exited;
  assert.match(output, /npm start: stopped/);
  // Interrupted, as a shell reports it; anything else would be a failure on the way out.
  assert.ok(code === 130 || code === 0, `exit code ${code}:\n${output.slice(-2000)}`);
  const left = spawnSync("pgrep", ["-f", run], { encoding: "utf8" }).stdout.trim();
  assert.equal(left, "", "no process of npm start is left");
  assert.deepEqual(mountsUnder(run), [], "no mount is left");
  assert.deepEqual(fs.readdirSync(path.join(run, "agent", "sandboxes")), [], "no sandbox is left");
  assert.equal(fs.readFileSync(path.join(folder, "hello.txt"), "utf8"), "hello\n");
});
