/**
 * One running sandbox's upper directory, followed for live updates within bounds:
 *
 * - Folders get an inotify watch each, shallowest first, up to the sandbox's allowance
 *   (watch-budget.ts). A new folder is listed when its watch is set, since what was made in it
 *   before that is never seen by inotify.
 * - Past the allowance the upper directory is "saturated": the watches kept go on reporting
 *   their folders' entries exactly, and the folders without one are found by rescans
 *   (upper-rescan.ts), soon after a watched folder shows activity and otherwise at a rate
 *   that slows while nothing changes. When the tree shrinks back well under the allowance,
 *   every folder gets its watch again.
 * - What changed is reported in batches of bounded size; more than a pending bound at once is
 *   "list everything again" ([""]), sent at most once a second.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { childOf, parentOf } from "../sys/beneath";
import { DirWatches, type WatchEventKind } from "./dir-watches";
import { closeQuietly, entriesOf, openFolderAt, typeKnown } from "./folder-at";
import { scanUpper, type RescanQueue, type ScanResult } from "./upper-rescan";
import type { UpperFormat } from "./upper-format";
import type { WatchBudget } from "./watch-budget";

/** What every sandbox's watcher shares: the agent's watches, and its one-at-a-time rescans. */
export interface WatchShared {
  budget: WatchBudget;
  rescans: RescanQueue;
}

const DEBOUNCE_MS = 100;
/** A sandbox past its allowance is churning through folders: its clients hear at most once a second (each lists again). */
const SATURATED_DEBOUNCE_MS = 1000;
/** Paths per report (the manager captures a base for each, synchronously). */
const BATCH_PATHS = 500;
const BATCH_GAP_MS = 20;
/** More paths waiting than this become "list everything again". */
const MAX_PENDING = 5000;
const EVERYTHING_GAP_MS = 1000;
/** How long setting watches on new folders may hold the event loop before it yields. */
const EXPAND_SLICE_MS = 8;
/** A folder with more entries than this when its watch is set is left to the rescans. */
const MAX_LISTED_PER_FOLDER = 10_000;
/** A rescan this soon after a watched folder showed activity ... */
const RESCAN_SOON_MS = 250;
/** ... and otherwise every second, slowing to every thirty while nothing is found. */
const POLL_MIN_MS = 1000;
const POLL_MAX_MS = 30_000;
/**
 * A sandbox's next rescan also waits this many times what its last one took, more and more
 * while nothing is found: a big tree that sits still costs little.
 */
const REST_MIN = 4;
const REST_MAX = 64;
const MAX_RESCAN_REPORTED = 1000;
/** ctime comes from a coarse clock that may lag the one read here by a tick. */
const CTIME_SLACK_MS = 100;

/** The workspace path an entry of the upper directory (relative to it) speaks about. */
export function workspacePathOf(format: UpperFormat, rel: string): string {
  const name = path.posix.basename(rel);
  const dir = parentOf(rel);
  if (format.isOpaqueMarker(name)) return dir;
  const deleted = format.deletedBy(name);
  return deleted === undefined ? rel : childOf(dir, deleted);
}

/** Paths waiting to be reported, up to a bound past which they are "everything". */
class PendingPaths {
  private readonly paths = new Set<string>();
  private all = false;

  constructor(private readonly max: number) {}

  get everything(): boolean {
    return this.all;
  }

  get size(): number {
    return this.paths.size;
  }

  add(rel: string): void {
    if (this.all) return;
    if (this.paths.size >= this.max) this.addEverything();
    else this.paths.add(rel);
  }

  addEverything(): void {
    this.all = true;
    this.paths.clear();
  }

  take(count: number): string[] {
    const taken: string[] = [];
    for (const rel of this.paths) {
      if (taken.length >= count) break;
      taken.push(rel);
    }
    for (const rel of taken) this.paths.delete(rel);
    return taken;
  }

  clear(): void {
    this.all = false;
    this.paths.clear();
  }
}

export class WatchedUpper {
  private readonly dirs: DirWatches;
  private readonly pending = new PendingPaths(MAX_PENDING);
  /** Folders waiting for a watch, and whether their entries are news (not the initial state). */
  private readonly queue = new Map<string, boolean>();
  private expanding = false;
  private readonly expanded: (() => void)[] = [];
  private saturated = false;
  private closed = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private lastEverything = 0;
  /** The next rescan reports what changed from this moment on (ms since the epoch). */
  private since = Date.now() - CTIME_SLACK_MS;
  private rescanTimer: NodeJS.Timeout | undefined;
  private rescanAt = Infinity;
  private rescanning = false;
  private pollGap = POLL_MIN_MS;
  private restFactor = REST_MIN;
  /** A watched folder showed activity since the last rescan began. */
  private active = false;
  private lastRescanEnd = 0;
  private lastRescanCost = 0;

