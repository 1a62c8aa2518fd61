/**
 * Review: diffs and the multi-file review, approve and reject per file, per change (from the
 * diff editor's gutter, the cursor with a key, or the quick-diff peek on a sandbox's file) and
 * for a whole sandbox, and conflicts. In every diff the workspace's version is on the left and
 * the sandbox's, read-only, on the right: it changes only through Approve and Reject, or in the
 * sandbox's own file (Edit in Sandbox), never by a stray click on a revert arrow.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { PaddockError } from "../../protocol/errors";
import type { ApproveResult, Conflict, HunkSelector } from "../../protocol/methods";
import { sandboxUri } from "../fs/sandbox-file-system";
import { diffSides, diffTitle, workspaceFile } from "../review/diff-sides";
import { changeAtLine, selectorOfChange, selectorOfMapping, selectorOfPeekChange, type VsLineChange, type VsRangeMapping } from "../review/hunk-selectors";
import type { ChangeResource } from "../scm/sandbox-scm";
import { readSettings } from "../common/settings";
import { parseSandboxQuery, relativeTo, SCHEME } from "../common/uri";
import { offerUndo } from "./undo-commands";
import { commandRegistrar, confirmDestructive, pickSandbox, sandboxOfGroupOrNode, type CommandContext, type SandboxArg } from "./run";

/** A changed file: from Source Control (a resource state) or the diff we opened (a plain object). */
export type FileArg = Pick<ChangeResource, "sandboxId" | "path" | "kind"> & { resourceUri?: vscode.Uri; conflict?: Conflict };

/** What the diff editor's gutter passes to a change's actions. */
interface GutterHunk {
  mapping: VsRangeMapping;
  originalUri: vscode.Uri;
  modifiedUri: vscode.Uri;
}

