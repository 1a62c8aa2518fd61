/**
 * One Source Control provider per sandbox: its changed files (A/M/D), conflicts from the last
 * approve, a quick diff that shows in the gutter of the sandbox's copy of a file what the
 * sandbox changed, and file decorations in the Explorer.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import type { ApproveResult, Change, Conflict, Sandbox } from "../../protocol/methods";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import { changeRows } from "../sandboxes/change-rows";
import { sandboxUri } from "../fs/sandbox-file-system";
import { readSettings } from "../common/settings";
import { parseSandboxQuery, relativeTo, SCHEME } from "../common/uri";

/** A changed path as Source Control shows it; commands get these back as arguments. */
export interface ChangeResource extends vscode.SourceControlResourceState {
  readonly sandboxId: string;
  readonly path: string;
  readonly kind: Change["kind"] | "conflict";
  readonly conflict?: Conflict;
}

interface Provider {
  sandbox: Sandbox;
  scm: vscode.SourceControl;
  changes: vscode.SourceControlResourceGroup;
  conflicts: vscode.SourceControlResourceGroup;
  conflictList: Conflict[];
  /** Changed path → kind, for decorations (looked up per file the Explorer shows). */
  kinds: Map<string, Change["kind"]>;
}

// A sandbox's letters and colours are its own (S for sandbox, then what it did): a file git
// and a sandbox both changed must not read as git's alone.
const LETTERS = { added: "SA", modified: "SM", deleted: "SD", conflict: "S!" } as const;
const COLORS = { added: "paddock.sandboxAddedForeground", modified: "paddock.sandboxModifiedForeground", deleted: "paddock.sandboxDeletedForeground", conflict: "paddock.sandboxConflictForeground" } as const;

export class SandboxScm implements vscode.FileDecorationProvider, vscode.Disposable {
  private readonly providers = new Map<string, Provider>();
  private readonly disposables: vscode.Disposable[];
  private readonly decorationsEmitter = new vscode.EventEmitter<vscode.Uri[]>();
  readonly onDidChangeFileDecorations = this.decorationsEmitter.event;

