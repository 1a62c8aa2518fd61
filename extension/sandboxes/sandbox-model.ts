/**
 * What the views show, in one place: the user's sandboxes and each one's changes. Lists them
 * all when the agent (re)connects; after that it follows the agent's notifications, listing
 * again only the changes of the sandbox a `sandbox/didChange` names (debounced), never
 * everything per event.
 */
import * as vscode from "vscode";
import type { AgentNotification, AgentNotifications, Change, Sandbox } from "../../protocol/methods";
import type { AgentConnection } from "../agent/agent-connection";
import { relativeTo } from "../common/uri";
import { changeRows } from "./change-rows";

const REFRESH_DEBOUNCE_MS = 150;

export class SandboxModel implements vscode.Disposable {
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly changes = new Map<string, Change[]>();
  /** Each sandbox's changed paths, to tell at once whether a workspace file's edit concerns it. */
  private readonly changedPaths = new Map<string, Set<string>>();
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly disposables: vscode.Disposable[] = [];
  private readonly sandboxesEmitter = new vscode.EventEmitter<void>();
  private readonly changesEmitter = new vscode.EventEmitter<string>();
  /** The sandbox list (or a sandbox's state) changed. */
  readonly onDidChangeSandboxes = this.sandboxesEmitter.event;
  /** One sandbox's changes were listed again. */
  readonly onDidChangeChanges = this.changesEmitter.event;
  private readonly pathsEmitter = new vscode.EventEmitter<AgentNotifications["sandbox/didChange"]>();
  /** Paths the agent said may have changed in a sandbox ("" for all), as it said it. */
  readonly onDidChangePaths = this.pathsEmitter.event;

  constructor(private readonly agent: AgentConnection) {
    this.disposables.push(
      agent.onDidConnect(() => this.refreshAll().catch(() => undefined)), // a connection lost meanwhile reconnects and lists again
      agent.onDidChangeState((state) => {
        if (state.kind !== "running") this.clear();
      }),
      agent.onNotification((notification) => this.onNotification(notification)),
      this.watchWorkspaces(),
    );
  }

  /**
   * A workspace file that a sandbox changed too, edited in the workspace (by the user, in any
   * editor): that sandbox's changes are listed again, as the agent then diffs the file against
   * the sandbox's base (`againstBase`). VS Code's own workspace watcher tells; other files cost
   * a lookup each.
   */
  private watchWorkspaces(): vscode.Disposable {
    const watcher = vscode.workspace.createFileSystemWatcher("**/*");
    const changed = (uri: vscode.Uri) => {
      for (const sandbox of this.sandboxes.values()) {
        const rel = relativeTo(sandbox.workspace, uri.fsPath);
        if (rel !== undefined && this.changedPaths.get(sandbox.id)?.has(rel)) this.scheduleChanges(sandbox.id);
      }
    };
    return vscode.Disposable.from(watcher, watcher.onDidChange(changed), watcher.onDidCreate(changed), watcher.onDidDelete(changed));
  }

  all(): Sandbox[] {
    return [...this.sandboxes.values()];
  }

  get(id: string): Sandbox | undefined {
    return this.sandboxes.get(id);
  }

  changesOf(id: string): Change[] | undefined {
    return this.changes.get(id);
  }

  changeCounts(): Map<string, number> {
    return new Map([...this.changes].map(([id, list]) => [id, countFiles(list)]));
  }

  async refreshAll(): Promise<void> {
    const client = this.agent.client();
    const { sandboxes } = await client.request("sandbox/list", {});
    this.sandboxes.clear();
    for (const s of sandboxes) this.sandboxes.set(s.id, s);
    for (const id of [...this.changes.keys()]) {
      if (this.sandboxes.has(id)) continue;
      this.changes.delete(id);
      this.changedPaths.delete(id);
    }
    this.sandboxesEmitter.fire();
    await Promise.all(sandboxes.map((s) => this.refreshChanges(s.id)));
  }

  /** Lists one sandbox's changes again now. */
  async refreshChanges(id: string): Promise<void> {
    if (!this.sandboxes.has(id)) return;
    try {
      const { changes } = await this.agent.client().request("sandbox/changes", { id });
      this.changes.set(id, changes);
      this.changedPaths.set(id, new Set(changes.map((c) => c.path)));
    } catch {
      this.changes.delete(id); // its workspace is gone, or it is being deleted: shown without changes
      this.changedPaths.delete(id);
    }
    this.changesEmitter.fire(id);
  }

  /** A sandbox the extension just made or changed (the agent's notification may come later). */
  upsert(sandbox: Sandbox): void {
    this.sandboxes.set(sandbox.id, sandbox);
    this.sandboxesEmitter.fire();
    this.scheduleChanges(sandbox.id);
  }

  scheduleChanges(id: string): void {
    clearTimeout(this.pending.get(id));
    this.pending.set(
      id,
      setTimeout(() => {
        this.pending.delete(id);
        void this.refreshChanges(id);
      }, REFRESH_DEBOUNCE_MS),
    );
  }

  dispose(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    for (const d of this.disposables) d.dispose();
    this.sandboxesEmitter.dispose();
    this.changesEmitter.dispose();
    this.pathsEmitter.dispose();
  }

  private onNotification(notification: AgentNotification): void {
    if (notification.method === "sandbox/didChange") {
      this.pathsEmitter.fire(notification.params);
      this.scheduleChanges(notification.params.id);
    } else if (notification.method === "sandbox/didChangeState") {
      const { id, state } = notification.params;
      if (state === "deleted") {
        this.sandboxes.delete(id);
        this.changes.delete(id);
        this.changedPaths.delete(id);
        this.sandboxesEmitter.fire();
        this.changesEmitter.fire(id);
        return;
      }
      const known = this.sandboxes.get(id);
      if (known) {
        this.sandboxes.set(id, { ...known, state });
        this.sandboxesEmitter.fire();
      } else {
        // A sandbox made elsewhere (the CLI, another window): learn about it.
        void this.agent
          .client()
          .request("sandbox/get", { id })
          .then((s) => this.upsert(s), () => undefined);
      }
    }
  }

  private clear(): void {
    if (this.sandboxes.size === 0) return;
    this.sandboxes.clear();
    this.changes.clear();
    this.changedPaths.clear();
    this.sandboxesEmitter.fire();
  }
}

/** How many changes a person sees (the rows of Source Control and of the view). */
export function countFiles(changes: readonly Change[]): number {
  return changeRows(changes).length;
}
