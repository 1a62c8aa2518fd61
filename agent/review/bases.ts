/**
 * Bases: what a path was in the workspace when the sandbox first changed it, or when it was
 * last approved or rejected. Approve compares the workspace with its base to find conflicts,
 * and merges three ways with it.
 *
 * A base is captured when a path first appears in the upper directory (the watcher sees it),
 * and only if the workspace's copy has not changed since then (its ctime is not after the
 * upper entry's birth): a base taken later could already hold the workspace's own edit. Where
 * no base was captured, approve falls back on that same time rule.
 *
 * All bases of a sandbox live in one index file, read once and written once per operation
 * (creating a file per path made approve slow). A base keeps the entry's identity (inode,
 * size, times), which tells "unchanged" exactly, and the contents of small files, for merges.
 */
import * as fs from "node:fs";
import type { Beneath } from "../sys/beneath";
import { writeDurably } from "../state/durable";
import { entryBytes, identityOf, type Entry, type EntryType } from "./entries";

export interface Base {
  path: string;
  /** False: the workspace had nothing at this path. */
  present: boolean;
  type?: EntryType;
  mode?: number;
  /** File contents (small files only) or symlink target. */
  bytes?: Buffer;
  /** inode, size, mtime and ctime: equal means untouched. */
  identity?: string;
}

/** A base as the index keeps it: what undo puts back as it was. */
export interface StoredBase {
  present: boolean;
  type?: EntryType;
  mode?: number;
  identity?: string;
  /** base64 */
  data?: string;
  target?: string;
}

/**
 * 2: bases read with the sandbox owner's rights. Files of another version are not used (the
 * time rule stands in), so that nothing read with root's rights reaches a conflict report.
 */
const BASES_VERSION = 2;

/** Files up to this size keep their contents (for three-way merges); larger ones only their identity. */
const MAX_BASE_BYTES = 256 * 1024;
/** All kept contents of one sandbox together; past this, bases keep identities only. */
const MAX_TOTAL_BYTES = 16 * 1024 * 1024;

export class BaseStore {
  private entries: Map<string, StoredBase> | undefined;
  /** What this store set since it loaded: `save` merges it into what is on disk now. */
  private readonly changed = new Map<string, StoredBase>();

  constructor(private readonly file: string) {}

  private read(): Map<string, StoredBase> {
    try {
      const stored = JSON.parse(fs.readFileSync(this.file, "utf8")) as { version?: unknown; bases?: Record<string, StoredBase> };
      // Bases of an older agent were read with root's rights: they may hold what the owner may not read.
      if (stored.version !== BASES_VERSION || typeof stored.bases !== "object" || stored.bases === null) return new Map();
      return new Map(Object.entries(stored.bases));
    } catch {
      return new Map(); // none yet, or unreadable: the time rule stands in
    }
  }

  private load(): Map<string, StoredBase> {
    this.entries ??= this.read();
    return this.entries;
  }

  get(rel: string): Base | undefined {
    const stored = this.load().get(rel);
    if (!stored) return undefined;
    const bytes = stored.data !== undefined ? Buffer.from(stored.data, "base64") : stored.target !== undefined ? Buffer.from(stored.target) : undefined;
    return { path: rel, present: stored.present, type: stored.type, mode: stored.mode, identity: stored.identity, ...(bytes ? { bytes } : {}) };
  }

  has(rel: string): boolean {
    return this.load().has(rel);
  }

  /** Sets `entry` (undefined: nothing there), read from `tree`, as the base of `rel`; `save` writes. */
  set(rel: string, tree: Beneath, entry: Entry | undefined): void {
    const stored: StoredBase = entry ? { present: true, type: entry.type, mode: entry.mode, identity: identityOf(entry.stat) } : { present: false };
    if (entry?.type === "file" && entry.stat.size <= MAX_BASE_BYTES && this.keptBytes() + entry.stat.size <= MAX_TOTAL_BYTES) {
      stored.data = entryBytes(tree, rel, entry).toString("base64");
    }
    if (entry?.type === "symlink") stored.target = entry.target;
    this.kept = this.keptBytes() - dataBytes(this.load().get(rel)) + dataBytes(stored);
    this.load().set(rel, stored);
    this.changed.set(rel, stored);
  }

  /** The base of `rel` as it is kept (null: none), to put back with `restore`. */
  stored(rel: string): StoredBase | null {
    return this.load().get(rel) ?? null;
  }

  /** Puts back a base `stored` returned; `save` writes. */
  restore(rel: string, stored: StoredBase): void {
    this.kept = undefined;
    this.load().set(rel, stored);
    this.changed.set(rel, stored);
  }

  /** Writes what was set, over what others (the watcher, another request) saved meanwhile. */
  save(): void {
    if (this.changed.size === 0) return;
    const current = this.read();
    for (const [rel, stored] of this.changed) current.set(rel, stored);
    writeDurably(this.file, JSON.stringify({ version: BASES_VERSION, bases: Object.fromEntries(current) }));
    this.entries = current;
    this.kept = undefined;
    this.changed.clear();
  }

  private kept: number | undefined;

  private keptBytes(): number {
    this.kept ??= [...this.load().values()].reduce((sum, stored) => sum + dataBytes(stored), 0);
    return this.kept;
  }
}

function dataBytes(stored: StoredBase | undefined): number {
  return ((stored?.data?.length ?? 0) * 3) / 4;
}

/** When an upper entry came to be (its birth time; its change time where the file system has none). */
export function bornAt(st: fs.Stats): number {
  return st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs;
}

/** True when the workspace entry is still the base: the same entry untouched, or the same contents. */
export function matchesBase(base: Base, entry: Entry | undefined, bytes: () => Buffer): boolean {
  if (!base.present || !entry) return !base.present && !entry;
  if (base.type !== entry.type) return false;
  if (entry.type === "directory" || entry.type === "other") return true;
  if (entry.type === "file" && (base.mode ?? 0) !== entry.mode) return false;
  // Contents decide where they were kept (a same-size edit within one clock tick keeps the times);
  // otherwise the entry's identity does.
  if (base.bytes !== undefined) return base.bytes.equals(bytes());
  return base.identity === identityOf(entry.stat);
}
