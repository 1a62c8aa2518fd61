/**
 * Hunks as pure functions over line changes, shared by the agent (approve and reject of
 * hunks) and the extension (the quick-diff peek's per-hunk actions), as VS Code's git
 * extension does in its `staging.ts`.
 *
 * A line change says that lines [oldStart, oldEnd) of the old text became lines
 * [newStart, newEnd) of the new one (0-based, half-open; an empty range is a pure insertion or
 * deletion at that position). Lines keep their terminators, so a file that loses its final
 * newline changes its last line.
 */
import { diffArrays } from "diff";

export interface LineChange {
  oldStart: number;
  oldEnd: number;
  newStart: number;
  newEnd: number;
}

/** Budget of the line diff: edits and time. */
const MAX_EDIT_LENGTH = 50_000;
const DIFF_TIMEOUT_MS = 2000;

/** Lines with their terminators ("\n", or none for the last one). */
export function splitLines(text: string): string[] {
  const lines: string[] = [];
  let at = 0;
  for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", at)) {
    lines.push(text.slice(at, end + 1));
    at = end + 1;
  }
  if (at < text.length) lines.push(text.slice(at));
  return lines;
}

/** The minimal line changes that turn `oldLines` into `newLines`, in order. */
export function computeLineChanges(oldLines: readonly string[], newLines: readonly string[]): LineChange[] {
  // The lines both ends share are no work for the diff algorithm.
  let head = 0;
  while (head < oldLines.length && head < newLines.length && oldLines[head] === newLines[head]) head++;
  let tail = 0;
  while (tail < oldLines.length - head && tail < newLines.length - head && oldLines[oldLines.length - 1 - tail] === newLines[newLines.length - 1 - tail]) tail++;
  const changes: LineChange[] = [];
  let oldAt = head;
  let newAt = head;
  let open: LineChange | undefined;
  const oldMiddle = oldLines.slice(head, oldLines.length - tail);
  const newMiddle = newLines.slice(head, newLines.length - tail);
  // Two unrelated big files would keep the agent's only thread busy for long: past a budget
  // the middle is one change (still exact, just not minimal).
  const parts = diffArrays(oldMiddle, newMiddle, { maxEditLength: MAX_EDIT_LENGTH, timeout: DIFF_TIMEOUT_MS });
  if (!parts) return oldMiddle.length + newMiddle.length === 0 ? [] : [{ oldStart: head, oldEnd: oldLines.length - tail, newStart: head, newEnd: newLines.length - tail }];
  for (const part of parts) {
    const count = part.count ?? part.value.length;
    if (!part.added && !part.removed) {
      if (open) changes.push(open);
      open = undefined;
      oldAt += count;
      newAt += count;
      continue;
    }
    open ??= { oldStart: oldAt, oldEnd: oldAt, newStart: newAt, newEnd: newAt };
    if (part.removed) open.oldEnd = oldAt += count;
    else open.newEnd = newAt += count;
  }
  if (open) changes.push(open);
  return changes;
}

/** The old text with exactly the `selected` changes applied (the others left as in the old text). */
export function applyLineChanges(oldLines: readonly string[], newLines: readonly string[], changes: readonly LineChange[], selected: (change: LineChange, index: number) => boolean): string {
  const out: string[] = [];
  let oldAt = 0;
  changes.forEach((change, index) => {
    for (; oldAt < change.oldStart; oldAt++) out.push(oldLines[oldAt]!);
    if (selected(change, index)) out.push(...newLines.slice(change.newStart, change.newEnd));
    else out.push(...oldLines.slice(change.oldStart, change.oldEnd));
    oldAt = change.oldEnd;
  });
  for (; oldAt < oldLines.length; oldAt++) out.push(oldLines[oldAt]!);
  return out.join("");
}

/** True when `range` lies within `outer` (an empty range at the edge of `outer` counts). */
function within(start: number, end: number, outerStart: number, outerEnd: number): boolean {
  return outerStart <= start && end <= outerEnd;
}

