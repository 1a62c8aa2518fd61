/**
 * The VS Code side of Paddock: the agent connection, the Sandboxes view, Source Control per
 * sandbox with diffs on `paddock:` files, terminals and tasks in sandboxes. Everything talks
 * to the agent through agent/agent-connection.ts; commands live in commands.ts.
 */
import * as vscode from "vscode";
import { AgentConnection } from "./agent/agent-connection";
import { registerCommands } from "./commands/index";
import { diffSides } from "./review/diff-sides";
import { ConflictMerges } from "./review/conflict-merges";
import { ReviewTabs } from "./review/review-tabs";
import { SandboxFileSystem } from "./fs/sandbox-file-system";
import { Readiness } from "./sandboxes/readiness";
import { SandboxModel } from "./sandboxes/sandbox-model";
import { SandboxScm } from "./scm/sandbox-scm";
import { createStatusBar } from "./views/status-bar";
import { registerTaskProvider } from "./terminal/tasks";
import { registerTerminalProfile } from "./terminal/terminals";
import { SCHEME } from "./common/uri";
import { SandboxTree } from "./views/sandbox-tree";

/** What activate returns: for tests in the extension host (and other extensions). */
export interface PaddockApi {
  agent: AgentConnection;
  model: SandboxModel;
  scm: SandboxScm;
  /** The extension's own activation time: evaluating its bundle and running activate() (not VS Code's work between). */
  activationMs: number;
}

export function activate(context: vscode.ExtensionContext): PaddockApi {
  const activateStart = performance.now();
  const log = vscode.window.createOutputChannel("Paddock", { log: true });
  const agent = new AgentConnection(context.extensionPath, log);
  const model = new SandboxModel(agent);
  const scm = new SandboxScm(model);
  const tree = new SandboxTree(model);
  const readiness = new Readiness(agent);
  // A completed merge is the workspace's now: the sandbox takes it (its own copy goes, as on reject).
  const merges = new ConflictMerges(model, async (id, rel) => {
    await agent.client().request("sandbox/reject", { id, paths: [rel] });
    scm.resolveConflicts(id, [rel]);
    model.scheduleChanges(id);
  });
  const reviews = new ReviewTabs(model, scm, (resource) => diffSides(model, resource));
  context.subscriptions.push(
    log,
    agent,
    model,
    scm,
    tree,
    reviews,
    readiness,
    merges,
    vscode.window.createTreeView("paddock.sandboxes", { treeDataProvider: tree, showCollapseAll: false }),
    vscode.workspace.registerFileSystemProvider(SCHEME, new SandboxFileSystem(agent, model), { isCaseSensitive: true }),
    createStatusBar(agent, model),
    registerTerminalProfile(agent, model),
    registerTaskProvider(agent, model),
    ...registerCommands({ agent, model, scm, reviews, readiness, merges, log }),
    agent.onDidChangeState((state) => void vscode.commands.executeCommand("setContext", "paddock.agentState", state.kind)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("paddock.agent")) void agent.restart();
    }),
  );
  void vscode.commands.executeCommand("setContext", "paddock.agentState", "starting");
  // Not awaited: the agent starts in the background, VS Code's start is not delayed.
  void agent.start();
  // The bundle's evaluation (measured by its banner and footer, see scripts/build.mjs) and activate() itself.
  const loadMs = (globalThis as { __paddockLoadMs?: number }).__paddockLoadMs ?? 0;
  return { agent, model, scm, activationMs: loadMs + performance.now() - activateStart };
}

export function deactivate(): void {}
