/**
 * A client's approve or reject as the review code takes it: the listed changes and the
 * request's paths by their exact names (client-paths.ts), deep trees held back from approve,
 * and the answer's paths as clients see them.
 */
import { PaddockError } from "../../protocol/errors";
import type { ApproveResult, Change, RejectResult, Skipped, Undoable, UndoResult } from "../../protocol/methods";
import { DEEP_TREE_NOTE } from "../changeset/changes";
import { parentOf } from "../sys/beneath";
import { approve, type ApproveRequest } from "./approve";
import { exactChanges, ShownPaths, shownApproveResult, shownRejectResult, shownSkipped } from "./client-paths";
import { reject, type RejectRequest } from "./reject";
import type { ReviewTarget } from "./target";
import { closePack, undoRecord } from "./undo";
import { listRecords, MAX_RECORDS, openPack, readRecord, removeRecord, type UndoRecord } from "./undo-record";

export async function approveListed(target: ReviewTarget, listed: readonly Change[], request: ApproveRequest): Promise<ApproveResult> {
  const shown = new ShownPaths(listed);
  const exact: ApproveRequest = { paths: shown.paths(request.paths), hunks: shown.hunks(request.hunks), force: shown.force(request.force) };
  const held = holdBackDeepTrees(exactChanges(listed), exact);
  const result = await approve(target, held.changes, held.request);
  return shownApproveResult({ ...result, skipped: [...held.skipped, ...result.skipped] });
}

export async function rejectListed(target: ReviewTarget, view: string, listed: readonly Change[], request: RejectRequest): Promise<RejectResult> {
  const shown = new ShownPaths(listed);
  const result = await reject(target, view, exactChanges(listed), { paths: shown.paths(request.paths), hunks: shown.hunks(request.hunks) });
  return shownRejectResult(result);
}

/**
 * A deep tree (a folder holding paths longer than a system call takes) cannot be brought into
 * the workspace whole, and a part of it is not what was reviewed: approve leaves the whole
 * folder out, and says so when the request covers it (everything, the folder, a folder above
 * it, or a path inside it).
 */
export function holdBackDeepTrees(changes: Change[], request: ApproveRequest): { changes: Change[]; request: ApproveRequest; skipped: Skipped[] } {
  const tops = new Set(changes.filter((c) => c.deepTree).map((c) => c.path));
  if (tops.size === 0) return { changes, request, skipped: [] };
  /** The deep tree `rel` is in (or is), if any. */
  const topOf = (rel: string): string | undefined => {
    for (let at = rel; at !== ""; at = parentOf(at)) if (tops.has(at)) return at;
    return undefined;
  };
  /** Folder → the deep trees below it. */
  const below = new Map<string, string[]>();
  for (const top of tops) for (let at = parentOf(top); at !== ""; at = parentOf(at)) (below.get(at) ?? below.set(at, []).get(at)!).push(top);
  const everything = request.paths === undefined && request.hunks === undefined;
  const covered = new Set<string>();
  const paths = request.paths?.filter((p) => {
    const top = topOf(p);
    if (top !== undefined) covered.add(top);
    for (const t of below.get(p) ?? []) covered.add(t);
    return top === undefined;
  });
  const skipped = [...tops].filter((t) => everything || covered.has(t)).map((t) => ({ path: t, reason: DEEP_TREE_NOTE }));
  return { changes: changes.filter((c) => topOf(c.path) === undefined), request: { ...request, paths }, skipped };
}

/**
 * Undoes the approve or reject `undoId` names (the latest, without one). `withView` runs the
 * undo against the sandbox's merged view, when the record changed the sandbox.
 */
export async function undoRequested(target: ReviewTarget, dir: string, undoId: string | undefined, withView: <T>(work: (view: string) => Promise<T>) => Promise<T>): Promise<UndoResult> {
  const record = undoId !== undefined ? readRecord(dir, undoId) : listRecords(dir)[0];
  if (!record) {
    throw new PaddockError(
      "E_NOT_FOUND",
      undoId !== undefined ? `no approve or reject ${undoId} to undo in sandbox ${target.sandboxId}` : `nothing to undo in sandbox ${target.sandboxId}`,
      `the last ${MAX_RECORDS} approves and rejects of a sandbox can be undone, each once (sandbox/undoList lists them)`,
    );
  }
  const pack = openPack(dir, record.id);
  try {
    const undo = (view: string | undefined) => undoRecord(target, record, view, pack);
    const outcome = record.sandbox.length > 0 ? await withView((view) => undo(view)) : await undo(undefined);
    // Something that could not be put back keeps the record: undoing again finishes the rest.
    if (outcome.skipped.length === 0) removeRecord(dir, record.id);
    return { undone: record.id, kind: record.kind, restored: outcome.restored, skipped: shownSkipped(outcome.skipped) };
  } finally {
    closePack(pack);
  }
}

/** The approves and rejects of a sandbox that can be undone, newest first. */
export function undoList(dir: string): Undoable[] {
  return listRecords(dir).map(undoable);
}

function undoable(record: UndoRecord): Undoable {
  return { undo: record.id, kind: record.kind, at: new Date(record.at).toISOString(), paths: record.paths.slice(0, 100), count: record.paths.length };
}
