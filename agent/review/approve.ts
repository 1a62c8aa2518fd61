/**
 * Approve: bring a sandbox's changes (whole paths, or some hunks of a file) into the workspace.
 *
 * - Nothing is overwritten that changed in the workspace since the sandbox changed it
 *   (a conflict), unless forced. A text file both changed in lines apart is merged three
 *   ways instead (`merged`).
 * - Everything is read and written through directory descriptors (sys/beneath.ts): a sandbox
 *   process that swaps a directory for a symlink meanwhile cannot redirect a read or a write.
 * - It reads and writes with the sandbox owner's rights (target.rights): what it creates
 *   belongs to the owner, and it creates, replaces and removes only where the owner could in
 *   a shell. A path it may not write is reported in `skipped`, never written as root.
 * - Setuid and setgid bits (but a folder's setgid), special files and security/trusted
 *   attributes are never applied; they are reported in `skipped`.
 * - It is journaled (journal.ts): after a crash at any instant, each file is wholly old or
 *   wholly new, and the next agent finishes or rolls back the whole approve.
 *
 * The sandbox is not touched: what it holds is now also in the workspace, so it is no longer
 * a change.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ApproveResult, Change, HunkSelector, Skipped } from "../../protocol/methods";
import { PaddockError } from "../../protocol/errors";
import { Beneath, BeneathError, copyFileInto, copyRangeInto, parentOf, writeAll } from "../sys/beneath";
import { flistxattr } from "../sys/libc";
import { Pacer } from "../sys/pacer";
import { baseToDiffAgainst } from "./against-base";
import { describeConflict, findConflict, mergeThreeWays } from "./conflicts";
import { asText, entryBytes, identityOf, readEntry, type Entry } from "./entries";
import { finishJournal, removeJournal, rollBack, writeJournal, type Journal, type JournalOp } from "./journal";
import { withHunks } from "./hunks";
import type { LineChange } from "./line-changes";
import type { KeptBytes } from "./undo-record";
import { compareLike, forcedPaths, openWorkspaceTree, PathCover, select, type PathChange, type ReviewTarget } from "./target";

export interface ApproveRequest {
  paths?: string[];
  hunks?: HunkSelector[];
  force?: boolean | string[];
}

const O_CREAT_EXCL_WRONLY = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;
/** Attributes that carry privilege or belong to the overlay: never applied. */
const PRIVILEGED_XATTR = /^(security|trusted)\./;
const OVERLAY_XATTR = /^(trusted\.overlay\.|user\.overlay\.|user\.fuseoverlayfs\.)/;

/** Where a staged file's bytes come from: the sandbox's file, given bytes (hunks, merges), or a version undo kept. */
export type StagedSource = { sandbox: true } | { bytes: Buffer } | { kept: KeptBytes };

/** A file or symlink to put at one path: made as a temp file beside it, then renamed over it. */
export interface Staged {
  path: string;
  /** A symlink's target; without one, a file. */
  symlink?: string;
  source: StagedSource;
  mode: number;
  owner?: [number, number];
  /** The modification time to give the file (undo puts back the time it had). */
  mtimeMs?: number;
  /** The workspace's entry the plan was made against ("absent" for none). */
  expect: string;
  /** A three-way merge: the base stays until the sandbox takes the merge too (journal.ts). */
  keepBase?: true;
}

export async function approve(target: ReviewTarget, changes: readonly Change[], request: ApproveRequest): Promise<ApproveResult> {
  const selection = select(changes, request.paths, request.hunks, { newFolders: true });
  const result: ApproveResult = { applied: [], merged: [], conflicts: [], skipped: selection.unknown.map((p) => ({ path: p, reason: "not a change of this sandbox" })) };
  const ws = openWorkspaceTree(target);
  const upper = Beneath.open(target.upper, target.rights);
  const folders = new Map<string, Beneath>();
  try {
    const plan = await planApprove(target, ws, upper, selection.paths, selection.hunks, request.force, result);
    if (plan.ops.length > 0) {
      await target.undo?.keep("workspace", ws, plan.ops.map((op) => op.path), target.bases);
      await applyPlan(target, ws, upper, plan, folders);
      target.undo?.settle("workspace", ws);
    }
    result.applied = plan.applied;
    const applied = new Set(plan.applied);
    result.merged = result.merged.filter((p) => applied.has(p));
    result.skipped.push(...plan.failed);
    return result;
  } finally {
    for (const folder of folders.values()) folder.close();
    upper.close();
    ws.close();
  }
}

