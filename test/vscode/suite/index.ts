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

/** Asks the harness for a screenshot of the workbench as it is now (kept as a test artifact). */
async function screenshot(name: string): Promise<void> {
  console.log(`screenshot: ${name}`);
  await new Promise((r) => setTimeout(r, 1500));
}

/**
 * Runs Create Sandbox as a user who presses Enter on whatever is asked (the first runtime, an
 * empty name) until the command is done; the first `system/check` of a machine takes seconds.
 */
async function createSandboxAcceptingDefaults(): Promise<void> {
  let done = false;
  const creating = Promise.resolve(vscode.commands.executeCommand("paddock.createSandbox")).finally(() => (done = true));
  for (const deadline = Date.now() + 60_000; !done && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 500));
    await vscode.commands.executeCommand("workbench.action.acceptSelectedQuickOpenItem");
  }
  await creating;
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
        await createSandboxAcceptingDefaults();
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
        assert.equal(tab.modified.path, tab.original.path, "the sandbox's side carries the file's own path");
        const sandboxSide = await vscode.workspace.openTextDocument(tab.modified);
        assert.match(sandboxSide.getText(), /line two\n/);
        await vscode.commands.executeCommand("workbench.view.scm");
        await screenshot("review");
      },
    },
    {
      name: "Review All Changes opens every change in the multi-file diff editor",
      run: async () => {
        await vscode.commands.executeCommand("paddock.reviewSandbox", id);
        // The multi-diff editor's tab input is not public API: its title and the absence of a single diff tell it.
        const tab = await waitFor("the multi-file diff tab", () => vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label.includes(": all changes")));
        assert.equal(tab.input instanceof vscode.TabInputTextDiff, false);
        await screenshot("review-all");
        await vscode.window.tabGroups.close(tab);
      },
    },
    {
      name: "Approve Change on one hunk (as the quick-diff peek of the sandbox's file calls it) applies that hunk only",
      run: async () => {
        // The peek's line changes: original = the workspace's file, modified = the sandbox's.
        const changes = [
          { originalStartLineNumber: 2, originalEndLineNumber: 2, modifiedStartLineNumber: 2, modifiedEndLineNumber: 2 },
          { originalStartLineNumber: 25, originalEndLineNumber: 25, modifiedStartLineNumber: 25, modifiedEndLineNumber: 25 },
        ];
        const sandboxFile = vscode.Uri.file(file("hunks.txt")).with({ scheme: "paddock", query: `sandbox=${id}` });
        await vscode.commands.executeCommand("paddock.approveHunk", sandboxFile, changes, 1);
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
      name: "Approve on two selected files (Source Control passes each as an argument) writes both",
      run: async () => {
        await vscode.commands.executeCommand("paddock.approveFile", resource("approve-me.txt"), resource("added.txt"));
        assert.equal(fs.readFileSync(file("approve-me.txt"), "utf8"), "sandbox\n");
        assert.equal(fs.readFileSync(file("added.txt"), "utf8"), "new\n");
        await waitFor("both gone from Source Control", () => !resource("approve-me.txt") && !resource("added.txt"));
      },
    },
    {
      name: "a conflict is shown, nothing overwritten, and Take Sandbox's Version resolves it",
      run: async () => {
        await client().request("sandbox/exec", { id, argv: ["sh", "-c", "echo sandbox again > approve-me.txt"] });
        await waitFor("approve-me.txt changed again", () => resource("approve-me.txt"));
        fs.writeFileSync(file("approve-me.txt"), "the user's own edit\n");
        await vscode.commands.executeCommand("paddock.approveFile", resource("approve-me.txt"));
        assert.equal(fs.readFileSync(file("approve-me.txt"), "utf8"), "the user's own edit\n", "a conflict never overwrites");
        const conflict = await waitFor("the conflict in Source Control", () => api.scm.conflictsOf(id).find((c) => c.path === "approve-me.txt"));
        assert.equal(conflict.conflict?.reason, "both-modified");
        await vscode.commands.executeCommand("paddock.takeSandbox", conflict);
        assert.equal(fs.readFileSync(file("approve-me.txt"), "utf8"), "sandbox again\n");
        await waitFor("the conflict resolved", () => api.scm.conflictsOf(id).length === 0);
      },
    },
    {
      name: "New Sandbox Terminal: a shell in the sandbox; Ctrl-C, resizing with the panel, its writes and exit code",
      run: async () => {
        const read = async (rel: string) => Buffer.from((await client().request("sandbox/readFile", { id, path: rel })).content, "base64").toString();
        const exists = async (rel: string) => (await client().request("sandbox/readFile", { id, path: rel }).catch(() => undefined)) !== undefined;
        await vscode.commands.executeCommand("paddock.openTerminal", id);
        const terminal = await waitFor("the terminal", () => vscode.window.terminals.find((t) => t.name.startsWith("Sandbox ")));
        terminal.sendText("stty size > size-before.txt");
        await waitFor("the first size", () => exists("size-before.txt"));
        // Ctrl-C reaches the program in the sandbox through the agent's PTY.
        terminal.sendText("sleep 60; echo not-interrupted > sleep.txt");
        await new Promise((r) => setTimeout(r, 1000));
        terminal.sendText("\x03", false);
        terminal.sendText("echo $? > interrupted.txt");
        await waitFor("the interrupted sleep", () => exists("interrupted.txt"));
        assert.equal(await read("interrupted.txt"), "130\n", "sleep ended by SIGINT");
        assert.equal(await exists("sleep.txt"), false);
        // A bigger panel is a bigger terminal inside the sandbox too.
        await vscode.commands.executeCommand("workbench.action.toggleMaximizedPanel");
        await new Promise((r) => setTimeout(r, 1500));
        terminal.sendText("stty size > size-after.txt; echo from-terminal > term.txt; exit 3");
        await waitFor("the terminal to exit", () => terminal.exitStatus, 30_000);
        assert.equal(terminal.exitStatus?.code, 3);
        assert.equal(await read("term.txt"), "from-terminal\n");
        const [before, after] = [await read("size-before.txt"), await read("size-after.txt")];
        assert.match(before, /^\d+ \d+\n$/);
        assert.notEqual(after, before, `the size followed the panel (${before.trim()} → ${after.trim()})`);
        assert.equal(fs.existsSync(file("term.txt")), false, "the terminal wrote into the sandbox only");
      },
    },
    {
      name: "a paddock task runs in the sandbox",
      run: async () => {
        // Defined in the folder's .vscode/tasks.json, as a user would.
        const task = await waitFor("the task from tasks.json", async () => (await vscode.tasks.fetchTasks()).find((t) => t.name === "write in the sandbox"));
        const ended = new Promise<void>((resolve) => vscode.tasks.onDidEndTask((e) => e.execution.task.name === task.name && resolve()));
        await vscode.tasks.executeTask(task);
        await Promise.race([ended, new Promise((r) => setTimeout(r, 20_000))]);
        await waitFor("task.txt in the sandbox", async () => (await client().request("sandbox/readFile", { id, path: "task.txt" }).catch(() => undefined))?.content);
      },
    },
    {
      name: "the agent killed: the extension starts it again and lists the sandboxes again",
      run: async () => {
        const pid = api.agent.agentPid;
        assert.ok(pid, "this window started its own agent");
        process.kill(pid, "SIGKILL");
        await waitFor("the agent to be noticed gone", () => api.agent.current.kind !== "running");
        await waitFor("the agent running again", () => api.agent.current.kind === "running" && api.agent.agentPid !== pid, 30_000);
        await waitFor("the sandbox listed again", () => api.model.get(id));
      },
    },
    {
      name: "Create Sandbox with the Container runtime (the setting puts it first): the image's OS inside, its changes in Source Control",
      run: async () => {
        const config = vscode.workspace.getConfiguration("paddock");
        await config.update("sandbox.defaultRuntime", "container", vscode.ConfigurationTarget.Global);
        try {
          await createSandboxAcceptingDefaults();
        } finally {
          await config.update("sandbox.defaultRuntime", undefined, vscode.ConfigurationTarget.Global);
        }
        const container = await waitFor("the container sandbox in the model", () => api.model.all().find((s) => s.workspace === folder && s.runtime === "container"));
        assert.equal(container.image?.name, "paddock/busybox:latest");
        const os = await client().request("sandbox/exec", { id: container.id, argv: ["sh", "-c", "cat /etc/os-release; echo from-container > container.txt"] });
        assert.match(os.stdout, /^ID=paddock-busybox$/m, os.stderr);
        await waitFor("the container's change in Source Control", () => api.scm.resourcesOf(container.id).some((r: ChangeResource) => r.path === "container.txt"));
        assert.equal(fs.existsSync(file("container.txt")), false);
        await client().request("sandbox/delete", { id: container.id });
      },
    },
    {
      name: "deleting the sandbox drops what was not approved",
      run: async () => {
        await client().request("sandbox/delete", { id });
        await waitFor("the sandbox gone from the model", () => !api.model.get(id));
        assert.equal(fs.readFileSync(file("hunks.txt"), "utf8").includes("line two"), false, "a hunk never approved never reaches the workspace");
        assert.equal(fs.readFileSync(file("approve-me.txt"), "utf8"), "sandbox again\n", "what was approved stays");
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
