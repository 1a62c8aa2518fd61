/**
 * Conflicts in VS Code's three-way merge editor: the base the sandbox started from, the
 * workspace's version (left) and the sandbox's (right), from the approve that found the
 * conflict, served read-only under `paddock-conflict:`; the result is the workspace file,
 * written only when the person completes the merge (Complete Merge in the editor's title, or
 * saving it). The sandbox then takes the result too, so that nothing of it is left to review.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import type { Conflict } from "../../protocol/methods";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import { relativeTo } from "../common/uri";

const SCHEME = "paddock-conflict";
type Side = "base" | "workspace" | "sandbox";

export class ConflictMerges implements vscode.TextDocumentContentProvider, vscode.Disposable {
  /** Workspace file URI → the merge under way there. */
  private readonly pending = new Map<string, { sandboxId: string; conflict: Conflict }>();
  private readonly disposables: vscode.Disposable[];

  constructor(
    private readonly model: SandboxModel,
    /** Called when a merge's result is saved: the sandbox takes it, and the conflict is resolved. */
    private readonly onResolved: (sandboxId: string, rel: string) => Promise<void>,
  ) {
    this.disposables = [
      vscode.workspace.registerTextDocumentContentProvider(SCHEME, this),
      vscode.workspace.onDidSaveTextDocument((document) => void this.saved(document.uri)),
    ];
  }

  async open(sandboxId: string, conflict: Conflict): Promise<void> {
    const sandbox = this.model.get(sandboxId);
    if (!sandbox) return;
    const output = vscode.Uri.file(path.join(sandbox.workspace, conflict.path));
    this.pending.set(output.toString(), { sandboxId, conflict });
    const side = (which: Side) => vscode.Uri.from({ scheme: SCHEME, path: output.path, query: new URLSearchParams({ sandbox: sandboxId, side: which }).toString() });
    await vscode.commands.executeCommand("_open.mergeEditor", {
      base: side("base"),
      input1: { uri: side("workspace"), title: vscode.l10n.t("Workspace"), description: vscode.l10n.t("your version") },
      input2: { uri: side("sandbox"), title: vscode.l10n.t("Sandbox {0}", sandbox.name), description: vscode.l10n.t("the sandbox's version") },
      output,
    });
  }

  /**
   * Completes the merge shown: its result (the workspace file) is saved, which resolves it.
   * The merge editor's own "Complete Merge" is git's: this is ours, in its title.
   */
  async complete(): Promise<void> {
    // The merge editor's tab input is not public API: its label ("Merging: NAME") tells which merge it is.
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    const outputs = [...this.pending.keys()].map((key) => vscode.Uri.parse(key));
    const result = outputs.find((uri) => tab?.label.includes(path.basename(uri.path))) ?? (outputs.length === 1 ? outputs[0] : undefined);
    const document = result && vscode.workspace.textDocuments.find((d) => d.uri.toString() === result.toString());
    if (!document) return;
    await document.save();
    if (tab) await vscode.window.tabGroups.close(tab);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    const params = new URLSearchParams(uri.query);
    const entry = [...this.pending.values()].find((p) => p.sandboxId === params.get("sandbox") && p.conflict.path === relativeTo(this.model.get(p.sandboxId)?.workspace ?? "/", uri.path));
    const text = entry?.conflict[params.get("side") as Side];
    // No base was captured (or a side is not text): an empty base still lets the editor compare.
    return typeof text === "string" ? text : "";
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }

  private async saved(uri: vscode.Uri): Promise<void> {
    const merge = this.pending.get(uri.toString());
    if (!merge) return;
    this.pending.delete(uri.toString());
    await this.onResolved(merge.sandboxId, merge.conflict.path);
  }
}
