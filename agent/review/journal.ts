/**
 * The approve journal: what makes an approve all-or-nothing across a crash.
 *
 * 1. "preparing" is written (durably) with every operation and every temp file it will make.
 * 2. New contents are written to those temp files, in their target's directory, and fsynced.
 * 3. "committed" is written: from here on the approve will finish.
 * 4. The operations run (renames over the targets, removals, new directories, modes), then
 *    the directories are fsynced and the journal removed.
 *
 * After a crash, the next agent reads the journal: "preparing" rolls back (the temp files go),
 * "committed" rolls forward. Every operation is safe to repeat, so a crash during recovery is
 * recovered the same way.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { removeDurably, writeDurably } from "../state/durable";
import type { Beneath } from "../sys/beneath";
import { BeneathError, parentOf } from "../sys/beneath";
import type { BaseStore } from "./bases";
import { identityOf, readEntry } from "./entries";
import { Pacer } from "../sys/pacer";

export type JournalOp =
  /**
   * Unlinks a file or symlink (only if it is still `expect`, the entry approve planned
   * against), or removes an empty directory; nothing there is fine.
   */
  | { op: "remove"; path: string; directory: boolean; expect?: string }
  /** Makes a directory (owner-only until its `chmod`), unless one is there. */
  | { op: "mkdir"; path: string; owner?: [number, number] }
  /**
   * Renames a prepared temp file or symlink over the path, if what is there is still `expect`
   * (an identity, or "absent"); a temp that is gone was renamed. `keepBase`: a three-way merge,
   * whose base stays until the sandbox has taken the merge too (a crash in between must leave
   * the sandbox's older copy reading as its own changes, never as undoing the workspace's).
   */
  | { op: "replace"; path: string; temp: string; expect?: string; keepBase?: true }
  /** Sets a folder's mode; with `folder` ("dev:ino" of a folder the workspace had), only if it is still that one. */
  | { op: "chmod"; path: string; mode: number; folder?: string };

export interface Journal {
  version: 1;
  approveId: string;
  sandboxId: string;
  workspace: string;
  workspaceId: string;
  state: "preparing" | "committed";
  ops: JournalOp[];
}

export function writeJournal(file: string, journal: Journal): void {
  writeDurably(file, JSON.stringify(journal));
}

export function readJournal(file: string): Journal | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return JSON.parse(text) as Journal;
}

export function removeJournal(file: string): void {
  removeDurably(file);
}

/**
 * The folders an approve made its temp files in, held open (by folder, "" for the top): a
 * temp is renamed and removed through its folder, so that a folder moved or swapped for a
 * symlink meanwhile cannot leave it behind. Recovery after a crash has only the paths.
 */
export type TempFolders = ReadonlyMap<string, Beneath>;

/** A temp file through its folder when that is held open, else by its path. */
function tempAt(ws: Beneath, temp: string, folders: TempFolders | undefined): { tree: Beneath; rel: string } {
  const folder = folders?.get(parentOf(temp));
  return folder ? { tree: folder, rel: path.posix.basename(temp) } : { tree: ws, rel: temp };
}

/** Runs the operations in order; returns those that failed (and why) instead of stopping. */
export async function runOps(ws: Beneath, ops: readonly JournalOp[], folders?: TempFolders, pacer = new Pacer()): Promise<{ op: JournalOp; error: string }[]> {
  const failures: { op: JournalOp; error: string }[] = [];
  for (const op of ops) {
    await pacer.step();
    try {
      runOp(ws, op, folders);
    } catch (err) {
      failures.push({ op, error: err instanceof BeneathError ? err.message : String(err) });
    }
  }
  return failures;
}

