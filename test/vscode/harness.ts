/**
 * A real VS Code for tests: code-server (installed once by scripts/code-server.sh) serving
 * the workbench, Debian's Chromium driven by playwright-core, and the extension loaded from
 * this checkout. Extension tests run in code-server's Node extension host, started as VS
 * Code's own browser integration tests start them (the `payload` URL parameter) and report
 * back through `codeAutomationExit`.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

export const REPO = path.resolve(__dirname, "..", "..");
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

export function installCodeServer(): string {
  return execFileSync("bash", [path.join(REPO, "scripts", "code-server.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.once("error", reject);
  });
}

export interface CodeServer {
  url: string;
  /** The login password (the server listens on loopback, but other local users must not get in). */
  password: string;
  authority: string;
  process: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts code-server on a free loopback port with its own user data, extensions dir and settings. */
export async function startCodeServer(dataDir: string, settings: Record<string, unknown>): Promise<CodeServer> {
  const entry = installCodeServer();
  const userData = path.join(dataDir, "user-data");
  fs.mkdirSync(path.join(userData, "User"), { recursive: true });
  fs.writeFileSync(path.join(userData, "User", "settings.json"), JSON.stringify({ "workbench.startupEditor": "none", "security.workspace.trust.enabled": false, "telemetry.telemetryLevel": "off", ...settings }, null, 2));
  const port = await freePort();
  const password = randomBytes(18).toString("base64url");
  const child = spawn(
    process.execPath,
    [entry, "--auth", "password", "--bind-addr", `127.0.0.1:${port}`, "--user-data-dir", userData, "--extensions-dir", path.join(dataDir, "extensions"), "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", "--disable-getting-started-override"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PASSWORD: password } },
  );
  let output = "";
  const collect = (d: Buffer) => (output = (output + d.toString("utf8")).slice(-256 * 1024));
  child.stdout!.on("data", collect);
  child.stderr!.on("data", collect);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 60_000;
  while (!/HTTP server listening on/.test(output)) {
    if (child.exitCode !== null) throw new Error(`code-server exited: ${output}`);
    if (Date.now() > deadline) throw new Error(`code-server did not start: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    password,
    authority: `127.0.0.1:${port}`,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** code-server's login page, as a person fills it in; the session cookie then opens everything. */
export async function logIn(page: Page, server: Pick<CodeServer, "url" | "password">): Promise<void> {
  await page.goto(`${server.url}login`);
  await page.fill("input[type=password]", server.password);
  await Promise.all([page.waitForURL((url) => !url.pathname.endsWith("/login")), page.keyboard.press("Enter")]);
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

export interface ExtensionTestRun {
  code: number;
  /** What the page and the extension host printed. */
  log: string;
  screenshot?: string;
}

/**
 * Opens `folder` with this checkout as the extension under development and runs the tests in
 * `testsBundle` (a CommonJS file exporting `run()`) in the Node extension host; resolves
 * with the exit code VS Code reports.
 */
export async function runExtensionTests(server: CodeServer, options: { folder: string; testsBundle: string; artifacts: string; timeoutMs: number }): Promise<ExtensionTestRun> {
  const browser = await launchBrowser();
  const lines: string[] = [];
  try {
    const page: Page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on("console", (message) => {
      lines.push(`[page ${message.type()}] ${message.text()}`);
      // The suite asks for a screenshot by logging "screenshot: NAME" (and waits a moment).
      const wanted = /screenshot: ([\w-]+)$/.exec(message.text());
      if (wanted) {
        fs.mkdirSync(options.artifacts, { recursive: true });
        void page.screenshot({ path: path.join(options.artifacts, `${wanted[1]}.png`) }).catch(() => undefined);
      }
    });
    page.on("pageerror", (error) => lines.push(`[page error] ${error.message}`));
    const result = new Promise<number>((resolve) => {
      void page.exposeFunction("codeAutomationExit", (code: number) => resolve(code));
      void page.exposeFunction("codeAutomationLog", (type: string, args: unknown[]) => lines.push(`[${type}] ${args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ")}`));
    });
    const remote = (p: string) => `vscode-remote://${server.authority}${p}`;
    const payload = JSON.stringify([
      ["extensionDevelopmentPath", remote(REPO)],
      ["extensionTestsPath", remote(options.testsBundle)],
      ["skipWelcome", "true"],
    ]);
    await logIn(page, server);
    await page.goto(`${server.url}?folder=${encodeURIComponent(options.folder)}&payload=${encodeURIComponent(payload)}`);
    const timeout = new Promise<number>((resolve) => setTimeout(() => resolve(-1), options.timeoutMs).unref());
    const code = await Promise.race([result, timeout]);
    let screenshot: string | undefined;
    if (code !== 0) {
      fs.mkdirSync(options.artifacts, { recursive: true });
      screenshot = path.join(options.artifacts, "extension-tests-failed.png");
      await page.screenshot({ path: screenshot }).catch(() => (screenshot = undefined));
    }
    return { code, log: lines.join("\n"), ...(screenshot ? { screenshot } : {}) };
  } finally {
    await browser.close();
  }
}
