/**
 * What a review diff compares the sandbox's file with. Usually the workspace's file; but where
 * the workspace moved on since the sandbox's base (the user edited a file the sandbox changed
 * too), the base: what the sandbox started from. Then the user's own edits never read as the
 * sandbox deleting them, and hunks are chosen among the sandbox's changes alone; approve merges
 * them into the workspace three ways, and reject takes them out of the sandbox.
 *
 * Only text files whose base kept its contents qualify (bases.ts keeps those of small files).
 */
import { PaddockError } from "../../protocol/errors";
import type { Change, ReadFileResult } from "../../protocol/methods";
import { BeneathError, type Beneath } from "../sys/beneath";
import { matchesBase, type Base, type BaseStore } from "./bases";
import { asText, entryBytes, identityOf, readEntry } from "./entries";

/** The base's text when the diff of `rel` is taken against it; undefined: against the workspace. */
export function baseToDiffAgainst(ws: Beneath, rel: string, base: Base | undefined): Buffer | undefined {
  if (!base?.present || base.type !== "file" || base.bytes === undefined || asText(base.bytes) === undefined) return undefined;
  try {
    const workspace = readEntry(ws, rel);
    if (workspace?.type !== "file") return undefined;
    // The same entry untouched needs no read; nor does one of another size (it may be large).
    if (base.identity === identityOf(workspace.stat)) return undefined;
    if (workspace.stat.size !== base.bytes.length) return base.bytes;
    return matchesBase(base, workspace, () => entryBytes(ws, rel, workspace)) ? undefined : base.bytes;
  } catch (err) {
    // A file the owner may not read, or a symlink swapped in: compared as usual, which says so.
    if (err instanceof BeneathError) return undefined;
    throw err;
  }
}

/** Marks the modified text files whose diff is taken against their base (`againstBase`). */
export function markAgainstBase(changes: Change[], ws: Beneath, bases: BaseStore): void {
  for (const change of changes) {
    if (change.kind !== "modified" || change.type !== "file" || change.binary || change.pathBytes !== undefined) continue;
    if (!bases.has(change.path)) continue;
    if (baseToDiffAgainst(ws, change.path, bases.get(change.path))) change.againstBase = true;
  }
}

/** sandbox/readFile `base: true`: the base a diff is taken against, as a file. */
export function readBase(bases: BaseStore, rel: string): ReadFileResult {
  const base = bases.get(rel);
  if (!base?.present || base.type !== "file" || base.bytes === undefined) {
    throw new PaddockError("E_NOT_FOUND", `no base of ${rel} is kept: its diff is taken against the workspace's file`, "read the workspace's file; sandbox/changes marks the changes whose diff is against their base (againstBase)");
  }
  return { path: rel, type: "file", mode: base.mode ?? 0o644, size: base.bytes.length, mtimeMs: 0, content: base.bytes.toString("base64") };
}
