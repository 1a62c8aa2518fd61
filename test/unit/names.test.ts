/** File names as bytes, as the agent's strings and as clients see them; and how requests name them. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { byteLength, displayPath, hasRawBytes, nameBytes, nameFromBytes, parseDisplayPath } from "../../agent/sys/names";
import { gitQuote } from "../../agent/review/patch";
import { exactChanges, ShownPaths } from "../../agent/review/client-paths";
import { holdBackDeepTrees } from "../../agent/review/requests";
import type { Change } from "../../protocol/methods";

const latin1 = (s: string) => Buffer.from(s, "latin1");

test("any bytes round-trip through the agent's string, and UTF-8 names are their own string", () => {
  for (let i = 0; i < 2000; i++) {
    const bytes = randomBytes(1 + (i % 40));
    assert.deepEqual(nameBytes(nameFromBytes(bytes)), bytes);
  }
  for (const name of ["plain.txt", "naïve café", "emoji 😀 and U+10080 \u{10080}", "a\\xFF", "\ufffd"]) {
    assert.equal(nameFromBytes(Buffer.from(name)), name);
    assert.equal(hasRawBytes(name), false);
  }
  // Overlong forms, encoded surrogates, lone continuation bytes and truncated sequences are raw bytes.
  for (const bad of ["\xc0\xaf", "\xed\xa0\x80", "\x80", "\xe2\x82", "\xf4\x90\x80\x80", "ok\xff"]) {
    const name = nameFromBytes(latin1(bad));
    assert.ok(hasRawBytes(name), JSON.stringify(bad));
    assert.deepEqual(nameBytes(name), latin1(bad));
    assert.equal(byteLength(name), latin1(bad).length);
  }
  // Valid sequences next to raw bytes stay characters.
  assert.equal(displayPath(nameFromBytes(Buffer.concat([Buffer.from("é"), latin1("\xff"), Buffer.from("😀")]))), "é\\xFF😀");
});

test("shown paths escape only components that are not UTF-8, and parse back to the exact name", () => {
  const exact = nameFromBytes(latin1("dir\\x\xff/file\xfe.txt"));
  assert.equal(displayPath(exact), "dir\\\\x\\xFF/file\\xFE.txt");
  assert.equal(parseDisplayPath(displayPath(exact)), exact);
  assert.equal(displayPath(nameFromBytes(latin1("ok/a\\b/\xff"))), "ok/a\\b/\\xFF", "a UTF-8 component keeps its backslashes");
  for (let i = 0; i < 2000; i++) {
    const name = nameFromBytes(randomBytes(1 + (i % 30)));
    assert.equal(parseDisplayPath(displayPath(name)), name);
  }
  // What displayPath never makes is literal: escapes of ASCII, of valid UTF-8, stray backslashes.
  for (const literal of ["a\\x41", "\\xC3\\xA9", "a\\qb\\xFF", "plain", "a\\xff"]) assert.equal(parseDisplayPath(literal), literal);
});

test("git quotes a raw byte as its octal escape", () => {
  assert.equal(gitQuote(`b/${nameFromBytes(latin1("bad\xff\xfe.txt"))}`), '"b/bad\\377\\376.txt"');
  assert.equal(gitQuote("b/naïve.txt"), "b/naïve.txt");
  assert.equal(gitQuote('b/"q"'), '"b/\\"q\\""');
});

function change(path: string, extra: Partial<Change> = {}): Change {
  return { path, kind: "added", type: "file", binary: false, size: 1, mode: 0o644, ...extra };
}

const raw = (bytes: string) => {
  const exact = nameFromBytes(latin1(bytes));
  return change(displayPath(exact), { pathBytes: nameBytes(exact).toString("base64") });
};

test("a request's shown path selects every change shown so, and folders above them", () => {
  const listed = [raw("d\xff/in.txt"), raw("x\xff"), change("x\\xFF"), change("plain.txt")];
  const shown = new ShownPaths(listed);
  assert.deepEqual(shown.resolve("plain.txt"), ["plain.txt"]);
  assert.deepEqual(shown.resolve("d\\xFF"), [nameFromBytes(latin1("d\xff"))]);
  assert.deepEqual(shown.resolve("d\\xFF/in.txt"), [nameFromBytes(latin1("d\xff/in.txt"))]);
  assert.deepEqual(shown.resolve("x\\xFF"), ["x\\xFF", nameFromBytes(latin1("x\xff"))], "a look-alike UTF-8 name is selected beside the raw one");
  assert.deepEqual(shown.resolve("missing"), ["missing"]);
  assert.deepEqual(exactChanges(listed).map((c) => [c.path, c.pathBytes]), [
    [nameFromBytes(latin1("d\xff/in.txt")), undefined],
    [nameFromBytes(latin1("x\xff")), undefined],
    ["x\\xFF", undefined],
    ["plain.txt", undefined],
  ]);
});

test("approve holds a deep tree back whole, and says so when the request covers it", () => {
  const changes = [change("deep", { type: "directory", deepTree: true }), change("deep/a.txt"), change("deep/sub", { type: "directory" }), change("other.txt"), change("top/deep2", { type: "directory", deepTree: true })];
  const all = holdBackDeepTrees(changes, {});
  assert.deepEqual(all.changes.map((c) => c.path), ["other.txt"]);
  assert.deepEqual(all.skipped.map((s) => s.path), ["deep", "top/deep2"]);
  assert.match(all.skipped[0]!.reason, /longer than 4095 bytes/);

  const inside = holdBackDeepTrees(changes, { paths: ["deep/a.txt", "other.txt"] });
  assert.deepEqual(inside.request.paths, ["other.txt"], "a path inside the tree is not also reported unknown");
  assert.deepEqual(inside.skipped.map((s) => s.path), ["deep"]);

  const above = holdBackDeepTrees(changes, { paths: ["top"] });
  assert.deepEqual(above.request.paths, ["top"]);
  assert.deepEqual(above.skipped.map((s) => s.path), ["top/deep2"]);

  assert.deepEqual(holdBackDeepTrees(changes, { paths: ["other.txt"] }).skipped, [], "a request that does not cover it says nothing of it");
});
