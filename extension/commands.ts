/**
 * Every command of the extension, in one place, with one error mapper: "the agent is not
 * running" with a button to start it, the agent's own message and hint, or a bug report.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { PaddockError } from "../agent/protocol/errors";
import type { AgentClient } from "../agent/protocol/client";
import type { ApproveResult, Conflict, HunkSelector, RuntimeKind } from "../agent/protocol/methods";
import { AgentNotRunning, type AgentConnection } from "./agent/agent-connection";
import { sandboxUri } from "./fs/sandbox-file-system";
import { selectorOf, type VsLineChange } from "./review/quick-diff-hunks";
import type { SandboxModel } from "./sandboxes/sandbox-model";
import { createOptions } from "./sandboxes/create-options";
import type { ChangeResource, SandboxScm } from "./scm/sandbox-scm";
import { readSettings } from "./settings";
import { openSandboxTerminal } from "./terminal/terminals";
import type { TreeNode } from "./views/sandbox-tree";
import { relativeTo } from "./uri";

export interface CommandContext {
  agent: AgentConnection;
  model: SandboxModel;
  scm: SandboxScm;
  log: vscode.LogOutputChannel;
}

/** What commands on a sandbox may be invoked with: a tree node, a sandbox id, or nothing (ask). */
type SandboxArg = TreeNode | string | undefined;
/** A changed file: from Source Control (a resource state) or the diff we opened (a plain object). */
type FileArg = Pick<ChangeResource, "sandboxId" | "path" | "kind"> & { resourceUri?: vscode.Uri; conflict?: Conflict };

