/** Terminals and tasks in sandboxes: the "New Sandbox Terminal" command, the terminal profile, and `paddock` tasks. */
import * as fs from "node:fs";
import * as vscode from "vscode";
import type { AgentConnection } from "../agent/agent-connection";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import { SandboxPty } from "./sandbox-pty";

/** The login shell a terminal runs (the process runtime sees the host's programs). */
function shell(): string[] {
  return fs.existsSync("/bin/bash") ? ["/bin/bash", "-l"] : ["/bin/sh", "-l"];
}

function terminalOptions(agent: AgentConnection, model: SandboxModel, id: string): vscode.ExtensionTerminalOptions {
  const sandbox = model.get(id);
  return {
    name: vscode.l10n.t("Sandbox {0}", sandbox?.name ?? id),
    pty: new SandboxPty(agent, { sandboxId: id, argv: shell() }),
    iconPath: new vscode.ThemeIcon("vm"),
  };
}

export function openSandboxTerminal(agent: AgentConnection, model: SandboxModel, id: string): vscode.Terminal {
  const terminal = vscode.window.createTerminal(terminalOptions(agent, model, id));
  terminal.show();
  return terminal;
}

/** The "Paddock Sandbox" entry of the terminal's + menu. */
export function registerTerminalProfile(agent: AgentConnection, model: SandboxModel): vscode.Disposable {
  return vscode.window.registerTerminalProfileProvider("paddock.sandboxShell", {
    async provideTerminalProfile() {
      const running = model.all().filter((s) => s.state === "running");
      if (running.length === 0) {
        void vscode.window.showErrorMessage(vscode.l10n.t("There is no running sandbox: create one from the Paddock view."));
        return undefined;
      }
      const pick = running.length === 1 ? running[0] : await vscode.window.showQuickPick(running.map((s) => ({ label: s.name, description: s.workspace, ...s })), { placeHolder: vscode.l10n.t("A terminal in which sandbox?") });
      return pick ? new vscode.TerminalProfile(terminalOptions(agent, model, pick.id)) : undefined;
    },
  });
}

interface PaddockTaskDefinition extends vscode.TaskDefinition {
  command: string;
  /** A sandbox id or name; the folder's only running sandbox when left out. */
  sandbox?: string;
}

/** Tasks of type "paddock" run their command in a sandbox (a CustomExecution through the agent's PTY). */
export function registerTaskProvider(agent: AgentConnection, model: SandboxModel): vscode.Disposable {
  return vscode.tasks.registerTaskProvider("paddock", {
    provideTasks: () => [],
    resolveTask(task) {
      const definition = task.definition as PaddockTaskDefinition;
      if (typeof definition.command !== "string") return undefined;
      const execution = new vscode.CustomExecution(async () => {
        const folder = task.scope && typeof task.scope === "object" ? task.scope.uri.fsPath : undefined;
        const candidates = model.all().filter((s) => s.state === "running" && (definition.sandbox ? s.id === definition.sandbox || s.name === definition.sandbox : !folder || s.workspace === folder));
        const sandbox = candidates[0];
        if (!sandbox) throw new Error(vscode.l10n.t("No running sandbox for task {0}", task.name));
        return new SandboxPty(agent, { sandboxId: sandbox.id, argv: ["/bin/sh", "-c", definition.command] });
      });
      return new vscode.Task(definition, task.scope ?? vscode.TaskScope.Workspace, task.name, "paddock", execution);
    },
  });
}
