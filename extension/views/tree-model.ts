/**
 * The Sandboxes view as data: workspace folders, each with its sandboxes (state, runtime,
 * number of changes), and sandboxes of folders not open in this window under "Other". Pure,
 * so the shape of the view is unit-tested without VS Code.
 */
import type { Sandbox } from "../../agent/protocol/methods";

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
  /** For `when` clauses of the inline actions: "sandbox.running", "sandbox.stopped" or "sandbox.busy" (being made or deleted). */
  contextValue: string;
  /** A codicon id. */
  icon: string;
}

export interface OpenFolder {
  name: string;
  path: string;
}

export function sandboxNode(sandbox: Sandbox, changeCount: number | undefined): SandboxNode {
  const changes = changeCount === undefined ? "" : changeCount === 1 ? "1 change" : `${changeCount} changes`;
  const running = sandbox.state === "running";
  return {
    kind: "sandbox",
    sandbox,
    label: sandbox.name,
    description: [sandbox.state === "running" ? "" : sandbox.state, sandbox.image ? sandbox.image.name : sandbox.vm ? `vm (${sandbox.vm.accelerator})` : sandbox.runtime, changes].filter(Boolean).join(" · "),
    tooltip: [`${sandbox.name} (${sandbox.id})`, `${sandbox.runtime}${sandbox.image ? ` of ${sandbox.image.name} (${sandbox.image.digest.slice(0, 19)})` : ""}, ${sandbox.state}, network ${sandbox.network}`, `workspace ${sandbox.workspace}`, `created ${sandbox.createdAt}`, changes || "changes not listed yet"].join("\n"),
    contextValue: running ? "sandbox.running" : sandbox.state === "stopped" ? "sandbox.stopped" : "sandbox.busy",
    icon: running ? "vm-running" : sandbox.state === "stopped" ? "vm-outline" : "loading~spin",
  };
}

/** One node per open folder (in the window's order), then "Other" if any sandbox is elsewhere. */
export function buildTree(folders: readonly OpenFolder[], sandboxes: readonly Sandbox[], changeCounts: ReadonlyMap<string, number>): FolderNode[] {
  const nodes: FolderNode[] = folders.map((f) => ({ kind: "folder", name: f.name, path: f.path, sandboxes: [] }));
  const other: FolderNode = { kind: "folder", name: "Other folders", path: "", sandboxes: [] };
  for (const sandbox of [...sandboxes].sort((a, b) => a.createdAt.localeCompare(b.createdAt))) {
    const folder = nodes.find((f) => f.path === sandbox.workspace) ?? other;
    folder.sandboxes.push(sandboxNode(sandbox, changeCounts.get(sandbox.id)));
  }
  return other.sandboxes.length > 0 ? [...nodes, other] : nodes;
}
