/**
 * A command in a sandbox without network fails to resolve a host ("Could not resolve host",
 * "Temporary failure in name resolution", npm's ENOTFOUND or EAI_AGAIN): the person sees the
 * error, not why. This notices it in a terminal's output and says so, once per sandbox.
 */
import * as vscode from "vscode";

export { saysNoResolution } from "./no-resolution";

const told = new Set<string>();

/** Says once per sandbox that it has no network, with a way to get a sandbox that has one. */
export function tellOffline(sandboxId: string, sandboxName: string): void {
  if (told.has(sandboxId)) return;
  told.add(sandboxId);
  const create = vscode.l10n.t("Create a Sandbox with Network");
  void vscode.window
    .showWarningMessage(vscode.l10n.t("Sandbox {0} has no network, so its programs cannot resolve host names. A sandbox's network is chosen when it is created.", sandboxName), create)
    .then((pick) => (pick === create ? vscode.commands.executeCommand("paddock.createSandbox") : undefined));
}