  constructor(private readonly model: SandboxModel) {
    this.disposables = [
      model.onDidChangeSandboxes(() => this.sync()),
      model.onDidChangeChanges((id) => this.update(id)),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration("paddock.review.countInSourceControlBadge")) for (const id of this.providers.keys()) this.update(id);
      }),
      vscode.window.registerFileDecorationProvider(this),
    ];
  }

  /** The sandbox a Source Control (as the scm/title menu passes it) belongs to. */
  sandboxOf(control: vscode.SourceControl): string | undefined {
    return [...this.providers.values()].find((p) => p.scm === control)?.sandbox.id;
  }

  resourcesOf(id: string): ChangeResource[] {
    const provider = this.providers.get(id);
    return provider ? (provider.changes.resourceStates as ChangeResource[]) : [];
  }

  conflictsOf(id: string): ChangeResource[] {
    const provider = this.providers.get(id);
    return provider ? (provider.conflicts.resourceStates as ChangeResource[]) : [];
  }

  /** The conflicts of the last approve, shown in their own group until resolved. */
  setConflicts(id: string, conflicts: Conflict[]): void {
    const provider = this.providers.get(id);
    if (!provider) return;
    provider.conflictList = conflicts;
    provider.conflicts.resourceStates = conflicts.map((c) => this.resource(provider.sandbox, c.path, "conflict", c));
    provider.conflicts.hideWhenEmpty = true;
    this.decorationsEmitter.fire(conflicts.map((c) => vscode.Uri.file(path.join(provider.sandbox.workspace, c.path))));
  }

  resolveConflicts(id: string, paths: readonly string[]): void {
    const provider = this.providers.get(id);
    if (provider) this.setConflicts(id, provider.conflictList.filter((c) => !paths.includes(c.path)));
  }

  /** After an approve: what it applied is no longer in conflict; what it found in conflict is. */
  recordApprove(id: string, result: ApproveResult): void {
    const provider = this.providers.get(id);
    if (!provider) return;
    const settled = new Set([...result.applied, ...result.conflicts.map((c) => c.path)]);
    this.setConflicts(id, [...provider.conflictList.filter((c) => !settled.has(c.path)), ...result.conflicts]);
  }

  provideFileDecoration(uri: vscode.Uri): vscode.FileDecoration | undefined {
    if (uri.scheme !== "file") return undefined;
    for (const provider of this.providers.values()) {
      const rel = relativeTo(provider.sandbox.workspace, uri.fsPath);
      if (rel === undefined || rel === "") continue;
      if (provider.conflictList.some((c) => c.path === rel)) return decoration("conflict", provider.sandbox);
      const kind = provider.kinds.get(rel);
      if (kind) return decoration(kind, provider.sandbox);
    }
    return undefined;
  }

  dispose(): void {
    for (const provider of this.providers.values()) provider.scm.dispose();
    for (const d of this.disposables) d.dispose();
    this.decorationsEmitter.dispose();
  }

  private sync(): void {
    const live = new Set(this.model.all().map((s) => s.id));
    for (const [id, provider] of this.providers) {
      if (live.has(id)) continue;
      provider.scm.dispose();
      this.providers.delete(id);
    }
    for (const sandbox of this.model.all()) {
      const existing = this.providers.get(sandbox.id);
      const provider = existing ?? this.create(sandbox);
      provider.sandbox = sandbox;
      provider.scm.statusBarCommands = [{ command: "paddock.openTerminal", title: `$(terminal) ${sandbox.state}`, tooltip: vscode.l10n.t("Open a terminal in {0}", sandbox.name), arguments: [sandbox.id] }];
      if (existing) continue;
      this.providers.set(sandbox.id, provider);
      this.update(sandbox.id);
    }
  }

  private create(sandbox: Sandbox): Provider {
    const root = vscode.Uri.file(sandbox.workspace);
    // Rooted at the sandbox's view of the folder: its quick diff is asked about the sandbox's
    // files only, and git's gutter on the workspace's files stays git's alone.
    const scm = vscode.scm.createSourceControl("paddock", vscode.l10n.t("Sandbox {0}", sandbox.name), sandboxUri(sandbox.id, root));
    scm.inputBox.visible = false;
    scm.quickDiffProvider = {
      // The gutter of the sandbox's copy of a file shows what the sandbox changed, the
      // workspace's version as the original: the sandbox's lines are the new ones, as in the diff.
      provideOriginalResource: (uri) => {
        const query = uri.scheme === SCHEME ? parseSandboxQuery(uri.query) : undefined;
        if (query?.id !== sandbox.id || query.empty) return undefined;
        const rel = relativeTo(sandbox.workspace, uri.path);
        const change = rel ? this.model.changesOf(sandbox.id)?.find((c) => c.path === rel && c.kind === "modified" && c.type === "file" && !c.binary) : undefined;
        if (!change) return undefined;
        const workspaceFile = vscode.Uri.joinPath(root, rel!);
        return change.againstBase ? sandboxUri(sandbox.id, workspaceFile, { base: true }) : workspaceFile;
      },
    };
    const conflicts = scm.createResourceGroup("conflicts", vscode.l10n.t("Conflicts"));
    conflicts.hideWhenEmpty = true;
    const changes = scm.createResourceGroup("changes", vscode.l10n.t("Sandbox Changes"));
    return { sandbox, scm, changes, conflicts, conflictList: [], kinds: new Map() };
  }

  private update(id: string): void {
    const provider = this.providers.get(id);
    if (!provider) return;
    const before = provider.changes.resourceStates.map((r) => r.resourceUri);
    const rows = changeRows(this.model.changesOf(id) ?? []);
    provider.kinds = new Map(rows.map((r) => [r.path, r.kind]));
    provider.changes.resourceStates = rows.map((r) => this.resource(provider.sandbox, r.path, r.kind, undefined, r.note));
    provider.scm.count = readSettings().countInSourceControlBadge ? rows.length : 0;
    this.decorationsEmitter.fire([...before, ...provider.changes.resourceStates.map((r) => r.resourceUri)]);
  }

  private resource(sandbox: Sandbox, rel: string, kind: ChangeResource["kind"], conflict?: Conflict, note?: string): ChangeResource {
    const resourceUri = vscode.Uri.file(path.join(sandbox.workspace, rel));
    const summary = kind === "conflict" ? vscode.l10n.t("Conflict: {0}", conflict?.reason ?? "") : vscode.l10n.t("{0} in sandbox {1}", kind, sandbox.name);
    const tooltip = note ? `${summary}\n${note}` : summary;
    return {
      sandboxId: sandbox.id,
      path: rel,
      kind,
      ...(conflict ? { conflict } : {}),
      resourceUri,
      contextValue: kind,
      decorations: { strikeThrough: kind === "deleted", tooltip },
      command: { command: "paddock.openDiff", title: vscode.l10n.t("Open Changes"), arguments: [{ sandboxId: sandbox.id, path: rel, kind, resourceUri }] },
    };
  }
}

function decoration(kind: keyof typeof LETTERS, sandbox: Sandbox): vscode.FileDecoration {
  return new vscode.FileDecoration(LETTERS[kind], vscode.l10n.t("{0} in sandbox {1}", kind, sandbox.name), new vscode.ThemeColor(COLORS[kind]));
}
