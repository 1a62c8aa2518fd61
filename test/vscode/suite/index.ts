/**
 * Runs inside VS Code's extension host (code-server's, here) with Paddock loaded from this
 * checkout, against a real agent it starts itself: create a sandbox through the command (its
 * quick picks answered as a user would), change files in it, follow the changes into the
 * model and Source Control, open a diff, approve one hunk, reject a file, approve a file,
 * and check the workspace on disk after each step.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { PaddockApi } from "../../../extension/extension";
import type { ChangeResource } from "../../../extension/scm/sandbox-scm";

type Step = { name: string; run: () => Promise<void> };

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const LINES = Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join("");

export async function run(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  assert.ok(folder, "a folder is open");
  const file = (rel: string) => path.join(folder, rel);
  fs.writeFileSync(file("hunks.txt"), LINES);
  fs.writeFileSync(file("reject-me.txt"), "workspace\n");
  fs.writeFileSync(file("approve-me.txt"), "workspace\n");

  const extension = vscode.extensions.getExtension<PaddockApi>("paddock.paddock");
  assert.ok(extension, "the extension is installed");
  const api = await extension.activate();
  await waitFor("the agent", () => api.agent.current.kind === "running");
  const client = () => api.agent.client();
  let id = "";
  const resource = (rel: string) => api.scm.resourcesOf(id).find((r: ChangeResource) => r.path === rel);

  const steps: Step[] = [
    {
      name: "Create Sandbox, answering its quick pick (runtime) and input box (name) as a user",
      run: async () => {
        let done = false;
        const creating = Promise.resolve(vscode.commands.executeCommand("paddock.createSandbox")).finally(() => (done = true));
        // Enter on whatever is asked (the first runtime, an empty name) until the command is done;
        // the first `system/check` of a machine takes seconds.
        for (const deadline = Date.now() + 60_000; !done && Date.now() < deadline; ) {
          await new Promise((r) => setTimeout(r, 500));
          await vscode.commands.executeCommand("workbench.action.acceptSelectedQuickOpenItem");
        }
        await creating;
        const created = await waitFor("the sandbox in the model", () => api.model.all().find((s) => s.workspace === folder));
        id = created.id;
        assert.equal(created.state, "running");
        assert.equal(created.runtime, "process");
      },
    },
    {
      name: "a command in the sandbox changes files; the changes reach the model and Source Control, not the disk",
      run: async () => {
        const edited = LINES.replace("line 2\n", "line two\n").replace("line 25\n", "line twenty-five\n");
        const result = await client().request("sandbox/exec", { id, argv: ["sh", "-c", `printf '%s' '${edited}' > hunks.txt; echo sandbox > reject-me.txt; echo sandbox > approve-me.txt; echo new > added.txt`] });
        assert.equal(result.exitCode, 0, result.stderr);
        await waitFor("four changed files in Source Control", () => api.scm.resourcesOf(id).length === 4);
        assert.deepEqual(api.scm.resourcesOf(id).map((r) => `${r.kind} ${r.path}`).sort(), ["added added.txt", "modified approve-me.txt", "modified hunks.txt", "modified reject-me.txt"]);
        assert.equal(fs.readFileSync(file("hunks.txt"), "utf8"), LINES, "nothing reached the workspace");
        assert.equal(fs.existsSync(file("added.txt")), false);
      },
    },
    {
      name: "Open Changes shows the workspace file beside the sandbox's, in VS Code's diff editor",
      run: async () => {
        await vscode.commands.executeCommand("paddock.openDiff", resource("hunks.txt"));
        const tab = await waitFor("a diff tab", () => {
          const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
          return input instanceof vscode.TabInputTextDiff ? input : undefined;
        });
        assert.equal(tab.original.fsPath, file("hunks.txt"));
        assert.equal(tab.modified.scheme, "paddock");
        const sandboxSide = await vscode.workspace.openTextDocument(tab.modified);
        assert.match(sandboxSide.getText(), /line two\n/);
      },
    },
    {
      name: "Approve Change on one hunk (as the quick-diff peek calls it) applies that hunk only",
      run: async () => {
        // The peek's line changes: original = the sandbox's file, modified = the workspace's.
        const changes = [
          { originalStartLineNumber: 2, originalEndLineNumber: 2, modifiedStartLineNumber: 2, modifiedEndLineNumber: 2 },
          { originalStartLineNumber: 25, originalEndLineNumber: 25, modifiedStartLineNumber: 25, modifiedEndLineNumber: 25 },
        ];
        await vscode.commands.executeCommand("paddock.approveHunk", vscode.Uri.file(file("hunks.txt")), changes, 1);
        assert.equal(fs.readFileSync(file("hunks.txt"), "utf8"), LINES.replace("line 25\n", "line twenty-five\n"));
        await waitFor("hunks.txt still changed (one hunk left)", async () => (await client().request("sandbox/diff", { id, paths: ["hunks.txt"] })).files[0]?.changes.length === 1);
      },
    },
    {
      name: "Reject on a file gives the sandbox the workspace's version; the workspace is untouched",
      run: async () => {
        await vscode.commands.executeCommand("paddock.rejectFile", resource("reject-me.txt"));
        assert.equal(fs.readFileSync(file("reject-me.txt"), "utf8"), "workspace\n");
        const inside = await client().request("sandbox/exec", { id, argv: ["cat", "reject-me.txt"] });
        assert.equal(inside.stdout, "workspace\n");
        await waitFor("reject-me.txt gone from Source Control", () => !resource("reject-me.txt"));
      },
    },
    {
      name: "Approve on a file writes the sandbox's version into the workspace",
      run: async () => {
        await vscode.commands.executeCommand("paddock.approveFile", resource("approve-me.txt"));
        assert.equal(fs.readFileSync(file("approve-me.txt"), "utf8"), "sandbox\n");
        await waitFor("approve-me.txt gone from Source Control", () => !resource("approve-me.txt"));
      },
    },
    {
      name: "deleting the sandbox drops what was not approved",
      run: async () => {
        await client().request("sandbox/delete", { id });
        await waitFor("the sandbox gone from the model", () => !api.model.get(id));
        assert.equal(fs.existsSync(file("added.txt")), false, "never approved, never in the workspace");
        assert.equal(fs.readFileSync(file("approve-me.txt"), "utf8"), "sandbox\n", "what was approved stays");
      },
    },
  ];

  const failures: string[] = [];
  for (const step of steps) {
    const started = Date.now();
    try {
      await step.run();
      console.log(`ok - ${step.name} (${Date.now() - started} ms)`);
    } catch (err) {
      console.log(`not ok - ${step.name}: ${(err as Error).stack ?? String(err)}`);
      failures.push(step.name);
      break; // later steps build on earlier ones
    }
  }
  if (failures.length > 0) throw new Error(`${failures.length} step(s) failed: ${failures.join("; ")}`);
}