export interface Plan {
  /** Temp files that could not be made (their paths are reported in `failed`). */
  unstaged: Set<string>;
  approveId: string;
  ops: JournalOp[];
  staged: Staged[];
  applied: string[];
  failed: Skipped[];
}

async function planApprove(
  target: ReviewTarget,
  ws: Beneath,
  upper: Beneath,
  paths: PathChange[],
  hunks: ReturnType<typeof select>["hunks"],
  force: ApproveRequest["force"],
  result: ApproveResult,
): Promise<Plan> {
  const pacer = new Pacer();
  const removes: JournalOp[] = [];
  const mkdirs: JournalOp[] = [];
  const chmods: JournalOp[] = [];
  const staged: Staged[] = [];
  const applied: string[] = [];
  const conflicted = new PathCover();
  const isForced = forcedPaths(force);

  /**
   * Hunks of a file whose workspace moved on since the base (against-base.ts): chosen from the
   * base's diff and merged into the workspace three ways. Undefined: not a clean merge.
   */
  const mergeHunks = (rel: string, base: Buffer, ranges: readonly LineChange[], workspace: Entry, sandbox: Entry): { merged: Buffer; rebased: Buffer } | undefined => {
    const sandboxBytes = entryBytes(upper, rel, sandbox);
    const chosen = withHunks(rel, base, sandboxBytes, ranges, "selected");
    const wsText = asText(entryBytes(ws, rel, workspace));
    const merged = mergeThreeWays(asText(base), wsText, asText(chosen));
    // The sandbox keeps its other changes on top of the workspace's edits, or its copy would read as undoing them.
    const rebased = mergeThreeWays(asText(base), wsText, asText(sandboxBytes));
    return merged === undefined || rebased === undefined ? undefined : { merged: Buffer.from(merged), rebased: Buffer.from(rebased) };
  };

  const consider = (change: PathChange, hunkRanges?: readonly LineChange[]) => {
    const rel = change.path;
    // A path below a conflicted folder is held back with it.
    if (conflicted.coversBelow(rel)) return;
    if (isTempName(path.posix.basename(rel))) {
      result.skipped.push({ path: rel, reason: TEMP_NAME_REASON });
      return;
    }
    const workspace = readEntry(ws, rel);
    const sandbox = change.current ? readEntry(upper, rel) : undefined;
    if (change.current && !sandbox) {
      result.skipped.push({ path: rel, reason: "changed again in the sandbox while approving; list the changes again" });
      return;
    }
    const base = target.bases.get(rel);
    const conflictInput = { rel, workspace, sandbox, base, ws, upper, format: target.upperFormat };
    // Hunks of a file the workspace changed too are chosen from the base's diff (against-base.ts).
    const hunkBase = hunkRanges && workspace?.type === "file" && sandbox?.type === "file" ? baseToDiffAgainst(ws, rel, base) : undefined;
    const hunkContent = hunkRanges && ((workspace: Entry, sandbox: Entry) => withHunks(rel, hunkBase ?? entryBytes(ws, rel, workspace), entryBytes(upper, rel, sandbox), hunkRanges, "selected"));
    const reason = findConflict(conflictInput);
    if (reason && !isForced(rel)) {
      const conflict = describeConflict(conflictInput, reason);
      // Edits that do not overlap are merged without asking: a whole text file, or hunks chosen from the base's diff.
      if (reason === "both-modified" && workspace?.type === "file" && sandbox?.type === "file") {
        const merge = hunkRanges ? hunkBase && mergeHunks(rel, hunkBase, hunkRanges, workspace, sandbox) : conflict.merged !== undefined ? { merged: Buffer.from(conflict.merged) } : undefined;
        if (merge) {
          staged.push({ path: rel, source: { bytes: merge.merged }, mode: allowedMode(sandbox, rel, result.skipped), expect: identityOf(workspace.stat), keepBase: true, ...(target.chown ? { owner: [sandbox.uid, sandbox.gid] as [number, number] } : {}) });
          if ("rebased" in merge) target.rebased?.set(rel, merge.rebased);
          applied.push(rel);
          result.merged.push(rel);
          return;
        }
      }
      result.conflicts.push(conflict);
      conflicted.add(rel);
      return;
    }
    if (!sandbox) {
      if (workspace) removes.push({ op: "remove", path: rel, directory: workspace.type === "directory", expect: identityOf(workspace.stat) });
      applied.push(rel);
      return;
    }
    if (sandbox.type === "other") {
      result.skipped.push({ path: rel, reason: "special files (devices, FIFOs, sockets) are never applied" });
      return;
    }
    if (workspace && workspace.type !== "directory" && sandbox.type === "directory") {
      removes.push({ op: "remove", path: rel, directory: false, expect: identityOf(workspace.stat) });
    }
    const mode = allowedMode(sandbox, rel, result.skipped);
    const owner: [number, number] | undefined = target.chown ? [sandbox.uid, sandbox.gid] : undefined;
    // Attributes are never copied; the privileged ones are said so (files copied whole say it as they are read).
    if (sandbox.type === "directory" || hunkContent) reportAttributes(upper, rel, result.skipped);
    if (sandbox.type === "directory") {
      if (!workspace || workspace.type !== "directory") mkdirs.push({ op: "mkdir", path: rel, ...(owner ? { owner } : {}) });
      // A folder the workspace has keeps its identity in the journal: a folder moved into its
      // place before a crash's recovery does not take the mode meant for this one.
      const folder = workspace?.type === "directory" ? { folder: `${workspace.stat.dev}:${workspace.stat.ino}` } : {};
      chmods.push({ op: "chmod", path: rel, mode, ...folder });
    } else {
      if (workspace?.type === "directory") removes.push({ op: "remove", path: rel, directory: true });
      if (hunkContent && !workspace) throw new PaddockError("E_HUNK_MISMATCH", `${rel} is no longer in the workspace, so it has no hunks`, "take the diff again (sandbox/diff) and select from it", { path: rel });
      // A directory in the way is removed first: the rename then meets nothing.
      const expect = workspace && workspace.type !== "directory" ? identityOf(workspace.stat) : "absent";
      const source: StagedSource = hunkContent && workspace ? { bytes: hunkContent(workspace, sandbox) } : { sandbox: true };
      staged.push({ path: rel, ...(sandbox.type === "symlink" ? { symlink: sandbox.target ?? "" } : {}), source, mode, expect, ...(owner ? { owner } : {}) });
    }
    applied.push(rel);
  };

  /** A symlink swapped in while we look (a hostile sandbox) costs that path, not the approve. */
  const safely = (rel: string, work: () => void) => {
    try {
      work();
    } catch (err) {
      if (!(err instanceof BeneathError)) throw err;
      result.skipped.push({ path: rel, reason: err.message });
      conflicted.add(rel);
    }
  };
  for (const change of paths) {
    await pacer.step();
    safely(change.path, () => consider(change));
  }
  for (const [rel, { change, ranges }] of hunks) {
    await pacer.step();
    safely(rel, () => consider(change, ranges));
  }
  // Hunks keep the workspace's mode (only content is chosen line by line), but never its setuid or setgid bits.
  for (const stage of staged) {
    await pacer.step();
    const workspace = "bytes" in stage.source ? readEntry(ws, stage.path) : undefined;
    if (workspace) stage.mode = allowedMode(workspace, stage.path, result.skipped);
  }

  return orderPlan(ws, { removes, mkdirs, staged, chmods }, applied);
}

