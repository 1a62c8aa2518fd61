/** Commands about the agent and sandboxes' lives: start and stop the agent, create, stop, start and delete sandboxes, open terminals. */
import * as vscode from "vscode";
import { openSandboxTerminal } from "../terminal/terminals";
import type { TreeNode } from "../views/sandbox-tree";
import { createSandbox } from "./create-sandbox";
import { commandRegistrar, confirmDestructive, pickSandbox, type CommandContext, type SandboxArg } from "./run";

export function registerSandboxCommands(ctx: CommandContext): vscode.Disposable[] {
  const { agent, model } = ctx;
  const command = commandRegistrar(ctx);
  return [
    command("paddock.startAgent", () => agent.start()),
    command("paddock.restartAgent", () => agent.restart()),
    command("paddock.stopAgent", () => agent.stop()),
    command("paddock.showAgentLog", () => ctx.log.show()),
    command("paddock.refresh", () => model.refreshAll()),

    command("paddock.createSandbox", (node?: TreeNode) => createSandbox(ctx, node?.kind === "folder" && node.path ? node.path : undefined)),
    command("paddock.stopSandbox", async (arg?: SandboxArg) => model.upsert(await agent.client().request("sandbox/stop", { id: await pickSandbox(ctx, arg) }))),
    command("paddock.startSandbox", async (arg?: SandboxArg) => model.upsert(await agent.client().request("sandbox/start", { id: await pickSandbox(ctx, arg) }))),
    command("paddock.deleteSandbox", async (arg?: SandboxArg) => {
      const id = await pickSandbox(ctx, arg);
      const sandbox = model.get(id);
      const count = model.changeCounts().get(id) ?? 0;
      // Nothing is lost when there is nothing to review: no question then.
      const review = { title: vscode.l10n.t("Review Changes"), run: () => vscode.commands.executeCommand("paddock.reviewSandbox", id) };
      if (count > 0 && !(await confirmDestructive(vscode.l10n.t("Delete sandbox {0}?", sandbox?.name ?? id), vscode.l10n.t("Its {0} unapproved change(s) will be lost.", count), vscode.l10n.t("Delete"), review))) return;
      await agent.client().request("sandbox/delete", { id });
      await model.refreshAll();
    }),
    command("paddock.openTerminal", async (arg?: SandboxArg) => openSandboxTerminal(agent, model, await pickSandbox(ctx, arg, { running: true }))),
  ];
}
