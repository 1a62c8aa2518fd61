/** The two sides of a changed file's review diff, in one place: every diff, review and tab that follows one asks here. */
import * as path from "node:path";
import * as vscode from "vscode";
import { sandboxUri } from "../fs/sandbox-file-system";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import type { ChangeResource } from "../scm/sandbox-scm";

type ChangedFile = Pick<ChangeResource, "sandboxId" | "path" | "kind"> & { resourceUri?: vscode.Uri };

/** The workspace file a changed path names. */
export function workspaceFile(model: SandboxModel, file: Pick<ChangedFile, "sandboxId" | "path" | "resourceUri">): vscode.Uri {
  return file.resourceUri ?? vscode.Uri.file(path.join(model.get(file.sandboxId)?.workspace ?? "/", file.path));
}

/**
 * True when the file's diff is taken against what the sandbox started from, as the workspace's
 * file changed too since (the agent decides: `againstBase`): the user's own edits then never
 * read as the sandbox removing them.
 */
export function diffsAgainstBase(model: SandboxModel, file: Pick<ChangedFile, "sandboxId" | "path">): boolean {
  return model.changesOf(file.sandboxId)?.find((c) => c.path === file.path)?.againstBase === true;
}

/** The two sides of a changed file's review diff: the workspace's or the base's (left) and the sandbox's, read-only (right). */
export function diffSides(model: SandboxModel, file: Pick<ChangedFile, "sandboxId" | "path" | "kind" | "resourceUri">): [vscode.Uri, vscode.Uri] {
  const workspace = workspaceFile(model, file);
  const left = file.kind === "added" ? sandboxUri(file.sandboxId, workspace, { empty: true }) : diffsAgainstBase(model, file) ? sandboxUri(file.sandboxId, workspace, { base: true }) : workspace;
  const right = sandboxUri(file.sandboxId, workspace, { empty: file.kind === "deleted", readonly: true });
  return [left, right];
}

/** A review diff's title: "a.ts (Workspace ↔ Sandbox fix)", or "(Base ↔ …)" where the diff is against the base. */
export function diffTitle(model: SandboxModel, file: Pick<ChangedFile, "sandboxId" | "path">): string {
  const sandbox = model.get(file.sandboxId)?.name ?? file.sandboxId;
  const name = path.basename(file.path);
  return diffsAgainstBase(model, file) ? vscode.l10n.t("{0} (Base ↔ Sandbox {1})", name, sandbox) : vscode.l10n.t("{0} (Workspace ↔ Sandbox {1})", name, sandbox);
}
