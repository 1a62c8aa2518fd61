/**
 * From the changes VS Code shows to the agent's hunk selectors (0-based, end exclusive), in
 * every place a person can pick a change: the quick-diff peek (1-based, an end of 0 meaning an
 * empty range after the start line, as VS Code's git extension maps them in its staging
 * code), the diff editor's gutter (1-based, end exclusive), and the cursor's line. Everywhere
 * the workspace's version is the old side and the sandbox's the new one. Pure.
 */
import type { HunkSelector } from "../../protocol/methods";

/** A change of the quick-diff peek on a sandbox's file: original = the workspace's version, modified = the sandbox's. */
export interface VsLineChange {
  readonly originalStartLineNumber: number;
  readonly originalEndLineNumber: number;
  readonly modifiedStartLineNumber: number;
  readonly modifiedEndLineNumber: number;
}

/** A change of the diff editor's gutter (its `mapping`): original = the workspace's version, modified = the sandbox's. */
export interface VsRangeMapping {
  readonly original: { readonly startLineNumber: number; readonly endLineNumberExclusive: number };
  readonly modified: { readonly startLineNumber: number; readonly endLineNumberExclusive: number };
}

/** A change as the agent lists it (sandbox/diff): workspace lines [oldStart, oldEnd) became sandbox lines [newStart, newEnd). */
export interface AgentLineChange {
  readonly oldStart: number;
  readonly oldEnd: number;
  readonly newStart: number;
  readonly newEnd: number;
}

function peekRange(start: number, end: number): [number, number] {
  return end === 0 ? [start, start] : [start - 1, end];
}

export function selectorOfPeekChange(path: string, change: VsLineChange): HunkSelector {
  const [oldStart, oldEnd] = peekRange(change.originalStartLineNumber, change.originalEndLineNumber);
  const [newStart, newEnd] = peekRange(change.modifiedStartLineNumber, change.modifiedEndLineNumber);
  return { path, oldStart, oldEnd, newStart, newEnd };
}

export function selectorOfMapping(path: string, mapping: VsRangeMapping): HunkSelector {
  return {
    path,
    oldStart: mapping.original.startLineNumber - 1,
    oldEnd: mapping.original.endLineNumberExclusive - 1,
    newStart: mapping.modified.startLineNumber - 1,
    newEnd: mapping.modified.endLineNumberExclusive - 1,
  };
}

/**
 * The change at a line of the sandbox's version (0-based): the one whose new lines hold it,
 * or a deletion right there (it has no line of its own: the line after it, or the last line).
 */
export function changeAtLine(changes: readonly AgentLineChange[], line: number): AgentLineChange | undefined {
  return changes.find((c) => (c.newStart < c.newEnd ? line >= c.newStart && line < c.newEnd : line === c.newStart || line === c.newStart - 1));
}

export function selectorOfChange(path: string, change: AgentLineChange): HunkSelector {
  return { path, oldStart: change.oldStart, oldEnd: change.oldEnd, newStart: change.newStart, newEnd: change.newEnd };
}
