/**
 * From VS Code's line changes (the quick-diff peek: 1-based, an end of 0 meaning an empty
 * range after the start line) to the agent's hunk selectors (0-based, end exclusive), as
 * VS Code's git extension maps them in its staging code. Pure.
 *
 * In Paddock's quick diff the original is the sandbox's version and the modified side is
 * the workspace file in the editor, so the workspace is the selector's "old" side.
 */
import type { HunkSelector } from "../../agent/protocol/methods";

export interface VsLineChange {
  readonly originalStartLineNumber: number;
  readonly originalEndLineNumber: number;
  readonly modifiedStartLineNumber: number;
  readonly modifiedEndLineNumber: number;
}

function range(start: number, end: number): [number, number] {
  return end === 0 ? [start, start] : [start - 1, end];
}

export function selectorOf(path: string, change: VsLineChange): HunkSelector {
  const [oldStart, oldEnd] = range(change.modifiedStartLineNumber, change.modifiedEndLineNumber);
  const [newStart, newEnd] = range(change.originalStartLineNumber, change.originalEndLineNumber);
  return { path, oldStart, oldEnd, newStart, newEnd };
}