/**
 * The operations in the order they can run: deepest removals first; new directories parents
 * first; then the files; modes last, deepest first, so that a read-only directory is made
 * read-only only after everything was put inside it.
 */
export function orderPlan(ws: Beneath, parts: { removes: JournalOp[]; mkdirs: JournalOp[]; staged: Staged[]; chmods: JournalOp[] }, applied: string[]): Plan {
  const { removes, mkdirs, staged, chmods } = parts;
  removes.sort((a, b) => compareLike(b.path, a.path));
  mkdirs.sort((a, b) => compareLike(a.path, b.path));
  chmods.sort((a, b) => compareLike(b.path, a.path));
  const approveId = randomBytes(6).toString("hex");
  const isDirectory = new Map<string, boolean>();
  const directory = (dir: string) => isDirectory.get(dir) ?? isDirectory.set(dir, ws.lstat(dir)?.isDirectory() ?? false).get(dir)!;
  const replaces: JournalOp[] = staged.map((stage, n) => ({ op: "replace", path: stage.path, temp: tempPath(directory, stage.path, approveId, n), expect: stage.expect, ...(stage.keepBase ? { keepBase: true as const } : {}) }));
  return { approveId, unstaged: new Set(), ops: [...removes, ...mkdirs, ...replaces, ...chmods], staged, applied, failed: [] };
}

