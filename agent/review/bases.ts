/**
 * Bases: what a path was in the workspace when the sandbox first changed it, or when it was
 * last approved or rejected. Approve compares the workspace with its base to find conflicts,
 * and merges three ways with it.
 *
 * A base is captured when a path first appears in the upper directory (the watcher sees it),
 * and only if the workspace's copy has not changed since then (its ctime is not after the
 * upper entry's birth): a base taken later could already hold the workspace's own edit. Where
 * no base was captured, approve falls back on that same time rule.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Beneath } from "../sys/beneath";
import { entryBytes, readEntry, type Entry, type EntryType } from "./entries";

export interface Base {
  path: string;
  /** False: the workspace had nothing at this path. */
  present: boolean;
  type?: EntryType;
  mode?: number;
  /** File contents or symlink target. */
  bytes?: Buffer;
}

interface BaseMeta {
  path: string;
  present: boolean;
  type?: EntryType;
  mode?: number;
  target?: string;
}

/** Files larger than this are not kept as bases: their conflicts are found by time alone. */
const MAX_BASE_BYTES = 16 * 1024 * 1024;

export class BaseStore {
  constructor(private readonly dir: string) {}

  private files(rel: string) {
    const key = createHash("sha256").update(rel).digest("hex").slice(0, 32);
    return { meta: path.join(this.dir, `${key}.json`), data: path.join(this.dir, `${key}.data`) };
  }

  get(rel: string): Base | undefined {
    const files = this.files(rel);
    let meta: BaseMeta;
    try {
      meta = JSON.parse(fs.readFileSync(files.meta, "utf8")) as BaseMeta;
    } catch {
      return undefined;
    }
    if (meta.path !== rel) return undefined;
    const base: Base = { path: rel, present: meta.present, type: meta.type, mode: meta.mode };
    if (meta.type === "symlink") base.bytes = Buffer.from(meta.target ?? "");
    if (meta.type === "file") {
      try {
        base.bytes = fs.readFileSync(files.data);
      } catch {
        return undefined;
      }
    }
    return base;
  }

  has(rel: string): boolean {
    return fs.existsSync(this.files(rel).meta);
  }

  /** Records `entry` (undefined: nothing there) read from `tree` as the base of `rel`. */
  record(rel: string, tree: Beneath, entry: Entry | undefined, bytes?: Buffer): void {
    const files = this.files(rel);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (entry?.type === "file") {
      if (entry.stat.size > MAX_BASE_BYTES) return this.forget(rel);
      fs.writeFileSync(files.data, bytes ?? entryBytes(tree, rel, entry), { mode: 0o600 });
    } else {
      fs.rmSync(files.data, { force: true });
    }
    const meta: BaseMeta = entry ? { path: rel, present: true, type: entry.type, mode: entry.mode, ...(entry.target !== undefined ? { target: entry.target } : {}) } : { path: rel, present: false };
    fs.writeFileSync(files.meta, JSON.stringify(meta), { mode: 0o600 });
  }

  forget(rel: string): void {
    const files = this.files(rel);
    fs.rmSync(files.meta, { force: true });
    fs.rmSync(files.data, { force: true });
  }
}

/** When an upper entry came to be (its birth time; its change time where the file system has none). */
export function bornAt(st: fs.Stats): number {
  return st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs;
}

/** True when the workspace entry is the same as the base (contents, type, executable bits). */
export function matchesBase(base: Base, entry: Entry | undefined, bytes: () => Buffer): boolean {
  if (!base.present || !entry) return !base.present && !entry;
  if (base.type !== entry.type) return false;
  if (entry.type === "directory" || entry.type === "other") return true;
  if (entry.type === "file" && (base.mode ?? 0) !== entry.mode) return false;
  return base.bytes !== undefined && base.bytes.equals(bytes());
}

export function readBaseOf(tree: Beneath, rel: string): { entry: Entry | undefined; bytes: Buffer } {
  const entry = readEntry(tree, rel);
  return { entry, bytes: entryBytes(tree, rel, entry) };
}
