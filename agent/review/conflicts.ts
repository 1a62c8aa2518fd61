/**
 * Has the workspace's copy of a path changed since the sandbox first changed it? If so,
 * approving would overwrite someone's work: it is a conflict, reported with the three
 * versions and, when a three-way merge is clean, the merged text.
 */
import * as path from "node:path";
import { diff3Merge } from "node-diff3";
import type { UpperFormat } from "../changeset/upper-format";
import type { Conflict, ConflictReason } from "../../protocol/methods";
import type { Beneath } from "../sys/beneath";
import { bornAt, matchesBase, type Base } from "./bases";
import { asText, entryBytes, readEntry, type Entry } from "./entries";
import { BeneathError, childOf, parentOf } from "../sys/beneath";
import { splitLines } from "./line-changes";

/**
 * File systems stamp a change with a coarse clock (one tick, up to 10 ms) unless the time was
 * looked at since: a workspace write just after the sandbox's change can carry an earlier
 * time. Within this margin the workspace counts as changed (a conflict shown, never lost work).
 */
export const CLOCK_SLACK_MS = 12;

/** True when the workspace entry may have changed after `since` (see CLOCK_SLACK_MS). */
export function changedAfter(workspace: Entry, since: number): boolean {
  return workspace.stat.ctimeMs > since - CLOCK_SLACK_MS;
}

/** Texts above this are left out of a conflict report (clients read them with sandbox/readFile). */
const MAX_CONFLICT_TEXT = 1024 * 1024;

/**
 * When the sandbox first changed `rel`: the birth of its upper entry, of its whiteout, or of
 * the nearest opaque or deleted ancestor that hides it.
 */
export function changedSince(format: UpperFormat, upper: Beneath, rel: string): number | undefined {
  for (let at = rel; at !== ""; at = parentOf(at)) {
    const own = lstatThroughFolders(upper, at);
    if (own) return bornAt(own);
    const whiteoutFile = format.whiteoutFileFor(path.posix.basename(at));
    const whiteout = whiteoutFile === undefined ? undefined : lstatThroughFolders(upper, childOf(parentOf(at), whiteoutFile));
    if (whiteout) return bornAt(whiteout);
  }
  return undefined;
}

/**
 * lstat where a symlink on the way (the sandbox replaced a folder with one) means that
 * nothing is there: the change is the symlink's, found one level up.
 */
function lstatThroughFolders(tree: Beneath, rel: string): ReturnType<Beneath["lstat"]> {
  try {
    return tree.lstat(rel);
  } catch (err) {
    if (err instanceof BeneathError && err.code === "ELOOP") return undefined;
    throw err;
  }
}

export interface ConflictInput {
  rel: string;
  workspace: Entry | undefined;
  sandbox: Entry | undefined;
  base: Base | undefined;
  ws: Beneath;
  upper: Beneath;
  format: UpperFormat;
}

/** The reason approving `rel` would overwrite a change made in the workspace, or undefined. */
export function findConflict(input: ConflictInput): ConflictReason | undefined {
  const { rel, workspace, sandbox, base, ws } = input;
  let workspaceChanged: boolean;
  if (base) {
    workspaceChanged = !matchesBase(base, workspace, () => entryBytes(ws, rel, workspace));
  } else {
    // No base was captured: the workspace changed if its entry changed after the sandbox's,
    // or (nothing there now) if its folder did: something may have been deleted.
    const since = changedSince(input.format, input.upper, rel);
    const witness = workspace ?? readEntry(ws, parentOf(rel));
    workspaceChanged = since !== undefined && witness !== undefined && (workspace === undefined || workspace.type !== "directory") && changedAfter(witness, since);
  }
  if (!workspaceChanged) return undefined;
  if (!sandbox) return "deleted-in-sandbox";
  if (!workspace) return "deleted-in-workspace";
  if (sandbox.type !== workspace.type || (base?.present && base.type !== workspace.type)) return "type-changed";
  if (base && !base.present) return "added-in-both";
  return "both-modified";
}

/** A conflict report: the three versions where they are text, and a clean merge if there is one. */
export function describeConflict(input: ConflictInput, reason: ConflictReason): Conflict {
  const { rel, workspace, sandbox, base } = input;
  const text = (entry: Entry | undefined, read: () => Buffer): string | null | undefined => {
    if (!entry) return null;
    if (entry.type !== "file" || entry.stat.size > MAX_CONFLICT_TEXT) return undefined;
    return asText(read());
  };
  const conflict: Conflict = {
    path: rel,
    reason,
    workspace: text(workspace, () => entryBytes(input.ws, rel, workspace)),
    sandbox: text(sandbox, () => entryBytes(input.upper, rel, sandbox)),
  };
  if (base) conflict.base = !base.present ? null : base.type === "file" && base.bytes && base.bytes.length <= MAX_CONFLICT_TEXT ? asText(base.bytes) : undefined;
  const merged = mergeThreeWays(conflict.base, conflict.workspace, conflict.sandbox);
  if (merged !== undefined) conflict.merged = merged;
  for (const key of ["base", "workspace", "sandbox"] as const) if (conflict[key] === undefined) delete conflict[key];
  return conflict;
}

/** diff3 of two texts against their base; undefined unless all three are text and it is clean. */
export function mergeThreeWays(base: string | null | undefined, ours: string | null | undefined, theirs: string | null | undefined): string | undefined {
  if (typeof base !== "string" || typeof ours !== "string" || typeof theirs !== "string") return undefined;
  const regions = diff3Merge(splitLines(ours), splitLines(base), splitLines(theirs), { excludeFalseConflicts: true });
  const out: string[] = [];
  for (const region of regions) {
    if (!region.ok) return undefined;
    out.push(...region.ok);
  }
  return out.join("");
}
