/**
 * The Sandboxes view as data: workspace folders, each with its sandboxes (runtime, network,
 * number of changes, age) and each sandbox with its changed files; sandboxes of folders not
 * open in this window under "Other folders". Pure, so the shape of the view is unit-tested
 * without VS Code.
 */
import type { Sandbox } from "../../protocol/methods";
import type { ChangeRow } from "../sandboxes/change-rows";
import { ageLabel, networkLabel, runtimeLabel } from "../sandboxes/describe";

export interface FolderNode {
  kind: "folder";
  name: string;
  path: string;
  sandboxes: SandboxNode[];
}

export interface SandboxNode {
  kind: "sandbox";
  sandbox: Sandbox;
  label: string;
  description: string;
  tooltip: string;
  /**
   * For `when` clauses of the row's actions: "sandbox.running", "sandbox.stopped" or
   * "sandbox.busy" (being made or deleted), with ".changed" when it has changes to review.
   */
  contextValue: string;
  /** A codicon id. */
  icon: string;
  changeCount: number | undefined;
}

/** A changed file under its sandbox: what approve and reject commands take (as a Source Control row). */
export interface FileNode {
  kind: "file";
  sandboxId: string;
  path: string;
  change: ChangeRow["kind"];
  workspace: string;
}

/** The rest of a long list, said in one row (Source Control lists them all). */
export interface MoreNode {
  kind: "more";
  sandboxId: string;
  count: number;
}

export interface OpenFolder {
  name: string;
  path: string;
}

/** Files listed under a sandbox in the view; a bigger change set is reviewed in Source Control. */
export const MAX_FILES_IN_VIEW = 200;

export function sandboxNode(sandbox: Sandbox, changeCount: number | undefined, now = Date.now()): SandboxNode {
  const changes = changeCount === undefined ? "" : changeCount === 1 ? "1 change" : `${changeCount} changes`;
  const running = sandbox.state === "running";
  const state = running ? "sandbox.running" : sandbox.state === "stopped" ? "sandbox.stopped" : "sandbox.busy";
  return {
    kind: "sandbox",
    sandbox,
    label: sandbox.name,
    description: [running ? "" : sandbox.state, runtimeLabel(sandbox), networkLabel(sandbox.network), changes].filter(Boolean).join(" · "),
    tooltip: [
      `${sandbox.name} (${sandbox.id})`,
      `${runtimeLabel(sandbox)}${sandbox.image ? ` (${sandbox.image.digest.slice(0, 19)})` : ""}, ${sandbox.state}, ${networkLabel(sandbox.network)}`,
      `workspace ${sandbox.workspace}`,
      `created ${ageLabel(sandbox.createdAt, now)} (${new Date(sandbox.createdAt).toLocaleString()})`,
      changes || "changes not listed yet",
    ].join("\n"),
    contextValue: `${state}${changeCount ? ".changed" : ""}`,
    icon: running ? "vm-running" : sandbox.state === "stopped" ? "vm-outline" : "loading~spin",
    changeCount,
  };
}

/** A sandbox's rows: its changed files, at most MAX_FILES_IN_VIEW, then one row for the rest. */
export function fileNodes(sandbox: Sandbox, rows: readonly ChangeRow[]): (FileNode | MoreNode)[] {
  const files: (FileNode | MoreNode)[] = rows.slice(0, MAX_FILES_IN_VIEW).map((r) => ({ kind: "file", sandboxId: sandbox.id, path: r.path, change: r.kind, workspace: sandbox.workspace }));
  if (rows.length > MAX_FILES_IN_VIEW) files.push({ kind: "more", sandboxId: sandbox.id, count: rows.length - MAX_FILES_IN_VIEW });
  return files;
}

/** One node per open folder (in the window's order), then "Other" if any sandbox is elsewhere. */
export function buildTree(folders: readonly OpenFolder[], sandboxes: readonly Sandbox[], changeCounts: ReadonlyMap<string, number>, now = Date.now()): FolderNode[] {
  const nodes: FolderNode[] = folders.map((f) => ({ kind: "folder", name: f.name, path: f.path, sandboxes: [] }));
  const other: FolderNode = { kind: "folder", name: "Other folders", path: "", sandboxes: [] };
  for (const sandbox of [...sandboxes].sort((a, b) => a.createdAt.localeCompare(b.createdAt))) {
    const folder = nodes.find((f) => f.path === sandbox.workspace) ?? other;
    folder.sandboxes.push(sandboxNode(sandbox, changeCounts.get(sandbox.id), now));
  }
  return other.sandboxes.length > 0 ? [...nodes, other] : nodes;
}
