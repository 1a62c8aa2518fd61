/** The Sandboxes view: folders of this window, each sandbox with its state, runtime and change count. */
import * as vscode from "vscode";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import { buildTree, type FolderNode, type SandboxNode } from "./tree-model";

export type TreeNode = FolderNode | SandboxNode;

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
    if (node?.kind === "sandbox") return [];
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
    const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
    item.id = node.sandbox.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.contextValue = node.contextValue;
    item.iconPath = new vscode.ThemeIcon(node.icon);
    item.command = { command: "paddock.reviewSandbox", title: vscode.l10n.t("Review Changes"), arguments: [node] };
    return item;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
    this.emitter.dispose();
  }
}