export function registerReviewCommands(ctx: CommandContext): vscode.Disposable[] {
  const { agent, model, scm } = ctx;
  const command = commandRegistrar(ctx);

  const approve = async (id: string, params: { paths?: string[]; hunks?: HunkSelector[]; force?: boolean | string[] }) => {
    const result = await agent.client().request("sandbox/approve", { id, ...params });
    await afterApprove(ctx, id, result);
    offerUndo(id, "approve", result.applied, result);
  };
  const reject = async (id: string, params: { paths?: string[]; hunks?: HunkSelector[] }) => {
    const result = await agent.client().request("sandbox/reject", { id, ...params });
    model.scheduleChanges(id);
    offerUndo(id, "reject", result.rejected, result);
  };

  return [
    command("paddock.reviewSandbox", async (arg?: SandboxArg | vscode.SourceControl) => {
      const id = (arg && typeof arg === "object" && "inputBox" in arg ? scm.sandboxOf(arg) : undefined) ?? (await pickSandbox(ctx, arg as SandboxArg));
      const sandbox = model.get(id)!;
      const resources = scm.resourcesOf(id);
      if (resources.length === 0) return void vscode.window.showInformationMessage(vscode.l10n.t("Sandbox {0} has no changes.", sandbox.name));
      // The multi-file diff editor, as Source Control's "View Changes", kept up to date.
      await ctx.reviews.open(id, vscode.l10n.t("Sandbox {0}: all changes", sandbox.name));
    }),
    command("paddock.openDiff", async (file: FileArg) => {
      const [left, right] = diffSides(model, file);
      await vscode.commands.executeCommand("vscode.diff", left, right, diffTitle(model, file));
    }),
    // The sandbox's own copy, editable: what the diff's right side shows, to change by hand.
    command("paddock.openSandboxFile", async (arg: FileArg | vscode.Uri) => {
      const file = await fileOf(ctx, arg);
      if (file) await vscode.window.showTextDocument(sandboxUri(file.sandboxId, workspaceFile(model, file)));
    }),

    // Source Control passes every selected row as its own argument; an editor's title, its URI.
    command("paddock.approveFile", async (...args: unknown[]) => {
      for (const [id, paths] of bySandbox(await filesOf(ctx, args))) await approve(id, { paths });
    }),
    command("paddock.rejectFile", async (...args: unknown[]) => {
      for (const [id, paths] of bySandbox(await filesOf(ctx, args))) {
        if (!(await confirmReject(ctx, id, paths))) return;
        await reject(id, { paths });
      }
    }),
    command("paddock.approveAll", async (arg?: SandboxArg | vscode.SourceControlResourceGroup) => approve(await sandboxOfGroupOrNode(ctx, arg), {})),
    command("paddock.rejectAll", async (arg?: SandboxArg | vscode.SourceControlResourceGroup) => {
      const id = await sandboxOfGroupOrNode(ctx, arg);
      const count = model.changeCounts().get(id) ?? 0;
      if (count === 0) return;
      const review = { title: vscode.l10n.t("Review Changes"), run: () => vscode.commands.executeCommand("paddock.reviewSandbox", id) };
      if (readSettings().confirmReject && !(await confirmDestructive(vscode.l10n.t("Reject all {0} change(s) of sandbox {1}?", count, model.get(id)?.name ?? id), vscode.l10n.t("The sandbox gets the workspace's version of every file back."), vscode.l10n.t("Reject All"), review))) return;
      await reject(id, {});
    }),

    // One change of the diff editor's gutter.
    command("paddock.approveDiffHunk", async (hunk: GutterHunk) => {
      const target = await hunkOfGutter(ctx, hunk);
      if (target) await approve(target.id, { hunks: [target.selector] });
    }),
    command("paddock.rejectDiffHunk", async (hunk: GutterHunk) => {
      const target = await hunkOfGutter(ctx, hunk);
      if (target) await reject(target.id, { hunks: [target.selector] });
    }),
    // The change at the cursor, in a diff or a sandbox's file (the keyboard's way).
    command("paddock.approveChangeAtCursor", async () => {
      const target = await hunkAtCursor(ctx);
      if (target) await approve(target.id, { hunks: [target.selector] });
    }),
    command("paddock.rejectChangeAtCursor", async () => {
      const target = await hunkAtCursor(ctx);
      if (target) await reject(target.id, { hunks: [target.selector] });
    }),
    // The quick-diff peek on a sandbox's file: (uri, changes, index), as git's stageChange gets them.
    command("paddock.approveHunk", async (uri: vscode.Uri, changes: VsLineChange[], index: number) => {
      const target = await hunkOfPeek(ctx, uri, changes, index);
      if (target) await approve(target.id, { hunks: [target.selector] });
    }),
    command("paddock.rejectHunk", async (uri: vscode.Uri, changes: VsLineChange[], index: number) => {
      const target = await hunkOfPeek(ctx, uri, changes, index);
      if (target) await reject(target.id, { hunks: [target.selector] });
    }),

    // Conflicts: take one side, or edit the merge in the sandbox's copy and approve that.
    command("paddock.takeSandbox", async (...files: FileArg[]) => {
      for (const [id, paths] of bySandbox(files)) await approve(id, { paths, force: paths });
    }),
    command("paddock.keepWorkspace", async (...files: FileArg[]) => {
      for (const [id, paths] of bySandbox(files)) {
        await reject(id, { paths });
        scm.resolveConflicts(id, paths);
      }
    }),
    // A real conflict: VS Code's three-way merge editor; its result reaches the workspace when completed.
    command("paddock.mergeConflict", async (file: FileArg) => {
      const conflict = file.conflict ?? scm.conflictsOf(file.sandboxId).find((c) => c.path === file.path)?.conflict;
      if (!conflict) return;
      if (conflict.workspace === undefined || conflict.sandbox === undefined || conflict.workspace === null || conflict.sandbox === null) {
        throw new PaddockError("E_UNSUPPORTED_CHANGE", vscode.l10n.t("{0} is not text on both sides ({1}): it cannot be merged line by line.", file.path, conflict.reason), vscode.l10n.t("Take the sandbox's version or keep the workspace's."));
      }
      await ctx.merges.open(file.sandboxId, conflict);
    }),
    command("paddock.completeMerge", () => ctx.merges.complete()),
  ];
}

/** The changed file a command was given: a row, or a URI (a sandbox's file, or a workspace file a sandbox changed). */
async function fileOf(ctx: CommandContext, arg: FileArg | vscode.Uri | undefined): Promise<FileArg | undefined> {
  if (!arg) arg = vscode.window.activeTextEditor?.document.uri;
  if (!arg) return undefined;
  if (!(arg instanceof vscode.Uri)) return arg;
  const query = arg.scheme === SCHEME ? parseSandboxQuery(arg.query) : undefined;
  const candidates = ctx.model.all().flatMap((sandbox) => {
    if (query && query.id !== sandbox.id) return [];
    const rel = relativeTo(sandbox.workspace, arg.path);
    const change = rel ? ctx.model.changesOf(sandbox.id)?.find((c) => c.path === rel) : undefined;
    return change ? [{ sandboxId: sandbox.id, name: sandbox.name, path: change.path, kind: change.kind }] : [];
  });
  if (candidates.length === 0) throw new PaddockError("E_NOT_FOUND", vscode.l10n.t("{0} has no change to review in a sandbox.", path.basename(arg.path)), vscode.l10n.t("It may have been approved or rejected already."));
  if (candidates.length === 1) return candidates[0];
  // Two sandboxes changed this workspace file: only the user knows which one is meant.
  const pick = await vscode.window.showQuickPick(candidates.map((c) => ({ label: c.name, file: c })), { placeHolder: vscode.l10n.t("This file changed in several sandboxes: which one's change?") });
  if (!pick) throw new vscode.CancellationError();
  return pick.file;
}

