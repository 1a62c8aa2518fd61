/** Terminals and tasks in sandboxes: the "New Sandbox Terminal" command, the terminal profile, and `paddock` tasks. */
import * as vscode from "vscode";
import type { AgentConnection } from "../agent/agent-connection";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import { sandboxItem } from "../sandboxes/describe";
import { SandboxPty } from "./sandbox-pty";

function terminalOptions(agent: AgentConnection, model: SandboxModel, id: string): vscode.ExtensionTerminalOptions {
  const sandbox = model.get(id);
  return {
    name: vscode.l10n.t("Sandbox {0}", sandbox?.name ?? id),
    // No argv: the sandbox's own login shell, which only the sandbox knows (a busybox image or a VM guest has no bash).
    pty: new SandboxPty(agent, { sandboxId: id, holdOnQuickFailure: true, ...(sandbox?.network === "none" ? { offlineSandboxName: sandbox.name } : {}) }),
    iconPath: new vscode.ThemeIcon("vm"),
  };
}

export function openSandboxTerminal(agent: AgentConnection, model: SandboxModel, id: string): vscode.Terminal {
  const terminal = vscode.window.createTerminal(terminalOptions(agent, model, id));
  terminal.show();
  return terminal;
}

/** A terminal that only says something and closes on a key: what the + menu opens when there is nothing to open. */
function messageTerminal(name: string, message: string, closeAtOnce = false): vscode.ExtensionTerminalOptions {
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<void>();
  return {
    name,
    pty: {
      onDidWrite: write.event,
      onDidClose: close.event,
      open: () => (closeAtOnce ? close.fire() : write.fire(`${message}\r\n\x1b[2m${vscode.l10n.t("Press any key to close this terminal.")}\x1b[0m\r\n`)),
      handleInput: () => close.fire(),
      close: () => undefined,
    },
  };
}

/** The "Paddock Sandbox" entry of the terminal's + menu. */
export function registerTerminalProfile(agent: AgentConnection, model: SandboxModel): vscode.Disposable {
  // VS Code does not reveal a contributed profile's terminal that took a question to make: shown here.
  const shown = vscode.window.onDidOpenTerminal((terminal) => {
    const options = terminal.creationOptions;
    if ("pty" in options && options.pty instanceof SandboxPty) terminal.show();
  });
  const provider = vscode.window.registerTerminalProfileProvider("paddock.sandboxShell", {
    async provideTerminalProfile() {
      const running = model.all().filter((s) => s.state === "running");
      // VS Code reports a provider that gives nothing as an error: a terminal says it instead, or closes at once when the user cancelled.
      if (running.length === 0) {
        return new vscode.TerminalProfile(messageTerminal(vscode.l10n.t("Paddock"), vscode.l10n.t("There is no running sandbox: create one from the Paddock view (or start a stopped one), then open a terminal again.")));
      }
      const pick = running.length === 1 ? sandboxItem(running[0]!) : await vscode.window.showQuickPick(running.map(sandboxItem), { placeHolder: vscode.l10n.t("A terminal in which sandbox?") });
      return new vscode.TerminalProfile(pick ? terminalOptions(agent, model, pick.id) : messageTerminal("", "", true));
    },
  });
  return vscode.Disposable.from(shown, provider);
}