export function registerCommands(ctx: CommandContext): vscode.Disposable[] {
  const { agent, model, scm } = ctx;
  const command = (id: string, handler: (...args: never[]) => unknown) => vscode.commands.registerCommand(id, (...args: unknown[]) => run(ctx, () => (handler as (...a: unknown[]) => unknown)(...args)));

  const approve = async (id: string, params: { paths?: string[]; hunks?: HunkSelector[]; force?: boolean | string[] }) => {
    const result = await agent.client().request("sandbox/approve", { id, ...params });
    await afterApprove(ctx, id, result);
  };

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
      const yes = vscode.l10n.t("Delete");
      const detail = count > 0 ? vscode.l10n.t("Its {0} unapproved change(s) will be lost.", count) : vscode.l10n.t("It has no unapproved changes.");
      if ((await vscode.window.showWarningMessage(vscode.l10n.t("Delete sandbox {0}?", sandbox?.name ?? id), { modal: true, detail }, yes)) !== yes) return;
      await agent.client().request("sandbox/delete", { id });
      await model.refreshAll();
    }),
    command("paddock.openTerminal", async (arg?: SandboxArg) => openSandboxTerminal(agent, model, await pickSandbox(ctx, arg, { running: true }))),

    command("paddock.reviewSandbox", async (arg?: SandboxArg | vscode.SourceControl) => {
      const id = (arg && typeof arg === "object" && "inputBox" in arg ? scm.sandboxOf(arg) : undefined) ?? (await pickSandbox(ctx, arg as SandboxArg));
      const sandbox = model.get(id)!;
      const resources = scm.resourcesOf(id);
      if (resources.length === 0) return void vscode.window.showInformationMessage(vscode.l10n.t("Sandbox {0} has no changes.", sandbox.name));
      // The multi-file diff editor, as Source Control's "View Changes".
      const items = resources.map((r) => [r.resourceUri, ...diffSides(model, r)] as const);
      await vscode.commands.executeCommand("vscode.changes", vscode.l10n.t("Sandbox {0}: all changes", sandbox.name), items);
    }),
    command("paddock.openDiff", async (file: FileArg) => {
      const sandbox = model.get(file.sandboxId);
      const [left, right] = diffSides(model, file);
      await vscode.commands.executeCommand("vscode.diff", left, right, vscode.l10n.t("{0} (Workspace ↔ Sandbox {1})", path.basename(file.path), sandbox?.name ?? file.sandboxId));
    }),
    command("paddock.openSandboxFile", async (file: FileArg) => vscode.window.showTextDocument(sandboxUri(file.sandboxId, workspaceFile(model, file)))),

    // Source Control passes every selected row as its own argument.
    command("paddock.approveFile", async (...files: FileArg[]) => {
      for (const [id, paths] of bySandbox(files)) await approve(id, { paths });
    }),
    command("paddock.rejectFile", async (...files: FileArg[]) => {
      for (const [id, paths] of bySandbox(files)) {
        if (!(await confirmReject(paths))) return;
        await agent.client().request("sandbox/reject", { id, paths });
        model.scheduleChanges(id);
      }
    }),
    command("paddock.approveAll", async (arg?: SandboxArg | vscode.SourceControlResourceGroup) => approve(await sandboxOfGroupOrNode(ctx, arg), {})),
    command("paddock.rejectAll", async (arg?: SandboxArg | vscode.SourceControlResourceGroup) => {
      const id = await sandboxOfGroupOrNode(ctx, arg);
      const count = model.changeCounts().get(id) ?? 0;
      const yes = vscode.l10n.t("Reject All");
      if (readSettings().confirmReject && (await vscode.window.showWarningMessage(vscode.l10n.t("Reject all {0} change(s) of sandbox {1}?", count, model.get(id)?.name ?? id), { modal: true, detail: vscode.l10n.t("The sandbox gets the workspace's version of every file back.") }, yes)) !== yes) return;
      await agent.client().request("sandbox/reject", { id });
      model.scheduleChanges(id);
    }),

    // The quick-diff peek on a workspace file: (uri, changes, index), as git's stageChange gets them.
    command("paddock.approveHunk", async (uri: vscode.Uri, changes: VsLineChange[], index: number) => {
      const target = await hunkTarget(ctx, uri, changes, index);
      if (target) await approve(target.id, { hunks: [target.selector] });
    }),
    command("paddock.rejectHunk", async (uri: vscode.Uri, changes: VsLineChange[], index: number) => {
      const target = await hunkTarget(ctx, uri, changes, index);
      if (!target) return;
      await agent.client().request("sandbox/reject", { id: target.id, hunks: [target.selector] });
      model.scheduleChanges(target.id);
    }),

    // Conflicts: take one side, or edit the merge in the sandbox's copy and approve that.
    command("paddock.takeSandbox", async (...files: FileArg[]) => {
      for (const [id, paths] of bySandbox(files)) await approve(id, { paths, force: paths });
    }),
    command("paddock.keepWorkspace", async (...files: FileArg[]) => {
      for (const [id, paths] of bySandbox(files)) {
        await agent.client().request("sandbox/reject", { id, paths });
        scm.resolveConflicts(id, paths);
        model.scheduleChanges(id);
      }
    }),
    command("paddock.mergeConflict", async (file: FileArg) => {
      const merged = file.conflict?.merged;
      if (merged !== undefined) {
        await agent.client().request("sandbox/writeFile", { id: file.sandboxId, path: file.path, content: Buffer.from(merged).toString("base64") });
      }
      const [left, right] = diffSides(model, { ...file, kind: "modified" });
      await vscode.commands.executeCommand("vscode.diff", left, right, vscode.l10n.t("Merge {0}: edit the sandbox side, then Take Sandbox's", path.basename(file.path)));
      if (merged === undefined) void vscode.window.showInformationMessage(vscode.l10n.t("No clean merge: edit the sandbox's side (right) until it is what you want, then use Take Sandbox's."));
    }),
  ];
}

/** The workspace file a changed path names. */
function workspaceFile(model: SandboxModel, file: Pick<FileArg, "sandboxId" | "path" | "resourceUri">): vscode.Uri {
  return file.resourceUri ?? vscode.Uri.file(path.join(model.get(file.sandboxId)?.workspace ?? "/", file.path));
}

