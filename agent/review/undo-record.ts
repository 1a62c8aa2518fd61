/**
 * Undo records: what an approve or a reject changed, kept so that it can be undone (undo.ts).
 *
 * Before an operation writes a path (the workspace's for approve, the sandbox's for reject and
 * for a merge the sandbox takes), the recorder keeps what was there: a file's bytes (appended
 * to one pack file per operation), a symlink's target, a folder's mode, or that nothing was;
 * and the path's base. After it, the recorder notes what the operation left, so that undo can
 * tell whether anything changed since. The record is written, durably and after its pack,
 * once the operation is done: a crash before then leaves an operation without undo, never a
 * record that cannot be trusted.
 *
 * Bounded: the last MAX_RECORDS operations of a sandbox, with at most MAX_KEPT_BYTES kept among
 * them (the oldest go first). An operation that alone would keep more is not undoable, and its
 * result says so. Records live in the sandbox's own folder and go with it.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeDurably } from "../state/durable";
import { BeneathError, childOf, writeAll, type Beneath } from "../sys/beneath";
import { Pacer } from "../sys/pacer";
import type { BaseStore, StoredBase } from "./bases";
import { identityOf, readEntry, type Entry } from "./entries";

export const MAX_RECORDS = 20;
export const MAX_KEPT_BYTES = 256 * 1024 * 1024;
/** What one kept entry costs besides its bytes (its place in the record). */
const ENTRY_COST = 256;
const COPY_CHUNK = 1024 * 1024;
const RECORD_ID = /^[0-9a-f]{12}$/;

/** Where an operation writes: the workspace (approve) or the sandbox's view (reject). */
export type Side = "workspace" | "sandbox";

/** What a path was before the operation. */
export type KeptEntry =
  | { type: "absent" }
  | { type: "directory"; mode: number; uid: number; gid: number }
  | { type: "symlink"; target: string; uid: number; gid: number }
  | { type: "file"; mode: number; uid: number; gid: number; mtimeMs: number; offset: number; size: number; sha256: string };

export interface KeptPath {
  path: string;
  before: KeptEntry;
  /** What the operation left there (see `leftBy`); missing when it could not be looked at. */
  after?: string;
  /** A small file the operation left: its mode and contents' hash, which a save of the same contents keeps. */
  afterContent?: string;
}

export interface UndoRecord {
  version: 1;
  id: string;
  kind: "approve" | "reject";
  /** When the operation ended (ms since the epoch). */
  at: number;
  /** What the operation reported done, by exact names. */
  paths: string[];
  workspace: KeptPath[];
  sandbox: KeptPath[];
  /** The bases of the paths before the operation (null: none). */
  bases: [string, StoredBase | null][];
  /** Kept bytes, entries counted: what the record costs of the sandbox's budget. */
  bytes: number;
}

/** Bytes of a file kept in an open pack file. */
export interface KeptBytes {
  fd: number;
  offset: number;
  size: number;
}

/**
 * What an operation left at a path, to compare with later: a folder by its mode (entries come
 * and go in it without touching what undo puts back), anything else by its identity.
 */
export function leftBy(entry: Entry | undefined): string {
  return entry?.type === "directory" ? `directory:${entry.mode}` : identityOf(entry?.stat);
}

/** Files up to this size are also told unchanged by their contents (an editor's save rewrites them as they are). */
const CONTENT_CHECKED_BYTES = 1024 * 1024;

/** A small file's mode and contents' hash; undefined for anything else. */
export function contentOf(tree: Beneath, rel: string, entry: Entry | undefined): string | undefined {
  if (entry?.type !== "file" || entry.stat.size > CONTENT_CHECKED_BYTES) return undefined;
  return `${entry.mode}:${createHash("sha256").update(tree.readFile(rel)).digest("hex")}`;
}

