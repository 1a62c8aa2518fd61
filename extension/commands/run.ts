/**
 * What every command shares: its context, one error mapper ("the agent is not running" with
 * a button to start it, the agent's own message and hint, or a bug report), and the question
 * of which sandbox a command is about.
 */
import * as vscode from "vscode";
import { PaddockError } from "../../protocol/errors";
import { AgentNotRunning, type AgentConnection } from "../agent/agent-connection";
import type { ConflictMerges } from "../review/conflict-merges";
import type { ReviewTabs } from "../review/review-tabs";
import type { Readiness } from "../sandboxes/readiness";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import type { ChangeResource, SandboxScm } from "../scm/sandbox-scm";
import type { TreeNode } from "../views/sandbox-tree";
import { sandboxItem } from "../sandboxes/describe";

export interface CommandContext {
  agent: AgentConnection;
  model: SandboxModel;
  scm: SandboxScm;
  reviews: ReviewTabs;
  readiness: Readiness;
  merges: ConflictMerges;
  log: vscode.LogOutputChannel;
}

/** What commands on a sandbox may be invoked with: a tree node, a sandbox id, or nothing (ask). */
export type SandboxArg = TreeNode | string | undefined;

/**
 * Asks before something that loses work, the same way everywhere. VS Code makes the first
 * button of a modal its default (Enter), and only a button that closes the dialog can be
 * Cancel: so the first is a safe one that shows what would be lost (`look`), never the
 * destructive action. True only when the user chose the action.
 */
export async function confirmDestructive(message: string, detail: string, action: string, look: { title: string; run: () => unknown }): Promise<boolean> {
  const safe: vscode.MessageItem = { title: look.title };
  const destroy: vscode.MessageItem = { title: action };
  const pick = await vscode.window.showWarningMessage(message, { modal: true, detail }, safe, destroy);
  if (pick === safe) await look.run();
  return pick === destroy;
}

/** Registers a command whose failures all go through the one mapper. */
export function commandRegistrar(ctx: CommandContext): (id: string, handler: (...args: never[]) => unknown) => vscode.Disposable {
  return (id, handler) => vscode.commands.registerCommand(id, (...args: unknown[]) => run(ctx, () => (handler as (...a: unknown[]) => unknown)(...args)));
}

export async function sandboxOfGroupOrNode(ctx: CommandContext, arg: SandboxArg | vscode.SourceControlResourceGroup): Promise<string> {
  if (arg && typeof arg === "object" && "resourceStates" in arg) {
    const first = arg.resourceStates[0] as ChangeResource | undefined;
    if (first) return first.sandboxId;
  }
  return pickSandbox(ctx, arg as SandboxArg);
}

/** The sandbox a command is about: the one it was invoked on, the only one there is, or the user's pick. */
export async function pickSandbox(ctx: CommandContext, arg: SandboxArg, options: { running?: boolean } = {}): Promise<string> {
  if (typeof arg === "string") return arg;
  if (arg?.kind === "sandbox") return arg.sandbox.id;
  const candidates = ctx.model.all().filter((s) => !options.running || s.state === "running");
  if (candidates.length === 1) return candidates[0]!.id;
  if (candidates.length === 0) {
    throw new PaddockError("E_NOT_FOUND", vscode.l10n.t("There is no {0}sandbox.", options.running ? vscode.l10n.t("running ") : ""), vscode.l10n.t("Create one from the Paddock view."));
  }
  const pick = await vscode.window.showQuickPick(candidates.map(sandboxItem), { placeHolder: vscode.l10n.t("Which sandbox?") });
  if (!pick) throw new vscode.CancellationError();
  return pick.id;
}

/** Runs a command; every failure becomes one clear message (the mapper of all commands). */
export async function run(ctx: CommandContext, work: () => unknown): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (err instanceof vscode.CancellationError) return;
    if (err instanceof AgentNotRunning) {
      const start = vscode.l10n.t("Start Agent");
      const log = vscode.l10n.t("Show Log");
      void vscode.window.showErrorMessage(err.message, start, log).then((pick) => {
        if (pick === start) void ctx.agent.start();
        if (pick === log) ctx.log.show();
      });
      return;
    }
    if (err instanceof PaddockError) {
      ctx.log.warn(`${err.code}: ${err.message}`);
      void vscode.window.showErrorMessage(err.hint ? `${err.message} (${err.hint})` : err.message);
      return;
    }
    ctx.log.error(`command failed: ${(err as Error).stack ?? String(err)}`);
    void vscode.window.showErrorMessage(vscode.l10n.t("Paddock: {0}", (err as Error).message ?? String(err)));
  }
}
