/**
 * The VS Code side of Paddock: the agent connection, the Sandboxes view, Source Control per
 * sandbox with diffs on `paddock:` files, terminals and tasks in sandboxes. Everything talks
 * to the agent through agent/agent-connection.ts; commands live in commands.ts.
 */
import * as vscode from "vscode";
import { AgentConnection } from "./agent/agent-connection";
import { registerCommands } from "./commands";
import { SandboxFileSystem } from "./fs/sandbox-file-system";
import { SandboxModel } from "./sandboxes/sandbox-model";
import { SandboxScm } from "./scm/sandbox-scm";
import { createStatusBar } from "./status-bar";
import { registerTaskProvider, registerTerminalProfile } from "./terminal/terminals";
import { SCHEME } from "./uri";
import { SandboxTree } from "./views/sandbox-tree";

/** What activate returns: for tests in the extension host (and other extensions). */
export interface PaddockApi {
  agent: AgentConnection;
  model: SandboxModel;
  scm: SandboxScm;
}

export function activate(context: vscode.ExtensionContext): PaddockApi {
  const log = vscode.window.createOutputChannel("Paddock", { log: true });
  const agent = new AgentConnection(context.extensionPath, log);
  const model = new SandboxModel(agent);
  const scm = new SandboxScm(model);
  const tree = new SandboxTree(model);
  context.subscriptions.push(
    log,
    agent,
    model,
    scm,
    tree,
    vscode.window.createTreeView("paddock.sandboxes", { treeDataProvider: tree, showCollapseAll: false }),
    vscode.workspace.registerFileSystemProvider(SCHEME, new SandboxFileSystem(agent, model), { isCaseSensitive: true }),
    createStatusBar(agent, model),
    registerTerminalProfile(agent, model),
    registerTaskProvider(agent, model),
    ...registerCommands({ agent, model, scm, log }),
    agent.onDidChangeState((state) => void vscode.commands.executeCommand("setContext", "paddock.agentState", state.kind)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("paddock.agent")) void agent.restart();
    }),
  );
  // Started lazily, with the view or a command (see activationEvents), so VS Code's start is not delayed.
  void agent.start();
  return { agent, model, scm };
}

export function deactivate(): void {}
