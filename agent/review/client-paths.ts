/**
 * Between the paths clients see and the exact names the review works on (sys/names.ts).
 *
 * A change whose name is not UTF-8 is listed with its path shown with `\xHH` escapes and its
 * bytes in `pathBytes`. A request names changes by those shown paths: each one selects every
 * change that is shown so (a name that is valid UTF-8 and happens to read like an escape is
 * selected beside the one it looks like; both are changes of the sandbox, both listed).
 * Answers name paths as they are shown.
 */
import type { ApproveResult, Change, HunkSelector, RejectResult, Skipped, UndoOffer } from "../../protocol/methods";
import { pathOf } from "../changeset/changes";
import { displayPath } from "../sys/names";

/** The changes with their exact names as paths (as the review code works on them). */
export function exactChanges(changes: readonly Change[]): Change[] {
  return changes.map((change) => {
    if (change.pathBytes === undefined) return change;
    const { pathBytes: _bytes, ...rest } = change;
    return { ...rest, path: pathOf(change) };
  });
}

/** Resolves shown paths to exact names, against the changes that are listed. */
export class ShownPaths {
  /** Shown path (and each of its folders) → the exact names shown so; only for changes not named in UTF-8. */
  private readonly exact = new Map<string, Set<string>>();
  /** Paths (and their folders) of the changes that are named in UTF-8. */
  private readonly literal = new Set<string>();

  constructor(changes: readonly Change[]) {
    if (!changes.some((c) => c.pathBytes !== undefined)) return;
    for (const change of changes) {
      const shown = change.path.split("/");
      if (change.pathBytes === undefined) {
        for (let k = 1; k <= shown.length; k++) this.literal.add(shown.slice(0, k).join("/"));
        continue;
      }
      const exact = pathOf(change).split("/");
      for (let k = 1; k <= shown.length; k++) {
        const key = shown.slice(0, k).join("/");
        const names = this.exact.get(key) ?? this.exact.set(key, new Set()).get(key)!;
        names.add(exact.slice(0, k).join("/"));
      }
    }
  }

  /** The exact names a shown path selects (itself when it names nothing else). */
  resolve(shown: string): string[] {
    const exact = this.exact.get(shown);
    if (!exact) return [shown];
    return this.literal.has(shown) ? [shown, ...exact] : [...exact];
  }

  paths(shown: readonly string[] | undefined): string[] | undefined {
    return shown?.flatMap((p) => this.resolve(p));
  }

  hunks(shown: readonly HunkSelector[] | undefined): HunkSelector[] | undefined {
    return shown?.flatMap((hunk) => this.resolve(hunk.path).map((path) => ({ ...hunk, path })));
  }

  force(shown: boolean | readonly string[] | undefined): boolean | string[] | undefined {
    return typeof shown === "boolean" || shown === undefined ? shown : this.paths(shown);
  }
}

export function shownSkipped(skipped: readonly Skipped[]): Skipped[] {
  return skipped.map((s) => ({ path: displayPath(s.path), reason: displayPath(s.reason) }));
}

export function shownApproveResult(result: ApproveResult): ApproveResult {
  return {
    applied: result.applied.map(displayPath),
    merged: result.merged.map(displayPath),
    conflicts: result.conflicts.map((c) => ({ ...c, path: displayPath(c.path) })),
    skipped: shownSkipped(result.skipped),
  };
}

export function shownRejectResult(result: RejectResult): RejectResult {
  return { rejected: result.rejected.map(displayPath), skipped: shownSkipped(result.skipped) };
}

export function shownUndoOffer(result: UndoOffer): UndoOffer {
  return { ...(result.undo !== undefined ? { undo: result.undo } : {}), ...(result.undoUnavailable !== undefined ? { undoUnavailable: displayPath(result.undoUnavailable) } : {}) };
}