/** The two sides of a changed file's diff: the workspace's (left) and the sandbox's (right). */
function diffSides(model: SandboxModel, file: Pick<FileArg, "sandboxId" | "path" | "kind" | "resourceUri">): [vscode.Uri, vscode.Uri] {
  const workspace = workspaceFile(model, file);
  const left = file.kind === "added" ? sandboxUri(file.sandboxId, workspace, true) : workspace;
  const right = sandboxUri(file.sandboxId, workspace, file.kind === "deleted");
  return [left, right];
}

function bySandbox(files: readonly FileArg[]): Map<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const file of files) grouped.set(file.sandboxId, [...(grouped.get(file.sandboxId) ?? []), file.path]);
  return grouped;
}

async function confirmReject(paths: string[]): Promise<boolean> {
  if (!readSettings().confirmReject) return true;
  const yes = vscode.l10n.t("Reject");
  const message = paths.length === 1 ? vscode.l10n.t("Reject the sandbox's changes to {0}?", paths[0]!) : vscode.l10n.t("Reject the sandbox's changes to {0} files?", paths.length);
  return (await vscode.window.showWarningMessage(message, { modal: true, detail: vscode.l10n.t("The sandbox gets the workspace's version back.") }, yes)) === yes;
}

async function afterApprove(ctx: CommandContext, id: string, result: ApproveResult): Promise<void> {
  ctx.model.scheduleChanges(id);
  ctx.scm.recordApprove(id, result);
  if (result.conflicts.length > 0) {
    const show = vscode.l10n.t("Show Conflicts");
    // Not awaited: the command is done; the notification stays until the user looks at it.
    void vscode.window
      .showWarningMessage(vscode.l10n.t("{0} file(s) changed in the workspace too and were not overwritten: {1}", result.conflicts.length, result.conflicts.map((c) => c.path).join(", ")), show)
      .then((pick) => (pick === show ? vscode.commands.executeCommand("workbench.view.scm") : undefined));
  }
  if (result.skipped.length > 0) {
    ctx.log.warn(`approve skipped: ${result.skipped.map((s) => `${s.path}: ${s.reason}`).join("; ")}`);
    void vscode.window.showWarningMessage(vscode.l10n.t("Not applied: {0}", result.skipped.map((s) => `${s.path} (${s.reason})`).join(", ")));
  }
}

async function hunkTarget(ctx: CommandContext, uri: vscode.Uri, changes: VsLineChange[], index: number): Promise<{ id: string; selector: HunkSelector } | undefined> {
  const change = changes?.[index];
  if (!uri || !change) return undefined;
  const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  // The agent compares files on disk: unsaved edits would make the hunk point elsewhere.
  if (document?.isDirty) await document.save();
  const candidates = ctx.model.all().flatMap((sandbox) => {
    const rel = relativeTo(sandbox.workspace, uri.fsPath);
    return rel && ctx.model.changesOf(sandbox.id)?.some((c) => c.path === rel) ? [{ id: sandbox.id, name: sandbox.name, selector: selectorOf(rel, change) }] : [];
  });
  // Two sandboxes changed this file: the peek shows one of them, and only the user knows which.
  const target = candidates.length <= 1 ? candidates[0] : await vscode.window.showQuickPick(candidates.map((c) => ({ label: c.name, ...c })), { placeHolder: vscode.l10n.t("This file changed in several sandboxes: which one's change?") });
  return target ? { id: target.id, selector: target.selector } : undefined;
}

async function sandboxOfGroupOrNode(ctx: CommandContext, arg: SandboxArg | vscode.SourceControlResourceGroup): Promise<string> {
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
  const pick = await vscode.window.showQuickPick(
    candidates.map((s) => ({ label: s.name, description: `${s.state} · ${s.runtime}`, detail: s.workspace, id: s.id })),
    { placeHolder: vscode.l10n.t("Which sandbox?") },
  );
  if (!pick) throw new vscode.CancellationError();
  return pick.id;
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

/** Runs a command; every failure becomes one clear message (the mapper of all commands). */
async function run(ctx: CommandContext, work: () => unknown): Promise<void> {
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
