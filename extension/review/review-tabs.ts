/**
 * The editors a review opens, kept in step with the sandbox: the multi-file review of a
 * sandbox shows its changes as they are now (a file approved or rejected leaves it, the last
 * one closes it), and a deleted sandbox's diffs, files and review close with it. Also says,
 * as a context key, when the active tab is a Paddock review (the multi-file editor's per-file
 * buttons have no context of their own to tell it from git's).
 */
import * as vscode from "vscode";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import type { ChangeResource, SandboxScm } from "../scm/sandbox-scm";
import { parseSandboxQuery, SCHEME } from "../common/uri";

export type DiffSides = (resource: ChangeResource) => [vscode.Uri, vscode.Uri];

export class ReviewTabs implements vscode.Disposable {
  /** Sandbox id → the title of its open multi-file review. */
  private readonly titles = new Map<string, string>();
  private readonly disposables: vscode.Disposable[];

  constructor(
    private readonly model: SandboxModel,
    private readonly scm: SandboxScm,
    private readonly sides: DiffSides,
  ) {
    this.disposables = [
      vscode.window.tabGroups.onDidChangeTabs(() => this.trackActiveTab()),
      // After Source Control's own update (it listens first): its rows are the review's files.
      model.onDidChangeChanges((id) => void this.refresh(id)),
      model.onDidChangeSandboxes(() => void this.closeGone()),
    ];
  }

  /** Opens (or shows again, up to date) the multi-file review of a sandbox. */
  async open(id: string, title: string): Promise<void> {
    this.titles.set(id, title);
    const items = this.scm.resourcesOf(id).map((r) => [r.resourceUri, ...this.sides(r)] as const);
    await vscode.commands.executeCommand("vscode.changes", title, items);
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  /** VS Code adds " (N files)" to the title it was given. */
  private reviewTab(title: string): vscode.Tab | undefined {
    return vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label.startsWith(title) && !(t.input instanceof vscode.TabInputText) && !(t.input instanceof vscode.TabInputTextDiff));
  }

  private async refresh(id: string): Promise<void> {
    const title = this.titles.get(id);
    const tab = title ? this.reviewTab(title) : undefined;
    if (!title || !tab) return void this.titles.delete(id);
    if (this.scm.resourcesOf(id).length === 0) {
      this.titles.delete(id);
      await vscode.window.tabGroups.close(tab);
      return;
    }
    // The same title opens the same editor again, with the files as they are now.
    await this.open(id, title);
  }

  private async closeGone(): Promise<void> {
    const gone = (id: string) => !this.model.get(id);
    const ofGone = (uri: vscode.Uri | undefined) => {
      const id = uri?.scheme === SCHEME ? parseSandboxQuery(uri.query)?.id : undefined;
      return id !== undefined && gone(id);
    };
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter((tab) => {
      const input = tab.input;
      if (input instanceof vscode.TabInputTextDiff) return ofGone(input.original) || ofGone(input.modified);
      if (input instanceof vscode.TabInputText) return ofGone(input.uri);
      return false;
    });
    for (const [id, title] of this.titles) {
      if (!gone(id)) continue;
      this.titles.delete(id);
      const tab = this.reviewTab(title);
      if (tab) tabs.push(tab);
    }
    if (tabs.length > 0) await vscode.window.tabGroups.close(tabs);
  }

  private trackActiveTab(): void {
    const label = vscode.window.tabGroups.activeTabGroup.activeTab?.label;
    void vscode.commands.executeCommand("setContext", "paddock.reviewEditorActive", label !== undefined && [...this.titles.values()].some((t) => label.startsWith(t)));
  }
}
