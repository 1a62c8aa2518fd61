/**
 * inotify watches on folders of one sandbox's upper directory, no more than its allowance and
 * the agent's budget give. Each folder is opened beneath the upper directory without following
 * a symlink, and watched through that descriptor's path with "/." appended: the kernel watches
 * exactly the folder that was opened, and an event about the folder itself (which libuv names
 * after the watched path's last part) is named "." and cannot be taken for an entry's.
 */
import * as fs from "node:fs";
import { closeQuietly, folderPath, openFolderAt } from "./folder-at";
import type { WatchBudget } from "./watch-budget";

export type WatchEventKind = "rename" | "change";
/** `name` is an entry of `folder`, "." the folder itself, null unknown. */
export type WatchListener = (folder: string, kind: WatchEventKind, name: string | null) => void;

export type AddResult = "watching" | "full" | "not a folder";

export class DirWatches {
  private readonly watches = new Map<string, fs.FSWatcher>();

  constructor(
    private readonly rootFd: number,
    readonly allowance: number,
    private readonly budget: WatchBudget,
    private readonly listener: WatchListener,
  ) {}

  get size(): number {
    return this.watches.size;
  }

  get full(): boolean {
    return this.watches.size >= this.allowance;
  }

  has(rel: string): boolean {
    return this.watches.has(rel);
  }

  /** Watches the folder `rel` ("" is the upper directory): "full" when no watch is left for it. */
  add(rel: string): AddResult {
    if (this.watches.has(rel)) return "watching";
    if (this.full || !this.budget.take()) return "full";
    const fd = openFolderAt(this.rootFd, rel);
    if (fd === undefined) {
      this.budget.give();
      return "not a folder";
    }
    try {
      const watcher = fs.watch(`${folderPath(fd)}/.`, { persistent: false }, (kind, name) => this.listener(rel, kind, name));
      watcher.on("error", () => this.remove(rel));
      this.watches.set(rel, watcher);
      return "watching";
    } catch (err) {
      this.budget.give();
      // The host's limit is reached (other programs hold the rest): as good as no allowance left.
      return (err as NodeJS.ErrnoException).code === "ENOSPC" ? "full" : "not a folder";
    } finally {
      closeQuietly(fd);
    }
  }

  /** Ends the watches of `rel` and of every folder below it (it was removed or moved away). */
  removeTree(rel: string): void {
    const prefix = `${rel}/`;
    for (const key of [...this.watches.keys()]) if (rel === "" || key === rel || key.startsWith(prefix)) this.remove(key);
  }

  closeAll(): void {
    this.removeTree("");
  }

  private remove(rel: string): void {
    const watcher = this.watches.get(rel);
    if (!watcher) return;
    this.watches.delete(rel);
    watcher.close();
    this.budget.give();
  }
}