/**
 * Which changes a set of hunk ranges selects: every change lying within a range on both
 * sides. A range may be a change itself (as `sandbox/diff` returns them) or a wider hunk with
 * context lines around several changes. A range matches only if it lies within both texts
 * (`lines`) and its context lines are the same lines on both sides, as a real hunk's are;
 * ranges that select nothing or match nothing are returned too (the file changed since the
 * client last looked, or the range was never a hunk of it).
 */
export function selectLineChanges(changes: readonly LineChange[], ranges: readonly LineChange[], lines: { old: number; new: number }): { selected: Set<number>; unmatched: LineChange[] } {
  const selected = new Set<number>();
  const unmatched: LineChange[] = [];
  for (const range of ranges) {
    const inside = changes.flatMap((change, index) => (within(change.oldStart, change.oldEnd, range.oldStart, range.oldEnd) && within(change.newStart, change.newEnd, range.newStart, range.newEnd) ? [index] : []));
    const first = changes[inside[0]!];
    const last = changes[inside[inside.length - 1]!];
    const isHunk =
      first !== undefined &&
      last !== undefined &&
      range.oldEnd <= lines.old &&
      range.newEnd <= lines.new &&
      first.oldStart - range.oldStart === first.newStart - range.newStart &&
      range.oldEnd - last.oldEnd === range.newEnd - last.newEnd;
    if (isHunk) for (const index of inside) selected.add(index);
    else unmatched.push(range);
  }
  return { selected, unmatched };
}

/** A unified diff hunk header's numbers (1-based; a count of 0 means "after that line") as a range. */
export function rangeOfUnifiedHunk(oldStart: number, oldLines: number, newStart: number, newLines: number): LineChange {
  const from = (start: number, count: number) => (count === 0 ? start : start - 1);
  return { oldStart: from(oldStart, oldLines), oldEnd: from(oldStart, oldLines) + oldLines, newStart: from(newStart, newLines), newEnd: from(newStart, newLines) + newLines };
}

/** Unified diff hunks (with `context` lines around changes), as `diff -u` and git print them. */
export function formatUnifiedHunks(oldLines: readonly string[], newLines: readonly string[], changes: readonly LineChange[], context = 3): string {
  const out: string[] = [];
  let index = 0;
  while (index < changes.length) {
    // One hunk: changes whose context would touch or overlap are printed together.
    let last = index;
    while (last + 1 < changes.length && changes[last + 1]!.oldStart - changes[last]!.oldEnd <= 2 * context) last++;
    const first = changes[index]!;
    const end = changes[last]!;
    const oldFrom = Math.max(0, first.oldStart - context);
    const newFrom = first.newStart - (first.oldStart - oldFrom);
    const oldTo = Math.min(oldLines.length, end.oldEnd + context);
    const newTo = end.newEnd + (oldTo - end.oldEnd);
    out.push(`@@ -${hunkRange(oldFrom, oldTo)} +${hunkRange(newFrom, newTo)} @@\n`);
    let oldAt = oldFrom;
    for (let i = index; i <= last; i++) {
      const change = changes[i]!;
      for (; oldAt < change.oldStart; oldAt++) out.push(line(" ", oldLines[oldAt]!));
      for (let k = change.oldStart; k < change.oldEnd; k++) out.push(line("-", oldLines[k]!));
      for (let k = change.newStart; k < change.newEnd; k++) out.push(line("+", newLines[k]!));
      oldAt = change.oldEnd;
    }
    for (; oldAt < oldTo; oldAt++) out.push(line(" ", oldLines[oldAt]!));
    index = last + 1;
  }
  return out.join("");
}

function hunkRange(from: number, to: number): string {
  const count = to - from;
  // As GNU diff: an empty range names the line before it.
  const start = count === 0 ? from : from + 1;
  return count === 1 ? `${start}` : `${start},${count}`;
}

function line(prefix: string, text: string): string {
  return text.endsWith("\n") ? `${prefix}${text}` : `${prefix}${text}\n\\ No newline at end of file\n`;
}
