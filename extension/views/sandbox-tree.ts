/** The Sandboxes view: folders of this window, each sandbox with its state, runtime, network and changes, and its changed files. */
import * as path from "node:path";
import * as vscode from "vscode";
import { changeRows } from "../sandboxes/change-rows";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import { buildTree, fileNodes, type FileNode, type FolderNode, type MoreNode, type SandboxNode } from "./tree-model";

export type TreeNode = FolderNode | SandboxNode | FileNode | MoreNode;

const FILE_ICONS = { added: "diff-added", modified: "diff-modified", deleted: "diff-removed" } as const;

export class SandboxTree implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly disposables: vscode.Disposable[];

  constructor(private readonly model: SandboxModel) {
    this.disposables = [
      model.onDidChangeSandboxes(() => this.emitter.fire(undefined)),
      model.onDidChangeChanges(() => this.emitter.fire(undefined)),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.emitter.fire(undefined)),
    ];
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (node?.kind === "sandbox") return fileNodes(node.sandbox, changeRows(this.model.changesOf(node.sandbox.id) ?? []));
    if (node?.kind === "file" || node?.kind === "more") return [];
    if (node?.kind === "folder") return node.sandboxes;
    const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === "file").map((f) => ({ name: f.name, path: f.uri.fsPath }));
    const tree = buildTree(folders, this.model.all(), this.model.changeCounts());
    // One folder: its sandboxes at the top level, as a single-folder window expects.
    if (tree.length === 1) return tree[0]!.sandboxes;
    // No sandbox at all: empty, so that the welcome view shows.
    return tree.some((f) => f.sandboxes.length > 0) ? tree : [];
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    if (node.kind === "folder") {
      const item = new vscode.TreeItem(node.name, vscode.TreeItemCollapsibleState.Expanded);
      item.iconPath = vscode.ThemeIcon.Folder;
      item.contextValue = node.path ? "folder" : "otherFolders";
      item.description = node.sandboxes.length === 0 ? vscode.l10n.t("no sandboxes") : undefined;
      item.tooltip = node.path || vscode.l10n.t("Sandboxes of folders not open in this window");
      return item;
    }
    if (node.kind === "file") {
      const item = new vscode.TreeItem(vscode.Uri.file(path.join(node.workspace, node.path)), vscode.TreeItemCollapsibleState.None);
      item.id = `${node.sandboxId}/${node.path}`;
      item.label = path.basename(node.path);
      item.description = path.dirname(node.path) === "." ? undefined : path.dirname(node.path);
      item.iconPath = new vscode.ThemeIcon(FILE_ICONS[node.change]);
      item.contextValue = `file.${node.change}`;
      item.command = { command: "paddock.openDiff", title: vscode.l10n.t("Open Changes"), arguments: [{ sandboxId: node.sandboxId, path: node.path, kind: node.change }] };
      return item;
    }
    if (node.kind === "more") {
      const item = new vscode.TreeItem(vscode.l10n.t("{0} more: see Source Control", node.count), vscode.TreeItemCollapsibleState.None);
      item.command = { command: "workbench.view.scm", title: vscode.l10n.t("Source Control") };
      return item;
    }
    // Expanded while it has few changes to show; collapsed (not hidden) when it has many.
    const state = !node.changeCount ? vscode.TreeItemCollapsibleState.None : node.changeCount <= 20 ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed;
    const item = new vscode.TreeItem(node.label, state);
    // VS Code keeps an id's first collapsible state: a new one when the sandbox's changes come or go.
    item.id = `${node.sandbox.id}/${state}`;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.contextValue = node.contextValue;
    item.iconPath = new vscode.ThemeIcon(node.icon);
    return item;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.emitter.dispose();
  }
}
