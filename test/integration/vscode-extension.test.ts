/**
 * The extension in a real VS Code: code-server's Node extension host runs test/vscode/suite
 * with Paddock loaded from this checkout and its own agent (see test/vscode/harness.ts).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { build } from "esbuild";
import { runCli, tempDir } from "../helpers/agent-process";
import { REPO, runExtensionTests, startCodeServer } from "../vscode/harness";

const ARTIFACTS = path.join(REPO, "test-artifacts", "vscode-extension");

test("in VS Code: create a sandbox, see its changes, open a diff, approve a hunk, reject and approve files", { timeout: 600_000 }, async () => {
  const base = tempDir("paddock-vscode-");
  fs.chmodSync(base, 0o755);
  const folder = path.join(base, "workspace");
  fs.mkdirSync(path.join(folder, ".vscode"), { recursive: true });
  fs.writeFileSync(path.join(folder, ".vscode", "tasks.json"), JSON.stringify({ version: "2.0.0", tasks: [{ label: "write in the sandbox", type: "paddock", command: "echo from-task > task.txt" }] }));
  const stateDir = path.join(base, "state");
  const suite = path.join(base, "suite.js");
  await build({ entryPoints: [path.join(REPO, "test", "vscode", "suite", "index.ts")], bundle: true, platform: "node", format: "cjs", target: "node20", outfile: suite, external: ["vscode"], logLevel: "warning" });
  const server = await startCodeServer(path.join(base, "code-server"), { "paddock.agent.stateDir": stateDir, "paddock.review.confirmReject": false });
  try {
    const run = await runExtensionTests(server, { folder, testsBundle: suite, artifacts: ARTIFACTS, timeoutMs: 240_000 });
    // The extension host's console comes twice (the page's console and VS Code's automation log): the latter counts.
    const steps = run.log.split("\n").filter((l) => /^\[info\] (not )?ok - /.test(l));
    if (run.code !== 0) {
      fs.mkdirSync(ARTIFACTS, { recursive: true });
      fs.writeFileSync(path.join(ARTIFACTS, "page.log"), run.log);
      fs.writeFileSync(path.join(ARTIFACTS, "code-server.log"), server.output());
      const agentLog = path.join(stateDir, "logs", "agent.log");
      if (fs.existsSync(agentLog)) fs.copyFileSync(agentLog, path.join(ARTIFACTS, "agent.log"));
    }
    assert.equal(run.code, 0, `extension tests failed (exit ${run.code}); artifacts in ${path.relative(REPO, ARTIFACTS)}\n${steps.join("\n") || run.log.slice(-4000)}`);
    assert.equal(steps.filter((l) => !l.includes("not ok")).length, 13, steps.join("\n"));
  } finally {
    await server.stop();
    // Whatever a failed run left: its sandboxes go with their mounts. The extension's own agent
    // may hold the state dir for a moment after code-server stops.
    let listed = await runCli(["ls", "--json", "--state-dir", stateDir], { env: { PADDOCK_SOCKET: "" } });
    for (let i = 0; listed.code !== 0 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 500));
      listed = await runCli(["ls", "--json", "--state-dir", stateDir], { env: { PADDOCK_SOCKET: "" } });
    }
    assert.equal(listed.code, 0, `cannot list what the run left: ${listed.stderr}`);
    for (const s of (JSON.parse(listed.stdout) as { sandboxes: { id: string }[] }).sandboxes) await runCli(["rm", s.id, "--state-dir", stateDir], { env: { PADDOCK_SOCKET: "" } });
  }
});