/**
 * Approve's temp files are made in the workspace, so a sandbox can see one in its lower layer
 * for a moment, and a command copying a folder then (`mv` across the overlay does) copies it:
 * such a name is never approved, or the workspace would keep a stray temp.
 */
const TEMP_NAME = /^\.paddock-approve-[0-9a-f]{12}-\d+$/;
const TEMP_NAME_REASON = "a name approve keeps for its temp files (copied from the workspace while an approve ran); reject it, or rename it in the sandbox";

function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** A temp file's place: the target's directory, or the nearest one that exists (same file system). */
function tempPath(isDirectory: (dir: string) => boolean, rel: string, approveId: string, n: number): string {
  let dir = parentOf(rel);
  while (dir !== "" && !isDirectory(dir)) dir = parentOf(dir);
  const name = `.paddock-approve-${approveId}-${n}`;
  return dir === "" ? name : `${dir}/${name}`;
}

/**
 * The sandbox's mode without setuid or setgid bits: approve never makes a program that runs
 * with someone else's rights (a folder keeps its setgid, which only passes its group on).
 */
function allowedMode(sandbox: Entry, rel: string, skipped: Skipped[]): number {
  const dropped = sandbox.mode & (sandbox.type === "directory" ? 0o4000 : 0o6000);
  if (dropped) skipped.push({ path: rel, reason: `${dropped === 0o6000 ? "setuid and setgid bits" : dropped & 0o4000 ? "setuid bit" : "setgid bit"} not applied: approve never makes a program that runs with other rights` });
  return sandbox.mode & ~dropped;
}

/**
 * `folders` receives each folder temp files are made in, held open: renames and removals of
 * the temps go through them (journal.ts), wherever the folder is moved meanwhile.
 */
export async function applyPlan(target: ReviewTarget, ws: Beneath, upper: Beneath, plan: Plan, folders: Map<string, Beneath>): Promise<void> {
  const journal: Journal = {
    version: 1,
    approveId: plan.approveId,
    sandboxId: target.sandboxId,
    workspace: target.workspace,
    workspaceId: target.workspaceId,
    state: "preparing",
    ops: plan.ops,
  };
  writeJournal(target.journal, journal);
  try {
    await stage(ws, upper, plan, folders);
  } catch (err) {
    rollBack(ws, journal, folders);
    removeJournal(target.journal);
    throw err;
  }
  // Only what was staged is committed: a replace whose temp was never made must not count as done.
  const committed: Journal = { ...journal, state: "committed", ops: plan.ops.filter((op) => op.op !== "replace" || !plan.unstaged.has(op.temp)) };
  writeJournal(target.journal, committed);
  // From here the approve finishes, now or (after a crash) when the agent next starts.
  const failures = await finishJournal(ws, target.journal, committed, target.bases, folders);
  for (const { op, error } of failures) {
    target.log.warn("approve could not apply a path", { sandboxId: target.sandboxId, path: op.path, error });
    plan.failed.push({ path: op.path, reason: error });
  }
  dropApplied(plan, failures.map(({ op }) => op.path));
}

