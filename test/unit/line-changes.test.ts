/** Hunk selection over line changes: the pure functions approve, reject and the extension share. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { applyLineChanges, computeLineChanges, formatUnifiedHunks, rangeOfUnifiedHunk, selectLineChanges, splitLines } from "../../agent/review/line-changes";

const OLD = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n";
const NEW = "a\nB\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\nm\n".replace("f\n", "");

test("line changes: replacement, deletion, insertion at the end", () => {
  const changes = computeLineChanges(splitLines(OLD), splitLines(NEW));
  assert.deepEqual(changes, [
    { oldStart: 1, oldEnd: 2, newStart: 1, newEnd: 2 },
    { oldStart: 5, oldEnd: 6, newStart: 5, newEnd: 5 },
    { oldStart: 12, oldEnd: 12, newStart: 11, newEnd: 12 },
  ]);
});

test("applying one change, or all but one, gives what applying those hunks by hand gives", () => {
  const oldLines = splitLines(OLD);
  const newLines = splitLines(NEW);
  const changes = computeLineChanges(oldLines, newLines);
  assert.equal(applyLineChanges(oldLines, newLines, changes, (_c, i) => i === 0), OLD.replace("b\n", "B\n"));
  assert.equal(applyLineChanges(oldLines, newLines, changes, (_c, i) => i !== 1), NEW.replace("e\ng\n", "e\nf\ng\n"));
  assert.equal(applyLineChanges(oldLines, newLines, changes, () => true), NEW);
  assert.equal(applyLineChanges(oldLines, newLines, changes, () => false), OLD);
});

test("a lost final newline is a change of the last line", () => {
  const changes = computeLineChanges(splitLines("x\ny\n"), splitLines("x\ny"));
  assert.deepEqual(changes, [{ oldStart: 1, oldEnd: 2, newStart: 1, newEnd: 2 }]);
  assert.match(formatUnifiedHunks(splitLines("x\ny\n"), splitLines("x\ny"), changes), /\+y\n\\ No newline at end of file\n$/);
});

test("a hunk with context selects the changes inside it, and only those", () => {
  const changes = computeLineChanges(splitLines(OLD), splitLines(NEW));
  // The first two changes are 3 lines apart, the last two 6: with 2 lines of context, two hunks.
  const hunks = formatUnifiedHunks(splitLines(OLD), splitLines(NEW), changes, 2);
  const headers = [...hunks.matchAll(/^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/gm)].map((m) => rangeOfUnifiedHunk(Number(m[1]), Number(m[2] ?? 1), Number(m[3]), Number(m[4] ?? 1)));
  assert.equal(headers.length, 2);
  const lines = { old: splitLines(OLD).length, new: splitLines(NEW).length };
  assert.deepEqual([...selectLineChanges(changes, [headers[0]!], lines).selected], [0, 1]);
  assert.deepEqual([...selectLineChanges(changes, [headers[1]!], lines).selected], [2]);
  assert.deepEqual([...selectLineChanges(changes, [changes[1]!], lines).selected], [1]);
  const stale = { oldStart: 40, oldEnd: 41, newStart: 40, newEnd: 41 };
  assert.deepEqual(selectLineChanges(changes, [stale], lines).unmatched, [stale]);
});

test("a range that is not a hunk of the file matches nothing: past its end, or with sides that do not line up", () => {
  const changes = computeLineChanges(splitLines(OLD), splitLines(NEW));
  const lines = { old: splitLines(OLD).length, new: splitLines(NEW).length };
  const everything = { oldStart: 0, oldEnd: 1e15, newStart: 0, newEnd: 1e15 };
  assert.deepEqual(selectLineChanges(changes, [everything], lines), { selected: new Set(), unmatched: [everything] });
  // Context lines are the same lines on both sides: one more line before on the old side only is not a hunk.
  const first = changes[0]!;
  const skewed = { oldStart: first.oldStart - 1, oldEnd: first.oldEnd, newStart: first.newStart, newEnd: first.newEnd };
  assert.deepEqual(selectLineChanges(changes, [skewed], lines).unmatched, [skewed]);
  // The whole file on both sides is one (large) hunk: every change.
  const whole = { oldStart: 0, oldEnd: lines.old, newStart: 0, newEnd: lines.new };
  assert.equal(selectLineChanges(changes, [whole], lines).selected.size, changes.length);
});

const text = fc.array(fc.constantFrom("a\n", "b\n", "c\n", "d\n", "e", ""), { maxLength: 30 }).map((l) => l.join(""));

test("property: a subset of changes applied is exactly those changes: its size, and what is left on each side", () => {
  fc.assert(
    fc.property(text, text, fc.func(fc.boolean()), (oldText, newText, pick) => {
      const oldLines = splitLines(oldText);
      const newLines = splitLines(newText);
      const changes = computeLineChanges(oldLines, newLines);
      const chosen = changes.map((c, i) => pick(c, i));
      const partial = splitLines(applyLineChanges(oldLines, newLines, changes, (_c, i) => chosen[i]!));
      // Each chosen change swaps its old lines for its new ones; nothing else moves.
      const grows = changes.reduce((sum, c, i) => sum + (chosen[i] ? c.newEnd - c.newStart - (c.oldEnd - c.oldStart) : 0), 0);
      assert.equal(partial.length, oldLines.length + grows);
      // The old text is at most the chosen changes away, the new one at most the others.
      const count = chosen.filter(Boolean).length;
      assert.ok(computeLineChanges(oldLines, partial).length <= count);
      assert.ok(computeLineChanges(partial, newLines).length <= changes.length - count);
      assert.equal(applyLineChanges(oldLines, newLines, changes, () => true), newText);
      assert.equal(applyLineChanges(oldLines, newLines, changes, () => false), oldText);
    }),
    { numRuns: 500 },
  );
});

test("property: git apply takes the formatted hunks and gets the new text", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-hunks-"));
  try {
    fc.assert(
      fc.property(text, text, (oldText, newText) => {
        const oldLines = splitLines(oldText);
        const newLines = splitLines(newText);
        const changes = computeLineChanges(oldLines, newLines);
        if (changes.length === 0) return;
        fs.writeFileSync(path.join(dir, "f"), oldText);
        const patch = `--- a/f\n+++ b/f\n${formatUnifiedHunks(oldLines, newLines, changes)}`;
        execFileSync("git", ["apply", "--unidiff-zero", "-"], { cwd: dir, input: patch, stdio: ["pipe", "ignore", "pipe"] });
        assert.equal(fs.readFileSync(path.join(dir, "f"), "utf8"), newText);
      }),
      { numRuns: 100 },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
