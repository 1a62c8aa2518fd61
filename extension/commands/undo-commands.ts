/**
 * Undo of approve and reject: each one's notification offers Undo, and Paddock: Undo Approve or
 * Reject lists what a sandbox can still undo (newest first). The agent puts the workspace and
 * the sandbox back, or refuses, changing nothing, when either changed since.
 */
import * as vscode from "vscode";
import type { UndoOffer, Undoable } from "../../protocol/methods";
import { ageLabel } from "../sandboxes/describe";
import { commandRegistrar, pickSandbox, type CommandContext, type SandboxArg } from "./run";

/** What the notification's Undo passes to the command. */
interface UndoArg {
  sandboxId: string;
  undo: string;
}

const isUndoArg = (arg: unknown): arg is UndoArg => typeof arg === "object" && arg !== null && "undo" in arg && "sandboxId" in arg;

export function registerUndoCommands(ctx: CommandContext): vscode.Disposable[] {
  const command = commandRegistrar(ctx);
  return [
    command("paddock.undo", async (arg?: SandboxArg | UndoArg) => {
      const id = isUndoArg(arg) ? arg.sandboxId : await pickSandbox(ctx, arg);
      const undo = isUndoArg(arg) ? arg.undo : await pickUndoable(ctx, id);
      if (undo === undefined) return;
      const result = await ctx.agent.client().request("sandbox/undo", { id, undo });
      ctx.model.scheduleChanges(id);
      const what = result.kind === "approve" ? vscode.l10n.t("Undid the approve of {0}: the workspace has its own version again.", names(result.restored)) : vscode.l10n.t("Undid the reject of {0}: the sandbox has its changes again.", names(result.restored));
      void vscode.window.showInformationMessage(what);
      if (result.skipped.length > 0) void vscode.window.showWarningMessage(vscode.l10n.t("Not put back: {0}", result.skipped.map((s) => `${s.path} (${s.reason})`).join(", ")));
    }),
  ];
}

async function pickUndoable(ctx: CommandContext, id: string): Promise<string | undefined> {
  const { undo } = await ctx.agent.client().request("sandbox/undoList", { id });
  if (undo.length === 0) {
    void vscode.window.showInformationMessage(vscode.l10n.t("Nothing to undo in sandbox {0}.", ctx.model.get(id)?.name ?? id));
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(undo.map(undoItem), { placeHolder: vscode.l10n.t("Undo which approve or reject? (newest first)") });
  return pick?.undo;
}

function undoItem(u: Undoable): vscode.QuickPickItem & { undo: string } {
  const label = u.kind === "approve" ? vscode.l10n.t("Approved {0}", count(u.count)) : vscode.l10n.t("Rejected {0}", count(u.count));
  return { label, description: ageLabel(u.at), detail: u.paths.slice(0, 8).join(", ") + (u.count > 8 ? ", …" : ""), undo: u.undo };
}

/**
 * After an approve or reject: says what was done, with Undo (or why it cannot be undone).
 * Not awaited: the command is done; the notification waits for the user.
 */
export function offerUndo(id: string, kind: "approve" | "reject", paths: readonly string[], offer: UndoOffer): void {
  if (paths.length === 0) return;
  const done = kind === "approve" ? vscode.l10n.t("Approved {0}.", names(paths)) : vscode.l10n.t("Rejected {0}.", names(paths));
  if (offer.undo === undefined) {
    if (offer.undoUnavailable !== undefined) void vscode.window.showInformationMessage(vscode.l10n.t("{0} This cannot be undone: {1}", done, offer.undoUnavailable));
    return;
  }
  const undo = vscode.l10n.t("Undo");
  const arg: UndoArg = { sandboxId: id, undo: offer.undo };
  void vscode.window.showInformationMessage(done, undo).then((pick) => (pick === undo ? vscode.commands.executeCommand("paddock.undo", arg) : undefined));
}

function count(n: number): string {
  return n === 1 ? vscode.l10n.t("1 file") : vscode.l10n.t("{0} files", n);
}

/** "a.txt", "a.txt and b.txt", "3 files (a.txt, b.txt, …)". */
function names(paths: readonly string[]): string {
  if (paths.length === 1) return paths[0]!;
  if (paths.length === 2) return vscode.l10n.t("{0} and {1}", paths[0]!, paths[1]!);
  return vscode.l10n.t("{0} ({1}, {2}, …)", count(paths.length), paths[0]!, paths[1]!);
}
