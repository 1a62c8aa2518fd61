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

/** The two sides of a changed file's review diff: the workspace's (left) and the sandbox's, read-only (right). */
export function diffSides(model: SandboxModel, file: Pick<ChangedFile, "sandboxId" | "path" | "kind" | "resourceUri">): [vscode.Uri, vscode.Uri] {
  const workspace = workspaceFile(model, file);
  const left = file.kind === "added" ? sandboxUri(file.sandboxId, workspace, { empty: true }) : workspace;
  const right = sandboxUri(file.sandboxId, workspace, { empty: file.kind === "deleted", readonly: true });
  return [left, right];
}
