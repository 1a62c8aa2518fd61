/**
 * Undo of an approve or a reject: what the operation changed is put back as it was, in the
 * workspace and in the sandbox, with the bases it changed.
 *
 * Nothing is lost to an undo: if any path it would put back changed since the operation (a
 * save in the workspace, a command in the sandbox), the whole undo is refused and nothing is
 * touched. A path already as it was before is left alone, so an undo a crash interrupted is
 * finished by undoing again. The workspace's side goes through the approve journal (journal.ts):
 * all or nothing across a crash, with the owner's rights, like approve itself.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { PaddockError } from "../../protocol/errors";
import type { Skipped } from "../../protocol/methods";
import { Beneath, BeneathError } from "../sys/beneath";
import { displayPath } from "../sys/names";
import { Pacer } from "../sys/pacer";
import { applyPlan, orderPlan, type Staged } from "./approve";
import { identityOf, readEntry, type Entry } from "./entries";
import type { JournalOp } from "./journal";
import { makeDirectory, putFile } from "./reject";
import { compareLike, openWorkspaceTree, type ReviewTarget } from "./target";
import { contentOf, leftBy, type KeptEntry, type KeptPath, type Side, type UndoRecord } from "./undo-record";

export interface UndoOutcome {
  /** Paths of the operation that are as they were before it again. */
  restored: string[];
  skipped: Skipped[];
}

/** A kept path with what is there now. */
interface Present {
  kept: KeptPath;
  current: Entry | undefined;
}

/**
 * Undoes `record`. `view` is the sandbox's merged view (needed when the record changed the
 * sandbox); `pack` holds the kept bytes.
 */
export async function undoRecord(target: ReviewTarget, record: UndoRecord, view: string | undefined, pack: number | undefined): Promise<UndoOutcome> {
  const ws = openWorkspaceTree(target);
  const sandbox = record.sandbox.length > 0 && view !== undefined ? Beneath.open(view, target.rights) : undefined;
  const upper = Beneath.open(target.upper, target.rights);
  try {
    const sides: [Side, Beneath | undefined, KeptPath[]][] = [
      ["workspace", ws, record.workspace],
      ["sandbox", sandbox, record.sandbox],
    ];
    const todo: Record<Side, Present[]> = { workspace: [], sandbox: [] };
    const changed: string[] = [];
    const pacer = new Pacer();
    for (const [side, tree, kept] of sides) {
      for (const k of kept) {
        await pacer.step();
        if (!tree) throw new Error("the sandbox's view is needed to undo this");
        const state = stateOf(tree, k);
        if (state.changed) changed.push(side === "workspace" ? k.path : `${k.path} (in the sandbox)`);
        else if (!state.undone) todo[side].push({ kept: k, current: state.current });
      }
    }
    if (changed.length > 0) throw changedSince(record, changed);

    const skipped: Skipped[] = [];
    if (sandbox) skipped.push(...(await restoreSandbox(target, sandbox, todo.sandbox, pack)));
    if (todo.workspace.length > 0) skipped.push(...(await restoreWorkspace(target, ws, upper, todo.workspace, pack)));
    // The bases go back too, after the journal set them to what the workspace holds again. A
    // path that had none keeps that: the version the user reviewed against, not a guess by time.
    for (const [rel, stored] of record.bases) if (stored) target.bases.restore(rel, stored);
    target.bases.save();
    // The record names paths as clients see them (client-paths.ts).
    const failed = new Set(skipped.map((s) => displayPath(s.path)));
    return { restored: record.paths.filter((p) => !failed.has(p)), skipped };
  } finally {
    upper.close();
    sandbox?.close();
    ws.close();
  }
}

/** Whether a kept path is as the operation left it, as it was before, or changed since. */
function stateOf(tree: Beneath, kept: KeptPath): { current?: Entry; undone?: boolean; changed?: boolean } {
  let current: Entry | undefined;
  try {
    current = readEntry(tree, kept.path);
  } catch (err) {
    if (err instanceof BeneathError) return { changed: true };
    throw err;
  }
  if (isBefore(tree, kept.path, current, kept.before)) return { current, undone: true };
  if (kept.after !== undefined && leftBy(current) === kept.after) return { current };
  if (kept.afterContent !== undefined && contentOf(tree, kept.path, current) === kept.afterContent) return { current };
  return { changed: true };
}

/** True when `current` is what was there before the operation. */
function isBefore(tree: Beneath, rel: string, current: Entry | undefined, before: KeptEntry): boolean {
  if (before.type === "absent" || !current) return before.type === "absent" && !current;
  if (before.type !== current.type) return false;
  if (before.type === "directory") return before.mode === current.mode;
  if (before.type === "symlink") return before.target === current.target;
  if (before.mode !== current.mode || before.size !== current.stat.size) return false;
  return createHash("sha256").update(tree.readFile(rel)).digest("hex") === before.sha256;
}

