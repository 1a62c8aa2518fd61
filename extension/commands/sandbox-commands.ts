/** Commands about the agent and sandboxes' lives: start and stop the agent, create, stop, start and delete sandboxes, open terminals. */
import * as path from "node:path";
import * as vscode from "vscode";
import { PaddockError } from "../../agent/protocol/errors";
import type { AgentClient } from "../../agent/protocol/client";
import type { RuntimeKind } from "../../agent/protocol/methods";
import { createOptions } from "../sandboxes/create-options";
import { readSettings } from "../settings";
import { openSandboxTerminal } from "../terminal/terminals";
import type { TreeNode } from "../views/sandbox-tree";
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

async function createSandbox(ctx: CommandContext, folder: string | undefined): Promise<void> {
  const client = ctx.agent.client();
  const workspace = folder ?? (await pickFolder());
  if (!workspace) return;
  const check = await client.request("system/check", {});
  const info = ctx.agent.current.kind === "running" ? ctx.agent.current.info : undefined;
  const settings = readSettings();
  // The setting's runtime is offered first.
  const runtimes = (["process", "container", "vm"] as RuntimeKind[]).sort((a, b) => Number(b === settings.defaultRuntime) - Number(a === settings.defaultRuntime));
  const items = runtimes.map((kind) => {
    const readiness = check.runtimes[kind];
    const supported = info?.capabilities.runtimes.includes(kind) ?? false;
    const unsupported = kind === "container" && info?.agent.rootless ? vscode.l10n.t("needs the agent as root (setting paddock.agent.mode: root)") : vscode.l10n.t("not supported by this agent yet");
    const why = !supported ? unsupported : !readiness.available ? (readiness.reason ?? vscode.l10n.t("unavailable here: {0} failed (see Paddock: Show Agent Log or paddock check)", readiness.missing.join(", "))) : undefined;
    const labels: Record<RuntimeKind, string> = { process: vscode.l10n.t("Process (bubblewrap)"), container: vscode.l10n.t("Container (OCI)"), vm: vscode.l10n.t("Micro-VM (QEMU)") };
    return { runtime: kind, label: `${why ? "$(circle-slash)" : "$(vm)"} ${labels[kind]}`, description: why ?? (readiness.using ? vscode.l10n.t("using {0}", readiness.using) : ""), usable: !why };
  });
  const pick = await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t("Runtime for the new sandbox of {0}", path.basename(workspace)) });
  if (!pick) return;
  if (!pick.usable) throw new PaddockError("E_RUNTIME_UNAVAILABLE", vscode.l10n.t("The {0} runtime cannot be used: {1}", pick.runtime, pick.description), vscode.l10n.t("Pick another runtime, or see what `paddock check` reports."));
  const image = pick.runtime === "container" ? await pickImage(client, settings.image) : undefined;
  if (image === null) return;
  const name = await vscode.window.showInputBox({ prompt: vscode.l10n.t("Name (optional)"), placeHolder: vscode.l10n.t("a name is made up if you leave this empty") });
  if (name === undefined) return;
  const { network, limits, networkNote } = createOptions(pick.runtime, settings);
  if (networkNote) {
    void vscode.window.showInformationMessage(vscode.l10n.t("Network {0} (setting paddock.sandbox.network) is not available for {1} sandboxes: this one has network none.", networkNote.wanted, networkNote.runtime));
  }
  const sandbox = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t("Creating a sandbox of {0}…", path.basename(workspace)), cancellable: true }, async (progress, token) => {
    // The first container may build the default image, a VM boots: the agent reports the steps.
    const listening = ctx.agent.onNotification(({ method, params }) => {
      if (method === "image/progress" || method === "sandbox/progress") progress.report({ message: (params as { step: string }).step });
    });
    try {
      const created = await client.request("sandbox/create", { workspace, runtime: pick.runtime, ...(image ? { image } : {}), network, ...(Object.keys(limits).length ? { limits } : {}), ...(name ? { name } : {}) });
      if (token.isCancellationRequested) {
        await client.request("sandbox/delete", { id: created.id });
        return undefined;
      }
      return created;
    } finally {
      listening.dispose();
    }
  });
  if (sandbox) ctx.model.upsert(sandbox);
}

const DEFAULT_IMAGE = "paddock/busybox:latest";

/**
 * The image of a new container sandbox: asked only when there is a choice (the setting's
 * image first); undefined is the default image, null a cancelled pick.
 */
async function pickImage(client: AgentClient, preferred: string): Promise<string | undefined | null> {
  const { images } = await client.request("image/list", {});
  const others = images.filter((i) => i.name !== DEFAULT_IMAGE);
  if (others.length === 0) return undefined;
  const items = [
    ...others.map((i) => ({ label: i.name, description: i.digest.slice(0, 19), detail: vscode.l10n.t("{0} layer(s), added {1}", i.layers, i.importedAt.slice(0, 10)), image: i.name as string | undefined })),
    { label: DEFAULT_IMAGE, description: vscode.l10n.t("default"), detail: vscode.l10n.t("Debian's busybox-static, built on this machine"), image: undefined },
  ].sort((a, b) => Number(b.label === preferred) - Number(a.label === preferred));
  const pick = await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t("Image for the container (paddock image pull or import adds more)") });
  return pick ? pick.image : null;
}

async function pickFolder(): Promise<string | undefined> {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === "file");
  if (folders.length === 0) throw new PaddockError("E_INVALID_WORKSPACE", vscode.l10n.t("Open a folder first: a sandbox is a copy-on-write view of a folder."), vscode.l10n.t("File > Open Folder…"));
  if (folders.length === 1) return folders[0]!.uri.fsPath;
  return (await vscode.window.showWorkspaceFolderPick({ placeHolder: vscode.l10n.t("Create a sandbox of which folder?") }))?.uri.fsPath;
}