/** Keeps what one operation changes, then writes it as a record. */
export class UndoRecorder {
  readonly id = randomBytes(6).toString("hex");
  private readonly kept: Record<Side, Map<string, KeptPath>> = { workspace: new Map(), sandbox: new Map() };
  private readonly bases = new Map<string, StoredBase | null>();
  private pack: number | undefined;
  private packSize = 0;
  private bytes = 0;
  /** Why the operation cannot be undone, once that is known. */
  private unavailable: string | undefined;

  constructor(
    private readonly dir: string,
    readonly kind: UndoRecord["kind"],
  ) {}

  /**
   * Keeps what `paths` are in `tree` now, and their bases. On the sandbox's side a folder is
   * kept with everything in it: reject removes a folder the workspace does not have whole.
   */
  async keep(side: Side, tree: Beneath, paths: Iterable<string>, bases: BaseStore): Promise<void> {
    const pacer = new Pacer();
    const pending = [...paths];
    while (pending.length > 0 && this.unavailable === undefined) {
      await pacer.step();
      const rel = pending.pop()!;
      if (this.kept[side].has(rel)) continue;
      if (!this.bases.has(rel)) this.bases.set(rel, bases.stored(rel));
      try {
        const entry = readEntry(tree, rel);
        this.keepEntry(side, tree, rel, entry);
        if (side === "sandbox" && entry?.type === "directory") pending.push(...tree.readdir(rel).map((name) => childOf(rel, name)));
      } catch (err) {
        if (!(err instanceof BeneathError)) throw err;
        this.unavailable =
          err.code === "EACCES" || err.code === "EPERM" ? `undo could not keep ${rel}: your rights do not let you read it` : `${rel} changed while it was being kept for undo (${err.message})`;
      }
    }
  }

  private keepEntry(side: Side, tree: Beneath, rel: string, entry: Entry | undefined): void {
    this.bytes += ENTRY_COST;
    const owner = entry ? { uid: entry.uid, gid: entry.gid } : undefined;
    let before: KeptEntry;
    if (!entry) before = { type: "absent" };
    else if (entry.type === "directory") before = { type: "directory", mode: entry.mode, ...owner! };
    else if (entry.type === "symlink") before = { type: "symlink", target: entry.target ?? "", ...owner! };
    else if (entry.type === "file") before = { type: "file", mode: entry.mode, ...owner!, mtimeMs: entry.stat.mtimeMs, ...this.keepBytes(tree, rel) };
    else {
      this.unavailable = `${rel} is a special file (a device, FIFO or socket), which undo cannot put back`;
      return;
    }
    if (this.bytes > MAX_KEPT_BYTES) this.unavailable = `it changes more than ${MAX_KEPT_BYTES / 1024 / 1024} MiB of files, more than undo keeps`;
    this.kept[side].set(rel, { path: rel, before });
  }