function runOp(ws: Beneath, op: JournalOp, folders: TempFolders | undefined): void {
  switch (op.op) {
    case "remove": {
      const st = ws.lstat(op.path);
      if (!st) return;
      // A file the sandbox deleted that has become a directory (or the reverse) is left alone.
      if (op.directory !== st.isDirectory()) return;
      if (!op.directory && op.expect !== undefined && identityOf(st) !== op.expect) throw changedMeanwhile(op.path);
      if (op.directory) {
        try {
          ws.rmdir(op.path);
        } catch (err) {
          if (err instanceof BeneathError && err.code === "ENOTEMPTY") throw new BeneathError("ENOTEMPTY", op.path, `${op.path} still holds entries the sandbox did not delete`);
          throw err;
        }
      } else {
        ws.unlink(op.path);
      }
      return;
    }
    case "mkdir": {
      if (ws.lstat(op.path)?.isDirectory()) return;
      ws.mkdir(op.path, 0o700);
      if (op.owner) ws.chown(op.path, op.owner[0], op.owner[1]);
      return;
    }
    case "replace": {
      const temp = tempAt(ws, op.temp, folders);
      // The workspace changed since approve looked (a save just now, or work done while a
      // journal waited for recovery): it is kept, and the sandbox keeps its change.
      if (op.expect !== undefined && identityOf(ws.lstat(op.path)) !== op.expect) {
        if (!temp.tree.lstat(temp.rel)) return; // renamed before a crash: that is what is there now
        // The sandbox's version is not put there, and its temp must not stay in the workspace.
        removeTemp(ws, op.temp, folders);
        throw changedMeanwhile(op.path);
      }
      try {
        ws.moveFrom(temp.tree, temp.rel, op.path);
      } catch (err) {
        // A temp that is gone was renamed before a crash: done.
        if (err instanceof BeneathError && err.code === "ENOENT" && !temp.tree.lstat(temp.rel)) return;
        removeTemp(ws, op.temp, folders);
        // rename(2) replaces a file or symlink, not a directory the workspace has there.
        if (err instanceof BeneathError && err.code === "EISDIR") throw new BeneathError("EISDIR", op.path, `${op.path} is a directory in the workspace`);
        throw err;
      }
      return;
    }
    case "chmod":
      ws.chmodDirectory(op.path, op.mode, op.folder);
      return;
  }
}

/** Removes a temp file, through its folder first (wherever that went), then by its path. */
function removeTemp(ws: Beneath, temp: string, folders: TempFolders | undefined): void {
  const at = tempAt(ws, temp, folders);
  for (const [tree, rel] of at.tree === ws ? [[ws, temp] as const] : [[at.tree, at.rel] as const, [ws, temp] as const]) {
    try {
      tree.unlink(rel);
      return;
    } catch {
      // gone already, or its folder was swapped: nothing of ours to remove there
    }
  }
}

function changedMeanwhile(rel: string): BeneathError {
  return new BeneathError("CHANGED", rel, `${rel} changed in the workspace while it was being approved; the workspace's version is kept`);
}

/** The directories whose entries the operations changed: fsynced once the operations ran. */
export function touchedDirectories(ops: readonly JournalOp[]): string[] {
  const dirs = new Set<string>();
  for (const op of ops) {
    dirs.add(parentOf(op.path));
    if (op.op === "replace") dirs.add(parentOf(op.temp));
  }
  return [...dirs];
}

export function fsyncDirectories(ws: Beneath, dirs: readonly string[]): void {
  for (const dir of dirs) {
    try {
      ws.fsyncDir(dir);
    } catch {
      // A directory removed by a later operation has nothing left to make durable.
    }
  }
}

/** Removes the temp files of a journal that never committed. */
export function rollBack(ws: Beneath, journal: Journal, folders?: TempFolders): void {
  for (const op of journal.ops) if (op.op === "replace") removeTemp(ws, op.temp, folders);
}

/**
 * Runs a committed journal's operations, records the new bases, and only then removes the
 * journal: a crash anywhere in here runs it all again, which changes nothing already done.
 */
export async function finishJournal(ws: Beneath, file: string, journal: Journal, bases: BaseStore, folders?: TempFolders): Promise<{ op: JournalOp; error: string }[]> {
  const pacer = new Pacer();
  const failures = await runOps(ws, journal.ops, folders, pacer);
  fsyncDirectories(ws, touchedDirectories(journal.ops));
  const failed = new Set(failures.map((f) => f.op.path));
  // What the workspace now holds is the base the sandbox's next change is compared with.
  try {
    const kept = new Set(journal.ops.flatMap((op) => (op.op === "replace" && op.keepBase ? [op.path] : [])));
    for (const rel of new Set(journal.ops.map((op) => op.path))) {
      await pacer.step();
      if (!failed.has(rel) && !kept.has(rel)) bases.set(rel, ws, readEntry(ws, rel));
    }
    bases.save();
  } catch {
    // Bases are advice (without one, conflicts are judged by time): never a reason to keep a journal.
  }
  if (failures.length > 0) rollBack(ws, journal, folders); // temps whose rename failed
  removeJournal(file);
  return failures;
}

/** Finishes or rolls back an approve a crash interrupted. Returns what was done, for the log. */
export async function recoverJournal(ws: Beneath, file: string, bases: BaseStore): Promise<{ state: Journal["state"]; failures: { op: JournalOp; error: string }[] } | undefined> {
  const journal = readJournal(file);
  if (!journal) return undefined;
  if (journal.state === "committed") return { state: journal.state, failures: await finishJournal(ws, file, journal, bases) };
  rollBack(ws, journal);
  removeJournal(file);
  return { state: journal.state, failures: [] };
}