function changedSince(record: UndoRecord, paths: string[]): PaddockError {
  const what = record.kind === "approve" ? "approved" : "rejected";
  const shown = paths.length <= 5 ? paths.join(", ") : `${paths.slice(0, 5).join(", ")} and ${paths.length - 5} more`;
  return new PaddockError("E_CHANGED_SINCE", `cannot undo: ${shown} changed since ${paths.length === 1 ? "it was" : "they were"} ${what}, and undoing would lose that change`, record.kind === "approve" ? "approve or reject the sandbox's changes again instead, or edit the workspace's files by hand" : "the sandbox keeps its newer version; edit it there", { paths });
}

/** Puts the sandbox's kept paths back through its merged view: removals deepest first, folders before what they hold, modes last. */
async function restoreSandbox(target: ReviewTarget, sandbox: Beneath, todo: Present[], pack: number | undefined): Promise<Skipped[]> {
  const skipped: Skipped[] = [];
  const pacer = new Pacer();
  const owner = (before: { uid: number; gid: number }): [number, number] | undefined => (target.chown ? [before.uid, before.gid] : undefined);
  const attempt = (rel: string, work: () => void) => {
    try {
      work();
    } catch (err) {
      skipped.push({ path: rel, reason: (err as Error).message });
    }
  };
  const deepestFirst = [...todo].sort((a, b) => compareLike(b.kept.path, a.kept.path));
  for (const { kept, current } of deepestFirst) {
    await pacer.step();
    if (current && (kept.before.type === "absent" || (current.type === "directory") !== (kept.before.type === "directory"))) attempt(kept.path, () => sandbox.removeTree(kept.path));
  }
  for (const { kept } of [...deepestFirst].reverse()) {
    await pacer.step();
    const before = kept.before;
    if (before.type === "directory") attempt(kept.path, () => (sandbox.lstat(kept.path)?.isDirectory() ? undefined : makeDirectory(sandbox, kept.path, { mode: 0o700 }, owner(before))));
    else if (before.type === "symlink") attempt(kept.path, () => putFile(sandbox, kept.path, { target: before.target }, 0o777, owner(before)));
    else if (before.type === "file") attempt(kept.path, () => putFile(sandbox, kept.path, { kept: keptBytes(pack, before) }, restoredMode(target, before), owner(before), before.mtimeMs));
  }
  for (const { kept } of deepestFirst) {
    await pacer.step();
    if (kept.before.type === "directory") {
      const mode = kept.before.mode;
      attempt(kept.path, () => sandbox.chmodDirectory(kept.path, mode));
    }
  }
  return skipped;
}

/** Puts the workspace's kept paths back as an approve would put them: journaled, with the owner's rights. */
async function restoreWorkspace(target: ReviewTarget, ws: Beneath, upper: Beneath, todo: Present[], pack: number | undefined): Promise<Skipped[]> {
  const removes: JournalOp[] = [];
  const mkdirs: JournalOp[] = [];
  const staged: Staged[] = [];
  const chmods: JournalOp[] = [];
  for (const { kept, current } of todo) {
    const rel = kept.path;
    const before = kept.before;
    const owner = (b: { uid: number; gid: number }) => (target.chown ? { owner: [b.uid, b.gid] as [number, number] } : {});
    const isDirectory = current?.type === "directory";
    if (current && (before.type === "absent" || isDirectory !== (before.type === "directory"))) removes.push({ op: "remove", path: rel, directory: isDirectory, ...(isDirectory ? {} : { expect: identityOf(current.stat) }) });
    if (before.type === "directory") {
      if (!isDirectory) mkdirs.push({ op: "mkdir", path: rel, ...owner(before) });
      chmods.push({ op: "chmod", path: rel, mode: before.mode, ...(isDirectory && current ? { folder: `${current.stat.dev}:${current.stat.ino}` } : {}) });
    } else if (before.type !== "absent") {
      const expect = current && !isDirectory ? identityOf(current.stat) : "absent";
      const source = before.type === "file" ? { kept: keptBytes(pack, before) } : { bytes: Buffer.alloc(0) };
      staged.push({ path: rel, source, mode: before.type === "file" ? restoredMode(target, before) : 0o777, expect, ...owner(before), ...(before.type === "symlink" ? { symlink: before.target } : { mtimeMs: before.mtimeMs }) });
    }
  }
  const plan = orderPlan(ws, { removes, mkdirs, staged, chmods }, todo.map((t) => t.kept.path));
  const folders = new Map<string, Beneath>();
  try {
    await applyPlan(target, ws, upper, plan, folders);
  } finally {
    for (const folder of folders.values()) folder.close();
  }
  return plan.failed;
}

/**
 * A file's mode as it was, but that written with a user's rights, a file that was someone
 * else's becomes theirs: it loses setuid and setgid, as on approve (it would run with their
 * rights where it ran with another's).
 */
function restoredMode(target: ReviewTarget, before: Extract<KeptEntry, { type: "file" }>): number {
  return target.rights && before.uid !== target.rights.uid ? before.mode & ~0o6000 : before.mode;
}

function keptBytes(pack: number | undefined, before: Extract<KeptEntry, { type: "file" }>) {
  if (pack === undefined && before.size > 0) throw new BeneathError("ENOENT", "kept version", "the kept version of this file is gone");
  return { fd: pack ?? -1, offset: before.offset, size: before.size };
}

/** Closes a pack `openPack` opened. */
export function closePack(pack: number | undefined): void {
  if (pack !== undefined) fs.closeSync(pack);
}