  /** Appends a file's bytes to the pack, hashing them on the way. */
  private keepBytes(tree: Beneath, rel: string): { offset: number; size: number; sha256: string } {
    const { fd, stat } = tree.openFile(rel);
    try {
      if (this.bytes + stat.size > MAX_KEPT_BYTES) {
        this.bytes += stat.size; // over the budget: keepEntry gives the record up
        return { offset: 0, size: 0, sha256: "" };
      }
      this.pack ??= openNewPack(this.dir, this.id);
      const offset = this.packSize;
      const hash = createHash("sha256");
      const buffer = Buffer.allocUnsafe(COPY_CHUNK);
      for (;;) {
        const read = fs.readSync(fd, buffer, 0, COPY_CHUNK, null);
        if (read === 0) break;
        hash.update(buffer.subarray(0, read));
        writeAll(this.pack, buffer.subarray(0, read));
        this.packSize += read;
        this.bytes += read;
        if (this.bytes > MAX_KEPT_BYTES) break; // grew while it was read: the record is given up anyway
      }
      return { offset, size: this.packSize - offset, sha256: hash.digest("hex") };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Notes what the operation left at every path kept on `side`. */
  settle(side: Side, tree: Beneath): void {
    for (const kept of this.kept[side].values()) {
      try {
        const entry = readEntry(tree, kept.path);
        kept.after = leftBy(entry);
        const content = contentOf(tree, kept.path, entry);
        if (content !== undefined) kept.afterContent = content;
      } catch {
        delete kept.after; // cannot be looked at: undo will find it changed
      }
    }
  }

  /**
   * Writes the record of an operation that did `paths`: the result's `undo` (the record's id)
   * or `undoUnavailable` (why not). An operation that did nothing leaves no record.
   */
  commit(paths: readonly string[]): { undo?: string; undoUnavailable?: string } {
    if (paths.length === 0 || this.unavailable !== undefined) {
      this.discard();
      return paths.length === 0 ? {} : { undoUnavailable: this.unavailable };
    }
    if (this.pack !== undefined) {
      fs.fsyncSync(this.pack);
      fs.closeSync(this.pack);
      this.pack = undefined;
    }
    const record: UndoRecord = {
      version: 1,
      id: this.id,
      kind: this.kind,
      at: Date.now(),
      paths: [...paths],
      workspace: [...this.kept.workspace.values()],
      sandbox: [...this.kept.sandbox.values()],
      bases: [...this.bases],
      bytes: this.bytes,
    };
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    pruneRecords(this.dir, record);
    writeDurably(recordFile(this.dir, this.id), JSON.stringify(record));
    return { undo: this.id };
  }

  /** Throws away what was kept (the operation failed, or cannot be undone). */
  discard(): void {
    if (this.pack !== undefined) fs.closeSync(this.pack);
    this.pack = undefined;
    fs.rmSync(packFile(this.dir, this.id), { force: true });
  }
}

function openNewPack(dir: string, id: string): number {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return fs.openSync(packFile(dir, id), "wx", 0o600);
}

const recordFile = (dir: string, id: string) => path.join(dir, `${id}.json`);
const packFile = (dir: string, id: string) => path.join(dir, `${id}.pack`);

/** The sandbox's records, newest first; a record that cannot be read is left out. */
export function listRecords(dir: string): UndoRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const records: UndoRecord[] = [];
  for (const name of names) {
    const id = name.endsWith(".json") ? name.slice(0, -5) : "";
    const record = RECORD_ID.test(id) ? readRecord(dir, id) : undefined;
    if (record) records.push(record);
  }
  return records.sort((a, b) => b.at - a.at);
}

export function readRecord(dir: string, id: string): UndoRecord | undefined {
  if (!RECORD_ID.test(id)) return undefined;
  try {
    const record = JSON.parse(fs.readFileSync(recordFile(dir, id), "utf8")) as UndoRecord;
    return record.version === 1 && record.id === id ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Opens a record's pack for reading (undefined: the record kept no bytes). */
export function openPack(dir: string, id: string): number | undefined {
  try {
    return fs.openSync(packFile(dir, id), "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export function removeRecord(dir: string, id: string): void {
  fs.rmSync(recordFile(dir, id), { force: true });
  fs.rmSync(packFile(dir, id), { force: true });
}

/** Makes room for a new record: the oldest records go, and packs no record names (a crash's). */
function pruneRecords(dir: string, fresh: UndoRecord): void {
  const records = listRecords(dir);
  let total = fresh.bytes;
  const kept = new Set<string>([fresh.id]);
  for (const record of records) {
    if (kept.size < MAX_RECORDS && total + record.bytes <= MAX_KEPT_BYTES) {
      kept.add(record.id);
      total += record.bytes;
    } else removeRecord(dir, record.id);
  }
  for (const name of fs.readdirSync(dir)) {
    const id = name.replace(/\.(json|pack)$/, "");
    if (RECORD_ID.test(id) && !kept.has(id) && name.endsWith(".pack") && !fs.existsSync(recordFile(dir, id))) fs.rmSync(path.join(dir, name), { force: true });
  }
}