async function filesOf(ctx: CommandContext, args: unknown[]): Promise<FileArg[]> {
  // An editor's title passes its URI and then where it is ({ groupId, editorIndex }): only URIs and rows count.
  const given = args.filter((a): a is FileArg | vscode.Uri => a instanceof vscode.Uri || (typeof a === "object" && a !== null && typeof (a as FileArg).sandboxId === "string"));
  const files: FileArg[] = [];
  for (const arg of given.length > 0 ? given : [undefined]) {
    const file = await fileOf(ctx, arg);
    if (file) files.push(file);
  }
  return files;
}

function bySandbox(files: readonly FileArg[]): Map<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const file of files) grouped.set(file.sandboxId, [...(grouped.get(file.sandboxId) ?? []), file.path]);
  return grouped;
}

async function confirmReject(ctx: CommandContext, id: string, paths: string[]): Promise<boolean> {
  if (!readSettings().confirmReject) return true;
  const message = paths.length === 1 ? vscode.l10n.t("Reject the sandbox's changes to {0}?", paths[0]!) : vscode.l10n.t("Reject the sandbox's changes to {0} files?", paths.length);
  const look =
    paths.length === 1
      ? { title: vscode.l10n.t("Open Changes"), run: () => vscode.commands.executeCommand("paddock.openDiff", { sandboxId: id, path: paths[0]!, kind: ctx.model.changesOf(id)?.find((c) => c.path === paths[0])?.kind ?? "modified" }) }
      : { title: vscode.l10n.t("Review Changes"), run: () => vscode.commands.executeCommand("paddock.reviewSandbox", id) };
  return confirmDestructive(message, vscode.l10n.t("The sandbox gets the workspace's version back."), vscode.l10n.t("Reject"), look);
}

async function afterApprove(ctx: CommandContext, id: string, result: ApproveResult): Promise<void> {
  ctx.model.scheduleChanges(id);
  ctx.scm.recordApprove(id, result);
  if (result.merged.length > 0) {
    void vscode.window.showInformationMessage(vscode.l10n.t("Merged with your own edits in the workspace (in other lines), so both are kept: {0}", result.merged.join(", ")));
  }
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

type HunkTarget = { id: string; selector: HunkSelector } | undefined;

/** The sandbox and path of a `paddock:` document, saving its unsaved edits first (the agent compares files on disk). */
async function sandboxFileOf(ctx: CommandContext, uri: vscode.Uri): Promise<{ id: string; rel: string } | undefined> {
  const query = uri.scheme === SCHEME ? parseSandboxQuery(uri.query) : undefined;
  const workspace = query && ctx.model.get(query.id)?.workspace;
  const rel = workspace ? relativeTo(workspace, uri.path) : undefined;
  if (!query || rel === undefined) return undefined;
  const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (document?.isDirty) await document.save();
  return { id: query.id, rel };
}

async function hunkOfGutter(ctx: CommandContext, hunk: GutterHunk | undefined): Promise<HunkTarget> {
  const file = hunk?.modifiedUri && (await sandboxFileOf(ctx, vscode.Uri.from(hunk.modifiedUri)));
  return file ? { id: file.id, selector: selectorOfMapping(file.rel, hunk.mapping) } : undefined;
}

async function hunkOfPeek(ctx: CommandContext, uri: vscode.Uri, changes: VsLineChange[], index: number): Promise<HunkTarget> {
  const change = changes?.[index];
  const file = uri && change ? await sandboxFileOf(ctx, uri) : undefined;
  return file && change ? { id: file.id, selector: selectorOfPeekChange(file.rel, change) } : undefined;
}

async function hunkAtCursor(ctx: CommandContext): Promise<HunkTarget> {
  const editor = vscode.window.activeTextEditor;
  const file = editor && (await sandboxFileOf(ctx, editor.document.uri));
  if (!editor || !file) throw new PaddockError("E_NOT_FOUND", vscode.l10n.t("Put the cursor in a sandbox's side of a diff (the right) to approve or reject its change."), vscode.l10n.t("Open a change from Source Control or Paddock: Review Changes."));
  const diff = await ctx.agent.client().request("sandbox/diff", { id: file.id, paths: [file.rel] });
  const change = changeAtLine(diff.files[0]?.changes ?? [], editor.selection.active.line);
  if (!change) throw new PaddockError("E_NOT_FOUND", vscode.l10n.t("No change at line {0} of {1}.", editor.selection.active.line + 1, path.basename(file.rel)), vscode.l10n.t("Go to a change first: Alt+F5 goes to the next one."));
  return { id: file.id, selector: selectorOfChange(file.rel, change) };
}
