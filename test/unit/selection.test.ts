/** How a review request's paths select among a sandbox's changes (agent/review/target.ts). */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Change } from "../../protocol/methods";
import { byPath, compareLike, forcedPaths, PathCover, select } from "../../agent/review/target";

const name = fc.constantFrom("a", "b", "a b", "a-b", "ab", "é", "z", ".x", "a.b");
const relPath = fc.array(name, { minLength: 1, maxLength: 4 }).map((parts) => parts.join("/"));

function file(path: string, kind: Change["kind"] = "added"): Change {
  return { path, kind, type: "file" } as Change;
}

/** The definition: a folder comes right before what it holds; names compare as strings. */
function componentOrder(a: string, b: string): number {
  const [ka, kb] = [a.split("/"), b.split("/")];
  for (let i = 0; i < Math.min(ka.length, kb.length); i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
  return ka.length - kb.length;
}

test("changes sort by their path's folders, each folder right before what it holds", () => {
  fc.assert(
    fc.property(relPath, relPath, (a, b) => Math.sign(compareLike(a, b)) === Math.sign(componentOrder(a, b))),
    { numRuns: 2000 },
  );
  assert.deepEqual(
    byPath(["a b", "a/b", "a", "a-b/c", "a/b/c"].map((p) => file(p))).map((c) => c.path),
    ["a", "a/b", "a/b/c", "a b", "a-b/c"],
  );
});

test("a path selects itself and everything below it, and names no other; a path that selects nothing is unknown", () => {
  fc.assert(
    fc.property(fc.uniqueArray(relPath, { maxLength: 20 }), fc.array(relPath, { maxLength: 8 }), (changed, asked) => {
      const selection = select(changed.map((p) => file(p)), asked, undefined);
      const covers = (c: string, p: string) => c === p || c.startsWith(`${p}/`);
      const expected = changed.filter((c) => asked.some((p) => covers(c, p))).sort(componentOrder);
      assert.deepEqual(selection.paths.map((c) => c.path), expected);
      assert.deepEqual(selection.unknown, asked.filter((p) => !changed.some((c) => covers(c, p))));
    }),
    { numRuns: 500 },
  );
});

test("a cover and a force list hold a path and what is below it, never a sibling that shares its prefix", () => {
  const cover = new PathCover(["src", "docs/a"]);
  assert.ok(cover.covers("src") && cover.covers("src/x/y") && cover.covers("docs/a/b"));
  assert.ok(!cover.covers("srcx") && !cover.covers("docs") && !cover.covers("docs/ab"));
  assert.ok(cover.coversBelow("src/x") && !cover.coversBelow("src"));
  assert.deepEqual([...new PathCover(["a", "a/b"]).coveringOf("a/b/c")], ["a/b", "a"]);
  assert.ok(forcedPaths(true)("anything"));
  assert.ok(!forcedPaths(undefined)("anything") && !forcedPaths(false)("anything"));
  assert.ok(forcedPaths(["src"])("src/x") && !forcedPaths(["src"])("srcx"));
});

test("selecting 5,000 named paths among 5,000 changes looks at each once, not each against each", () => {
  // Counted, not timed: the lookups and prefix tests the selection makes stay near the number of changes.
  const changes = Array.from({ length: 5_000 }, (_, i) => file(`d${i % 100}/f${i}`));
  const asked = changes.map((c) => c.path);
  let steps = 0;
  const has = Set.prototype.has;
  const startsWith = String.prototype.startsWith;
  Set.prototype.has = function (this: Set<unknown>, value: unknown) {
    steps++;
    return has.call(this, value);
  };
  String.prototype.startsWith = function (this: string, search: string, position?: number) {
    steps++;
    return startsWith.call(this, search, position);
  };
  try {
    const selection = select(changes, asked, undefined, { newFolders: true });
    assert.equal(selection.paths.length, 5_000);
    assert.deepEqual(selection.unknown, []);
  } finally {
    Set.prototype.has = has;
    String.prototype.startsWith = startsWith;
  }
  assert.ok(steps < 5_000 * 20, `${steps} steps for 5,000 paths`);
});
