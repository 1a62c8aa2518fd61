/**
 * The workbench as a person uses it, for tests: a real agent on a socket (test/helpers), a
 * real code-server with Paddock loaded from this checkout, and Debian's Chromium driven by
 * playwright-core. Tests click and type; the helpers here name what a person sees (a view's
 * row, its hover action, a quick pick's entry, a dialog's button, a notification, the
 * terminal's text), and every step can leave a screenshot in test-artifacts/vscode/NAME.
 */
import { test } from "node:test";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import type { AgentClient } from "../../protocol/client";
import { startFixture, type Fixture } from "../helpers/sandbox-fixture";
import { launchBrowser, logIn, REPO, startCodeServer, type CodeServer } from "./harness";

export interface WorkbenchOptions {
  /** The folder's files (relative path → content). */
  files?: Record<string, string>;
  /** User settings beside the ones that point the extension at the test's agent. */
  settings?: Record<string, unknown>;
}

/**
 * The tests of a file that shares one workbench: each is a node:test test, and a failure marks
 * the workbench so that `closeWorkbench` keeps its screenshot, the agent's log and code-server's.
 */
export function workbenchSteps(): { step(name: string, body: () => Promise<void>): void; failed(): boolean } {
  let failed = false;
  return {
    step: (name, body) =>
      test(name, async () => {
        try {
          await body();
        } catch (err) {
          failed = true;
          throw err;
        }
      }),
    failed: () => failed,
  };
}

export class Workbench {
  private step = 0;

  private constructor(
    readonly page: Page,
    readonly fx: Fixture,
    readonly client: AgentClient,
    readonly folder: string,
    readonly artifacts: string,
    private readonly browser: Browser,
    private readonly server: CodeServer,
  ) {}

  /** Opens `name`'s folder in a fresh workbench whose Paddock uses a fresh agent of its own. */
  static async open(name: string, options: WorkbenchOptions = {}): Promise<Workbench> {
    const fx = await startFixture();
    const folder = path.join(fx.base, name);
    for (const [rel, content] of Object.entries(options.files ?? {})) {
      fs.mkdirSync(path.dirname(path.join(folder, rel)), { recursive: true });
      fs.writeFileSync(path.join(folder, rel), content);
    }
    fs.mkdirSync(folder, { recursive: true });
    const server = await startCodeServer(path.join(fx.base, "code-server"), {
      "paddock.agent.mode": "socket",
      "paddock.agent.socketPath": fx.socketPath,
      "paddock.agent.stateDir": fx.stateDir,
      // The DOM renderer: the terminal's text is then in the page, as a person reads it.
      "terminal.integrated.gpuAcceleration": "off",
      "workbench.tips.enabled": false,
      "git.enabled": false,
      ...options.settings,
    });
    const browser = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const artifacts = path.join(REPO, "test-artifacts", "vscode", name);
    fs.rmSync(artifacts, { recursive: true, force: true });
    fs.mkdirSync(artifacts, { recursive: true });
    const workbench = new Workbench(page, fx, await fx.client(), folder, artifacts, browser, server);
    await logIn(page, server);
    const payload = JSON.stringify([
      ["extensionDevelopmentPath", `vscode-remote://${server.authority}${REPO}`],
      ["skipWelcome", "true"],
    ]);
    await page.goto(`${server.url}?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(payload)}`);
    await page.waitForSelector(".monaco-workbench", { timeout: 60_000 });
    await workbench.activity("Paddock");
    // Paddock is connected when its welcome view (or its first sandbox) shows.
    await page.locator(".pane-body .welcome-view-content, .pane-body .monaco-list-row").first().waitFor({ timeout: 60_000 });
    return workbench;
  }

  file(rel: string): string {
    return path.join(this.folder, rel);
  }

  /** A workspace file's content on disk, or undefined when it is not there. */
  onDisk(rel: string): string | undefined {
    return fs.existsSync(this.file(rel)) ? fs.readFileSync(this.file(rel), "utf8") : undefined;
  }

  /** A file as a sandbox sees it, or undefined. */
  async inSandbox(id: string, rel: string): Promise<string | undefined> {
    const read = await this.client.request("sandbox/readFile", { id, path: rel }).catch(() => undefined);
    return read ? Buffer.from(read.content, "base64").toString("utf8") : undefined;
  }

  async shot(name: string): Promise<void> {
    await this.page.screenshot({ path: path.join(this.artifacts, `${String(++this.step).padStart(2, "0")}-${name}.png`) });
  }

  /** Shows an activity bar entry's view (force: its badge would take a plain click; a click on the shown one would hide it). */
  async activity(name: string): Promise<void> {
    const entry = this.page.locator(`.activitybar .action-item:has([aria-label^='${name}'])`).first();
    await entry.waitFor({ timeout: 60_000 });
    if (await entry.evaluate((e) => e.classList.contains("checked"))) return;
    await entry.locator(`[aria-label^='${name}']`).first().click({ force: true });
  }

  /** A row of a list or tree (the Paddock view: ".pane-body"; Source Control: ".scm-view"). */
  row(container: string, text: string | RegExp): Locator {
    return this.page.locator(`${container} .monaco-list-row`, { hasText: text }).first();
  }

  /** A row's inline action, shown on hover as a person sees it. */
  async inline(container: string, text: string | RegExp, action: string): Promise<void> {
    const target = this.row(container, text);
    await target.waitFor({ timeout: 30_000 });
    // A view that refreshes re-renders its rows, and the hover goes with them: hover again.
    for (let attempt = 1; ; attempt++) {
      try {
        await target.hover({ timeout: 5_000 });
        await target.locator(`.action-label[aria-label="${action}"]`).click({ timeout: 2_000 });
        return;
      } catch (err) {
        if (attempt === 10) throw err;
      }
    }
  }

