/**
 * `npm start` as a newcomer uses it, through the browser only: it prints where to open
 * Paddock, the page asks for the password it printed, VS Code opens the folder; from the
 * Paddock view a sandbox is created, a terminal in it runs a command that edits, creates and
 * deletes files, the files show in the view and in Source Control, a diff opens, one file is
 * approved, one hunk of another (from the diff editor's gutter), a third rejected, the sandbox
 * deleted; the workspace on disk is checked after each step. Ctrl-C then stops everything and
 * leaves no process, mount or sandbox behind. Every step leaves a screenshot in
 * test-artifacts/start; a failing one, the agent's log too.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tempDir } from "../helpers/agent-process";
import { mountsUnder } from "../helpers/sandbox-fixture";
import { freePort, launchBrowser, REPO } from "../vscode/harness";

const ARTIFACTS = path.join(REPO, "test-artifacts", "start");


test("npm start, then as a user in the browser: create, terminal, Source Control, diff, approve a file and a hunk, reject, delete; Ctrl-C leaves nothing behind", { timeout: 600_000 }, async () => {
  const base = tempDir("paddock-start-");
  fs.chmodSync(base, 0o755);
  const run = path.join(base, "run");
  const folder = path.join(base, "my-project");
  fs.mkdirSync(folder);
  const LINES = Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join("");
  const files = { "approve.txt": "workspace\n", "reject.txt": "workspace\n", "hunks.txt": LINES, "old.txt": "old\n" };
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(folder, name), content);
  const onDisk = (name: string) => (fs.existsSync(path.join(folder, name)) ? fs.readFileSync(path.join(folder, name), "utf8") : undefined);
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
    let step = 0;
    const shot = (name: string) => page.screenshot({ path: path.join(ARTIFACTS, `${String(++step).padStart(2, "0")}-${name}.png`) });
    const row = (container: string, text: string) => page.locator(`${container} .monaco-list-row`, { hasText: text }).first();
    /** An inline action of a list row: shown on hover, as a user sees it. */
    const inline = async (container: string, text: string, action: string) => {
      const target = row(container, text);
      await target.hover();
      await target.locator(`.action-label[aria-label="${action}"]`).click();
    };
    /** An activity bar entry (its badge would take a plain click). */
    const activity = async (name: string) => {
      const entry = page.locator(`.activitybar .action-item:has([aria-label^='${name}'])`).first();
      await entry.waitFor({ timeout: 60_000 });
      // A click on the view already shown would hide it.
      if (!(await entry.evaluate((e) => e.classList.contains("checked")))) await entry.locator(`[aria-label^='${name}']`).first().click({ force: true });
    };
    const confirm = (button: string) => page.locator(".monaco-dialog-box").getByRole("button", { name: button, exact: true }).click();
    const until = async (what: string, probe: () => boolean) => {
      for (const deadline = Date.now() + 30_000; !probe(); ) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await page.goto(url!);
      await page.fill("input[type=password]", password!);
      await page.keyboard.press("Enter");
      await page.waitForSelector(".monaco-workbench", { timeout: 60_000 });
      // The Paddock view, from the activity bar, with the button a newcomer is told to press.
      await activity("Paddock");
      // The welcome view's button (not the view's title action of the same name).
      const create = page.locator(".welcome-view-content").getByRole("button", { name: "Create Sandbox" });
      await create.waitFor({ timeout: 60_000 });
      await shot("paddock-view");
      await create.click();
      // The runtime quick pick, the network, the name: Enter takes the first runtime, no network and a made-up name.
      await page.locator(".quick-input-widget").getByText("Process (bubblewrap)").waitFor({ timeout: 60_000 });
      await shot("create-runtime");
      await page.keyboard.press("Enter");
      // The network (offline first), then the name.
      await page.locator(".quick-input-widget input[placeholder^='Network for the sandbox']").waitFor({ timeout: 60_000 });
      await page.keyboard.press("Enter");
      await page.locator(".quick-input-widget input[placeholder^='a name is made up']").waitFor();
      await page.keyboard.press("Enter");
      const sandboxRow = row(".pane-body", "my-project-");
      await sandboxRow.waitFor({ timeout: 60_000 });
      await shot("sandbox-created");

      // A terminal in the sandbox runs a command that edits, creates and deletes files.
      await inline(".pane-body", "my-project-", "New Sandbox Terminal");
      await page.locator(".terminal-wrapper .xterm").first().waitFor({ timeout: 30_000 });
      await page.locator(".terminal-wrapper .xterm").first().click();
      await page.keyboard.type("sed -i 's/^line 2$/line two/; s/^line 25$/line twenty-five/' hunks.txt; echo sandbox > approve.txt; echo sandbox > reject.txt; echo new > new.txt; rm old.txt\n");
      await row(".pane-body", "my-project-").locator(".label-description", { hasText: "5 changes" }).waitFor({ timeout: 30_000 });
      await shot("terminal-ran-command");
      assert.deepEqual(Object.fromEntries(Object.keys(files).map((n) => [n, onDisk(n)])), files, "nothing reached the workspace");

      // Source Control lists them; a click opens the diff.
      await activity("Source Control");
      for (const name of ["approve.txt", "hunks.txt", "new.txt", "old.txt", "reject.txt"]) await row(".scm-view", name).waitFor({ timeout: 30_000 });
      await shot("source-control");
      await row(".scm-view", "approve.txt").click();
      await page.locator(".tab", { hasText: "approve.txt (Workspace ↔ Sandbox" }).waitFor({ timeout: 30_000 });
      await shot("diff");

      // Approve one file (inline action).
      await inline(".scm-view", "approve.txt", "Approve");
      await until("approve.txt approved", () => onDisk("approve.txt") === "sandbox\n");
      await shot("approved-file");

      // One hunk of another: its diff, the change's own Approve in the diff's gutter.
      // Source Control re-renders its rows as approve.txt leaves: a click landing then is lost, so again.
      const hunksTab = page.locator(".tab", { hasText: "hunks.txt (Workspace ↔ Sandbox" });
      for (let attempt = 1; (await hunksTab.count()) === 0; attempt++) {
        if (attempt > 3) assert.fail("the diff of hunks.txt did not open");
        await row(".scm-view", "hunks.txt").click();
        await hunksTab.waitFor({ timeout: 10_000 }).catch(() => undefined);
      }
      const changedLine = page.locator(".monaco-diff-editor .editor.modified .view-line", { hasText: "line two" }).first();
      await changedLine.waitFor({ timeout: 30_000 });
      await changedLine.hover();
      const approveChange = page.locator(".monaco-diff-editor .gutter .action-label[aria-label^='Approve This Change']").first();
      await approveChange.waitFor({ timeout: 30_000 });
      await shot("hunk-in-diff");
      await approveChange.click();
      await until("the first hunk approved", () => onDisk("hunks.txt") === LINES.replace("line 2\n", "line two\n"));
      await shot("approved-hunk");

      // Reject a third (inline action, confirmed in the dialog).
      await activity("Source Control");
      // The list settles first (hunks.txt, new, old, reject): a row moving under the pointer
      // would take the click. The question names the file it is about.
      for (const deadline = Date.now() + 30_000; (await page.locator(".scm-view .monaco-list-row[aria-level='2']").count()) !== 4; ) {
        if (Date.now() > deadline) assert.fail("Source Control did not settle on four changed files");
        await new Promise((r) => setTimeout(r, 100));
      }
      await inline(".scm-view", "reject.txt", "Reject");
      await page.locator(".monaco-dialog-box", { hasText: "reject.txt" }).waitFor({ timeout: 10_000 });
      await confirm("Reject");
      await row(".scm-view", "reject.txt").waitFor({ state: "detached", timeout: 30_000 });
      assert.equal(onDisk("reject.txt"), "workspace\n", "reject never touches the workspace");
      await shot("rejected-file");

      // Delete the sandbox from the Paddock view: what was not approved never arrives.
      await activity("Paddock");
      await inline(".pane-body", "my-project-", "Delete Sandbox");
      await confirm("Delete");
      await create.waitFor({ timeout: 30_000 });
      await shot("sandbox-deleted");
      assert.deepEqual(
        { approve: onDisk("approve.txt"), reject: onDisk("reject.txt"), hunks: onDisk("hunks.txt"), added: onDisk("new.txt"), deleted: onDisk("old.txt") },
        { approve: "sandbox\n", reject: "workspace\n", hunks: LINES.replace("line 2\n", "line two\n"), added: undefined, deleted: "old\n" },
      );
    } catch (err) {
      await shot("failed").catch(() => undefined);
      const agentLog = path.join(run, "agent", "logs", "agent.log");
      if (fs.existsSync(agentLog)) fs.copyFileSync(agentLog, path.join(ARTIFACTS, "agent.log"));
      throw err;
    }
    // One more, made with the CLI on the same agent: Ctrl-C must take it too.
    const made = spawnSync(process.execPath, [path.join(REPO, "dist", "paddock.js"), "create", folder, "--socket", path.join(run, "run", "agent.sock")], { encoding: "utf8" });
    assert.equal(made.status, 0, made.stderr);
  } finally {
    await browser.close();
    start.kill("SIGINT"); // what Ctrl-C sends to the script
  }
  const code = await exited;
  assert.match(output, /npm start: stopped/);
  // Interrupted, as a shell reports it; anything else would be a failure on the way out.
  assert.ok(code === 130 || code === 0, `exit code ${code}:\n${output.slice(-2000)}`);
  const left = spawnSync("sh", ["-c", `pgrep -af "${run}" | grep -v pgrep || true`], { encoding: "utf8" }).stdout.trim();
  assert.equal(left, "", "no process of npm start is left");
  assert.deepEqual(mountsUnder(run), [], "no mount is left");
  assert.deepEqual(fs.readdirSync(path.join(run, "agent", "sandboxes")), [], "no sandbox is left");
  assert.deepEqual([onDisk("approve.txt"), onDisk("reject.txt")], ["sandbox\n", "workspace\n"], "stopping changed nothing in the workspace");
});