  private constructor(
    private readonly rootFd: number,
    private readonly format: UpperFormat,
    private readonly shared: WatchShared,
    private readonly onChange: (paths: string[]) => void,
  ) {
    this.dirs = new DirWatches(rootFd, shared.budget.limits.perSandbox, shared.budget, (folder, kind, name) => this.onEvent(folder, kind, name));
  }

  /** undefined when the upper directory cannot be opened (then there is nothing to follow). */
  static open(upperRoot: string, format: UpperFormat, shared: WatchShared, onChange: (paths: string[]) => void): WatchedUpper | undefined {
    try {
      return new WatchedUpper(fs.openSync(upperRoot, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY), format, shared, onChange);
    } catch {
      return undefined;
    }
  }

  /** Sets the watches on what is there now; resolves once they are set (or saturated). */
  start(): Promise<void> {
    this.enqueue("", false);
    return this.whenExpanded();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.rescanTimer);
    this.queue.clear();
    this.dirs.closeAll();
    for (const resolve of this.expanded.splice(0)) resolve();
    // A rescan in flight has its own descriptors and stops at its next slice.
    closeQuietly(this.rootFd);
  }

  // ---- events ------------------------------------------------------------------------------

  private onEvent(folder: string, kind: WatchEventKind, name: string | null): void {
    if (this.closed) return;
    if (name === null || name === ".") {
      // The folder itself: removed or moved away ends its watches (its parent reports the name).
      if (name === "." && kind === "rename" && folder !== "" && !this.isFolder(folder)) return this.dirs.removeTree(folder);
      this.report(folder);
      if (this.saturated) this.rescanSoon();
      return;
    }
    const child = childOf(folder, name);
    this.report(child);
    // The sandbox is busy: its folders without a watch may be changing too.
    if (this.saturated) this.rescanSoon();
    if (kind !== "rename") return;
    if (this.dirs.has(child)) {
      if (!this.isFolder(child)) this.dirs.removeTree(child);
    } else if (!this.saturated && this.isFolder(child)) {
      this.enqueue(child, true);
    }
  }

  private isFolder(rel: string): boolean {
    const fd = openFolderAt(this.rootFd, rel);
    if (fd === undefined) return false;
    closeQuietly(fd);
    return true;
  }

  // ---- watches -----------------------------------------------------------------------------

  private enqueue(rel: string, report: boolean): void {
    if (this.closed || this.saturated || this.queue.has(rel)) return;
    // More folders than the allowance: those already waiting get their watches, the rest are the rescans'.
    if (this.dirs.size + this.queue.size >= this.dirs.allowance) return this.saturate();
    this.queue.set(rel, report);
    if (!this.expanding) {
      this.expanding = true;
      setImmediate(() => this.expand());
    }
  }

  /** Sets watches from the queue for a slice of time, then yields to the event loop. */
  private expand(): void {
    const deadline = performance.now() + EXPAND_SLICE_MS;
    while (!this.closed && this.queue.size > 0 && performance.now() < deadline) {
      const [rel, report] = this.queue.entries().next().value as [string, boolean];
      this.queue.delete(rel);
      const added = this.dirs.add(rel);
      if (added === "full") {
        this.saturate();
        this.queue.clear();
      } else if (added === "watching") this.list(rel, report);
    }
    if (!this.closed && this.queue.size > 0) {
      setImmediate(() => this.expand());
      return;
    }
    this.expanding = false;
    for (const resolve of this.expanded.splice(0)) resolve();
  }

  private whenExpanded(): Promise<void> {
    return this.expanding ? new Promise((resolve) => this.expanded.push(resolve)) : Promise.resolve();
  }

  /** A newly watched folder's entries: reported when news, and its folders queued for watches. */
  private list(rel: string, report: boolean): void {
    const fd = openFolderAt(this.rootFd, rel);
    if (fd === undefined) return;
    const entries = entriesOf(fd);
    closeQuietly(fd);
    if (!entries) return;
    try {
      for (let listed = 0; ; listed++) {
        if (this.saturated && (!report || this.pending.everything)) break;
        const entry = entries.next();
        if (!entry) break;
        if (listed >= MAX_LISTED_PER_FOLDER) {
          if (report) this.pending.addEverything();
          this.saturate();
          break;
        }
        const child = childOf(rel, entry.name);
        if (report) this.report(child);
        if (entry.isDirectory() || (!typeKnown(entry) && this.isFolder(child))) this.enqueue(child, report);
      }
    } catch {
      // removed while it was listed: its parent reports that
    } finally {
      entries.close();
    }
  }

  // ---- rescans -----------------------------------------------------------------------------

  private saturate(): void {
    if (this.saturated) return;
    this.saturated = true;
    this.rescanSoon();
  }

  private rescanSoon(): void {
    this.active = true;
    this.pollGap = POLL_MIN_MS;
    this.restFactor = REST_MIN;
    this.scheduleRescan(RESCAN_SOON_MS);
  }

  private scheduleRescan(delay: number): void {
    if (this.closed || this.rescanning) return; // a rescan running schedules the next when it ends
    const at = Math.max(Date.now() + delay, this.lastRescanEnd + this.lastRescanCost * this.restFactor);
    if (this.rescanTimer !== undefined && this.rescanAt <= at) return;
    clearTimeout(this.rescanTimer);
    this.rescanAt = at;
    // A rescan that fails (it should not: every step tolerates a tree changing under it) only delays live updates.
    this.rescanTimer = setTimeout(() => void this.rescan().catch(() => this.scheduleRescan(POLL_MAX_MS)), at - Date.now());
  }

  private async rescan(): Promise<void> {
    this.rescanTimer = undefined;
    this.rescanAt = Infinity;
    this.rescanning = true;
    let startedAt = 0;
    let result: ScanResult | undefined;
    try {
      result = await this.shared.rescans.run(async () => {
        if (this.closed) return undefined;
        this.active = false;
        startedAt = Date.now();
        const started = performance.now();
        try {
          return await scanUpper({ rootFd: this.rootFd, since: this.since, isWatched: (folder) => this.dirs.has(folder), maxReported: MAX_RESCAN_REPORTED, cancelled: () => this.closed });
        } finally {
          this.lastRescanCost = performance.now() - started;
        }
      });
    } finally {
      this.rescanning = false;
    }
    if (!result || this.closed) return;
    this.lastRescanEnd = Date.now();
    this.since = startedAt - CTIME_SLACK_MS;
    if (result.changed === "everything") {
      this.pending.addEverything();
      this.scheduleFlush();
    } else {
      for (const rel of result.changed) this.report(rel);
    }
    const busy = this.active || result.changed === "everything" || result.changed.length > 0;
    this.pollGap = busy ? POLL_MIN_MS : Math.min(this.pollGap * 2, POLL_MAX_MS);
    this.restFactor = busy ? REST_MIN : Math.min(this.restFactor * 2, REST_MAX);
    if (!this.saturated) return;
    if (result.completed && result.folders < this.dirs.allowance / 2 && this.shared.budget.limits.total - this.shared.budget.inUse > result.folders) this.desaturate();
    else this.scheduleRescan(this.pollGap);
  }

  /** The tree fits its allowance again: every folder gets its watch, then one last rescan catches what changed meanwhile. */
  private desaturate(): void {
    this.saturated = false;
    this.enqueue("", false);
    void this.whenExpanded().then(() => {
      if (!this.saturated) this.scheduleRescan(0);
    });
  }

  // ---- reports -----------------------------------------------------------------------------

  private report(rel: string): void {
    if (!this.pending.everything) this.pending.add(workspacePathOf(this.format, rel));
    this.scheduleFlush();
  }

  private scheduleFlush(delay = this.saturated ? SATURATED_DEBOUNCE_MS : DEBOUNCE_MS): void {
    if (this.closed || this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => this.flush(), delay);
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (this.closed) return;
    if (this.pending.everything) {
      const wait = this.lastEverything + EVERYTHING_GAP_MS - Date.now();
      if (wait > 0) return this.scheduleFlush(wait);
      this.lastEverything = Date.now();
      this.pending.clear();
      this.onChange([""]);
      return;
    }
    const batch = this.pending.take(BATCH_PATHS);
    if (batch.length > 0) this.onChange(batch.sort());
    if (this.pending.size > 0) this.scheduleFlush(this.saturated ? SATURATED_DEBOUNCE_MS : BATCH_GAP_MS);
  }
}
