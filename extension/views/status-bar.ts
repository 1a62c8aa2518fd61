/** The status bar item: the agent's state and how many sandboxes run, one click from the Paddock view. */
import * as vscode from "vscode";
import type { AgentConnection, AgentState } from "../agent/agent-connection";
import type { SandboxModel } from "../sandboxes/sandbox-model";

export function createStatusBar(agent: AgentConnection, model: SandboxModel): vscode.Disposable {
  const item = vscode.window.createStatusBarItem("paddock.status", vscode.StatusBarAlignment.Left, 10);
  item.name = vscode.l10n.t("Paddock");
  const render = (state: AgentState = agent.current) => {
    const runningSandboxes = model.all().filter((s) => s.state === "running");
    const running = runningSandboxes.length;
    if (state.kind === "running") {
      const label = running === 0 ? vscode.l10n.t("Paddock") : running === 1 ? vscode.l10n.t("Paddock: {0}", runningSandboxes[0]!.name) : vscode.l10n.t("Paddock: {0} running", running);
      item.text = `$(vm) ${label}`;
      item.tooltip = vscode.l10n.t("Paddock agent {0} ({1}, {2})", state.info.agentVersion, state.via, state.info.agent.rootless ? "rootless" : "root");
      item.command = "workbench.view.extension.paddock";
      item.backgroundColor = undefined;
    } else if (state.kind === "starting") {
      item.text = `$(loading~spin) ${vscode.l10n.t("Paddock: starting")}`;
      item.tooltip = vscode.l10n.t("Starting the Paddock agent");
      item.command = "paddock.showAgentLog";
    } else {
      item.text = `$(vm-outline) ${vscode.l10n.t("Paddock: agent {0}", state.kind)}`;
      item.tooltip = state.kind === "failed" ? state.message : vscode.l10n.t("The Paddock agent is stopped: click to start it");
      item.command = "paddock.startAgent";
      item.backgroundColor = state.kind === "failed" ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
    }
    item.show();
  };
  render();
  const subscriptions = [agent.onDidChangeState((s) => render(s)), model.onDidChangeSandboxes(() => render())];
  return new vscode.Disposable(() => {
    for (const s of subscriptions) s.dispose();
    item.dispose();
  });
}