  /** F1, the command's title, Enter: as a person runs a command. */
  async command(title: string): Promise<void> {
    await this.page.keyboard.press("F1");
    const input = this.page.locator(".quick-input-widget input");
    await input.waitFor();
    await input.fill(`>${title}`);
    // The palette may show a command without its category ("Terminal: ") when it is clear.
    const bare = title.replace(/^[^:]+: /, "");
    const label = this.page.locator(".label-name", { hasText: new RegExp(`^(${escape(title)}|${escape(bare)})$`) });
    await this.page.locator(".quick-input-widget .quick-input-list .monaco-list-row").filter({ has: label }).first().click({ timeout: 60_000 });
  }

  /** Clicks the quick pick's entry that shows `text`. */
  async quickPick(text: string | RegExp): Promise<void> {
    await this.page.locator(".quick-input-widget .quick-input-list .monaco-list-row").filter({ hasText: text }).first().click({ timeout: 60_000 });
  }

  /** The open quick pick, once its placeholder says `text`. */
  async quickPickAsking(text: string): Promise<void> {
    await this.page.locator(`.quick-input-widget input[placeholder*="${text.replace(/"/g, '\\"')}"]`).waitFor({ timeout: 30_000 });
  }

  /** Types into the open quick input (an input box) and presses Enter. */
  async answer(text: string): Promise<void> {
    const input = this.page.locator(".quick-input-widget input");
    await input.waitFor();
    await input.fill(text);
    await this.page.keyboard.press("Enter");
  }

  /**
   * The gutter action of the change at a line of a diff's sandbox side (in `scope`, a diff or a
   * file of the multi-file review): the toolbar level with that line. The diff re-renders after
   * each approve or reject, so the buttons are measured in one snapshot and the whole look is
   * tried again when the one chosen went away before the click.
   */
  async gutterAction(lineText: string, action: string, within?: Locator): Promise<void> {
    // By default the diff editor on the screen that shows the line (other editors may be open).
    const scope = within ?? this.page.locator(".monaco-diff-editor", { has: this.page.locator(".editor.modified .view-line", { hasText: wholeLine(lineText) }) }).filter({ visible: true }).first();
    const line = scope.locator(".editor.modified .view-line", { hasText: wholeLine(lineText) }).first();
    const buttons = scope.locator(`.gutter .action-label[aria-label^="${action}"]`);
    const deadline = Date.now() + 20_000;
    for (;;) {
      await line.hover();
      await buttons.first().waitFor({ timeout: 10_000 });
      const lineTop = await line.evaluate((el) => el.getBoundingClientRect().top);
      const tops = await buttons.evaluateAll((els) => els.map((el) => el.getBoundingClientRect().top));
      const distances = tops.map((top) => Math.abs(top - lineTop));
      const index = distances.indexOf(Math.min(...distances));
      if ((distances[index] ?? Infinity) <= 40) {
        try {
          await buttons.nth(index).click({ timeout: 2_000 });
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      } else if (Date.now() > deadline) {
        throw new Error(`no "${action}" button level with "${lineText}" (the line at ${lineTop} px, the buttons at ${tops.join(", ")} px)`);
      }
      await this.page.waitForTimeout(250);
    }
  }

  dialog(): Locator {
    return this.page.locator(".monaco-dialog-box");
  }

  async dialogButton(name: string): Promise<void> {
    await this.dialog().getByRole("button", { name, exact: true }).click();
  }

  notification(text: string | RegExp): Locator {
    return this.page.locator(".notification-toast", { hasText: text }).first();
  }

  /** A sandbox's terminal as the panel names it (one terminal: its title; several: the tabs list). */
  terminalTab(sandboxName: string): Locator {
    return this.page.locator(".terminal-tabs-entry, .single-terminal-tab", { hasText: `Sandbox ${sandboxName}` }).first();
  }

  /** The visible terminal's text, as its DOM renderer shows it. */
  async terminalText(): Promise<string> {
    const rows = this.page.locator(".terminal-wrapper.active .xterm-rows");
    return (await rows.count()) > 0 ? ((await rows.first().innerText()) ?? "") : "";
  }

  async typeInTerminal(text: string): Promise<void> {
    await this.page.locator(".terminal-wrapper.active .xterm").first().click();
    await this.page.keyboard.type(text);
  }

  /** Waits until `probe` holds (polled every 100 ms). */
  async until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
    for (const deadline = Date.now() + timeoutMs; ; ) {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      if (Date.now() > deadline) {
        await this.shot(`timeout-${what.replace(/\W+/g, "-").slice(0, 40)}`).catch(() => undefined);
        throw new Error(`timed out waiting for ${what}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Keeps the agent's log beside the screenshots (for a failed test), then stops everything. */
  async close(failed: boolean): Promise<void> {
    if (failed) {
      await this.shot("failed").catch(() => undefined);
      const agentLog = path.join(this.fx.stateDir, "logs", "agent.log");
      if (fs.existsSync(agentLog)) fs.copyFileSync(agentLog, path.join(this.artifacts, "agent.log"));
      fs.writeFileSync(path.join(this.artifacts, "code-server.log"), this.server.output());
    }
    await this.browser.close().catch(() => undefined);
    await this.server.stop();
    await this.fx.stop();
  }
}

/** A whole line of an editor, as Monaco renders it (spaces as no-break spaces). */
export function wholeLine(text: string): RegExp {
  return new RegExp(`^${escape(text).replace(/ /g, "[\\s\u00a0]")}$`);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