/** Writes every temp file and symlink, then fsyncs the files, many at once. */
async function stage(ws: Beneath, upper: Beneath, plan: Plan, folders: Map<string, Beneath>): Promise<void> {
  const replaces = plan.ops.filter((op): op is Extract<JournalOp, { op: "replace" }> => op.op === "replace");
  const fds: number[] = [];
  const unstaged: string[] = [];
  const pacer = new Pacer();
  try {
    for (const [n, item] of plan.staged.entries()) {
      await pacer.step();
      const temp = replaces[n]!.temp;
      const name = path.posix.basename(temp);
      let folder: Beneath | undefined;
      try {
        // One switch to the owner's rights for the whole file: its temp is theirs, made where they may write.
        ws.withRights(() => {
          folder = folders.get(parentOf(temp)) ?? folders.set(parentOf(temp), ws.subtree(parentOf(temp))).get(parentOf(temp))!;
          if (item.symlink !== undefined) {
            folder.symlink(item.symlink, name);
            if (item.owner) folder.chown(name, item.owner[0], item.owner[1]);
            return;
          }
          const out = folder.open(name, O_CREAT_EXCL_WRONLY, 0o600);
          fds.push(out);
          if (item.owner) fs.fchownSync(out, item.owner[0], item.owner[1]);
          if ("bytes" in item.source) writeAll(out, item.source.bytes);
          else if ("kept" in item.source) copyRangeInto(item.source.kept.fd, item.source.kept.offset, item.source.kept.size, out);
          else copyFromSandbox(upper, item.path, out, plan);
          fs.fchmodSync(out, item.mode);
          if (item.mtimeMs !== undefined) fs.futimesSync(out, item.mtimeMs / 1000, item.mtimeMs / 1000);
        });
      } catch (err) {
        if (!(err instanceof BeneathError)) throw err;
        // The sandbox's entry moved under us, or the owner may not write there: this path is
        // left out (its temp, if any, goes; a replace whose temp is gone does nothing).
        try {
          folder?.unlink(name);
        } catch {
          // never made
        }
        plan.unstaged.add(temp);
        unstaged.push(item.path);
        plan.failed.push({ path: item.path, reason: stagingFailure(item.path, temp, err) });
      }
    }
    dropApplied(plan, unstaged);
    await fsyncAll(fds);
    // The temps' names must be durable too before the journal says "committed".
    for (const folder of folders.values()) fs.fsyncSync(folder.fd);
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}

/** Takes paths that failed out of what the plan applied (once, so that many failures cost no more than a list). */
function dropApplied(plan: Plan, failed: readonly string[]): void {
  if (failed.length === 0) return;
  const gone = new Set(failed);
  plan.applied = plan.applied.filter((p) => !gone.has(p));
}

function stagingFailure(rel: string, temp: string, err: BeneathError): string {
  if ((err.code !== "EACCES" && err.code !== "EPERM") || !err.where.endsWith(temp)) return err.message;
  const folder = parentOf(temp) === "" ? "the workspace's top folder" : parentOf(temp);
  return `permission denied: you cannot create files in ${folder}, and approve writes with your rights (it replaces ${rel} with a new file beside it)`;
}

function copyFromSandbox(upper: Beneath, rel: string, out: number, plan: Plan): void {
  copyFileInto(upper, rel, out, (fd) => privilegedAttributes(fd, rel, plan.failed));
}

function privilegedAttributes(fd: number, rel: string, skipped: Skipped[]): void {
  for (const name of flistxattr(fd)) {
    if (PRIVILEGED_XATTR.test(name) && !OVERLAY_XATTR.test(name)) skipped.push({ path: rel, reason: `attribute ${name} not applied` });
  }
}

function reportAttributes(upper: Beneath, rel: string, skipped: Skipped[]): void {
  const fd = upper.open(rel, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  try {
    privilegedAttributes(fd, rel, skipped);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * fsync on the thread pool, several at a time (a file system's journal commit batches them).
 * Settles only when every fsync has: the descriptors are closed after.
 */
function fsyncAll(fds: readonly number[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let running = 0;
    let failure: Error | undefined;
    const pump = () => {
      if (next === fds.length && running === 0) return failure ? reject(failure) : resolve();
      while (running < 16 && next < fds.length && !failure) {
        running++;
        fs.fsync(fds[next++]!, (err) => {
          running--;
          failure ??= err ?? undefined;
          if (failure) next = fds.length;
          pump();
        });
      }
    };
    pump();
  });
}
