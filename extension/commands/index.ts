/** Every command of the extension: the sandboxes' lives, the review and its undo, each registered through the one error mapper (run.ts). */
import type * as vscode from "vscode";
import { registerReviewCommands } from "./review-commands";
import type { CommandContext } from "./run";
import { registerSandboxCommands } from "./sandbox-commands";
import { registerUndoCommands } from "./undo-commands";

export type { CommandContext } from "./run";

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  return [...registerSandboxCommands(ctx), ...registerReviewCommands(ctx), ...registerUndoCommands(ctx)];
}
