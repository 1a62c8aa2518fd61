/**
 * The VS Code side of Paddock. For now it only opens the "Paddock" output channel and names
 * the protocol it will speak; the sidebar, review and terminals come with the extension issue.
 */
import * as vscode from "vscode";
import { PROTOCOL_VERSION } from "../agent/protocol/methods";

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel("Paddock", { log: true });
  context.subscriptions.push(output);
  output.info(`Paddock extension active (agent protocol ${PROTOCOL_VERSION})`);
  context.subscriptions.push(vscode.commands.registerCommand("paddock.showAgentLog", () => output.show()));
}

export function deactivate(): void {}
