/** The extension's pure parts: the tree's shape, paddock: URIs, changes VS Code shows to hunk selectors. */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Change, HunkSelector, Sandbox } from "../../protocol/methods";
import { buildTree, fileNodes, MAX_FILES_IN_VIEW } from "../../extension/views/tree-model";
import { ageLabel, networkLabel, runtimeLabel } from "../../extension/sandboxes/describe";
import { changeRows } from "../../extension/sandboxes/change-rows";
import { saysNoResolution } from "../../extension/terminal/no-resolution";
import { parseSandboxQuery, relativeTo, sandboxQuery } from "../../extension/common/uri";
import { changeAtLine, selectorOfChange, selectorOfMapping, selectorOfPeekChange } from "../../extension/review/hunk-selectors";
import { createOptions } from "../../extension/sandboxes/create-options";
import { applyLineChanges, computeLineChanges, selectLineChanges, splitLines } from "../../agent/review/line-changes";

const sandbox = (id: string, workspace: string, state: Sandbox["state"] = "running", createdAt = "2026-11-22T10:00:00Z"): Sandbox => ({
  id,
  name: `name-${id.slice(-2)}`,
  workspace,
  runtime: "process",
  state,
  network: "none",
  limits: {},
  createdAt,
  ownerUid: 0,
});

test("tree: sandboxes under their folder in creation order, the rest under Other folders", () => {
  const tree = buildTree(
    [{ name: "app", path: "/src/app" }, { name: "lib", path: "/src/lib" }],
    [sandbox("sbx-000000000002", "/src/app", "stopped", "2026-11-22T11:00:00Z"), sandbox("sbx-000000000001", "/src/app"), sandbox("sbx-000000000003", "/elsewhere")],
    new Map([["sbx-000000000001", 3]]),
  );
  assert.deepEqual(tree.map((f) => [f.name, f.sandboxes.map((s) => s.sandbox.id)]), [
    ["app", ["sbx-000000000001", "sbx-000000000002"]],
    ["lib", []],
    ["Other folders", ["sbx-000000000003"]],
  ]);
  const [running, stopped] = tree[0]!.sandboxes;
  assert.equal(running!.description, "process · offline · 3 changes");
  assert.equal(running!.contextValue, "sandbox.running.changed");
  assert.equal(stopped!.description, "stopped · process · offline");
  assert.equal(stopped!.contextValue, "sandbox.stopped");
  const now = Date.parse("2026-11-22T10:05:00Z");
  const [container] = buildTree([{ name: "app", path: "/src/app" }], [{ ...sandbox("sbx-000000000004", "/src/app"), runtime: "container", network: "nat", image: { name: "paddock/busybox:latest", digest: `sha256:${"ab".repeat(32)}` } }], new Map([["sbx-000000000004", 0]]), now)[0]!.sandboxes;
  assert.equal(container!.description, "container busybox:latest · NAT · 0 changes", "a container says its runtime and image");
  assert.equal(container!.contextValue, "sandbox.running", "nothing to review: no .changed");
  assert.match(container!.tooltip, /^container busybox:latest \(sha256:abababababab\), running, NAT$/m);
  assert.match(container!.tooltip, /^created 5 min ago \(/m);
});

test("describe: runtimes, networks and ages in words; change rows one per path", () => {
  assert.equal(runtimeLabel({ runtime: "vm", vm: { accelerator: "tcg" } }), "VM (TCG)");
  assert.equal(runtimeLabel({ runtime: "container", image: { name: "debian:12", digest: "" } }), "container debian:12");
  assert.deepEqual((["none", "host", "nat"] as const).map(networkLabel), ["offline", "host network", "NAT"]);
  const at = Date.parse("2026-11-22T10:00:00Z");
  assert.deepEqual([0, 59, 60, 3599, 3600, 86_399].map((s) => ageLabel("2026-11-22T10:00:00Z", at + s * 1000)), ["just now", "just now", "1 min ago", "59 min ago", "1 h ago", "23 h ago"]);
  const change = (path: string, kind: Change["kind"], type: Change["type"], note?: string) => ({ path, kind, type, ...(note ? { note } : {}) }) as Change;
  assert.deepEqual(
    changeRows([change("a", "deleted", "file"), change("a", "added", "symlink"), change("d", "added", "directory"), change("d/x", "added", "file"), change("m", "modified", "directory"), change("deep", "added", "directory", "too deep")]),
    [{ path: "a", kind: "modified" }, { path: "d/x", kind: "added" }, { path: "m", kind: "modified" }, { path: "deep", kind: "added", note: "too deep" }],
  );
  const many = Array.from({ length: MAX_FILES_IN_VIEW + 5 }, (_, i) => ({ path: `f${i}`, kind: "added" as const }));
  const nodes = fileNodes(sandbox("sbx-000000000005", "/src/app"), many);
  assert.equal(nodes.length, MAX_FILES_IN_VIEW + 1);
  assert.deepEqual(nodes.at(-1), { kind: "more", sandboxId: "sbx-000000000005", count: 5 });
});

test("paddock: URIs name a sandbox in their query, and paths stay inside its workspace", () => {
  assert.equal(sandboxQuery("sbx-0123456789ab"), "sandbox=sbx-0123456789ab");
  assert.deepEqual(parseSandboxQuery(sandboxQuery("sbx-0123456789ab", { empty: true })), { id: "sbx-0123456789ab", empty: true, readonly: false, base: false });
  assert.deepEqual(parseSandboxQuery(sandboxQuery("sbx-0123456789ab", { readonly: true })), { id: "sbx-0123456789ab", empty: false, readonly: true, base: false });
  assert.deepEqual(parseSandboxQuery(sandboxQuery("sbx-0123456789ab", { base: true })), { id: "sbx-0123456789ab", empty: false, readonly: true, base: true }, "the base is never written");
  assert.deepEqual(parseSandboxQuery("sandbox=sbx-0123456789ab"), { id: "sbx-0123456789ab", empty: false, readonly: false, base: false });
  for (const bad of ["", "sandbox=sbx-xyz", "sandbox=../x", "other=sbx-0123456789ab"]) assert.equal(parseSandboxQuery(bad), undefined, bad);
  assert.equal(relativeTo("/w/app", "/w/app/src/a b.ts"), "src/a b.ts");
  assert.equal(relativeTo("/w/app", "/w/app"), "");
  for (const outside of ["/w/application/x.ts", "/w/app/../etc/passwd", "/w/app//x", "/w/app/./x", "/etc/passwd"]) assert.equal(relativeTo("/w/app", outside), undefined, outside);
});

test("hunk selectors: the peek's, the diff gutter's and the cursor's change each select the agent's hunk", () => {
  const workspace = "a\nb\nc\nd\ne\nf\n";
  const sandboxText = "a\nB\nc\nd\nnew\ne\nf\n";
  // What the agent computes (workspace → sandbox): b→B at 1, and an insertion before e.
  const oldLines = splitLines(workspace);
  const newLines = splitLines(sandboxText);
  const changes = computeLineChanges(oldLines, newLines);
  const selects = (selector: HunkSelector) => {
    const { selected, unmatched } = selectLineChanges(changes, [selector], { old: oldLines.length, new: newLines.length });
    assert.deepEqual(unmatched, []);
    return [...selected];
  };
  // The peek on the sandbox's file: original = workspace, modified = sandbox, 1-based; an end of 0 = empty.
  assert.deepEqual(selects(selectorOfPeekChange("f", { originalStartLineNumber: 2, originalEndLineNumber: 2, modifiedStartLineNumber: 2, modifiedEndLineNumber: 2 })), [0]);
  assert.deepEqual(selects(selectorOfPeekChange("f", { originalStartLineNumber: 4, originalEndLineNumber: 0, modifiedStartLineNumber: 5, modifiedEndLineNumber: 5 })), [1]);
  // The diff editor's gutter: 1-based, end exclusive.
  assert.deepEqual(selects(selectorOfMapping("f", { original: { startLineNumber: 2, endLineNumberExclusive: 3 }, modified: { startLineNumber: 2, endLineNumberExclusive: 3 } })), [0]);
  assert.deepEqual(selects(selectorOfMapping("f", { original: { startLineNumber: 5, endLineNumberExclusive: 5 }, modified: { startLineNumber: 5, endLineNumberExclusive: 6 } })), [1]);
  // The cursor: on a changed line of the sandbox's version, or nowhere near a change.
  assert.deepEqual(selects(selectorOfChange("f", changeAtLine(changes, 4)!)), [1]);
  assert.equal(changeAtLine(changes, 2), undefined);
  // A deletion has no line of its own: the line after it, or the one before.
  const deletion = computeLineChanges(splitLines("a\nb\nc\n"), splitLines("a\nc\n"));
  assert.deepEqual(changeAtLine(deletion, 1), deletion[0]);
  assert.deepEqual(changeAtLine(deletion, 0), deletion[0]);
  assert.equal(applyLineChanges(oldLines, newLines, changes, (_c, i) => i === 1), "a\nb\nc\nd\nnew\ne\nf\n");
});

test("create options: each runtime gets the networks and limits it has; the rest is left out and said", () => {
  const settings = { network: "nat" as const, memoryMiB: 256, pids: 100, cpus: 0 };
  assert.deepEqual(createOptions("container", settings), { network: "nat", limits: { memoryMiB: 256, pids: 100 } });
  assert.deepEqual(createOptions("vm", settings), { network: "nat", limits: { memoryMiB: 256 } }, "no pids limit for a VM");
  assert.deepEqual(createOptions("process", settings), { network: "none", limits: { memoryMiB: 256, pids: 100 }, networkNote: { wanted: "nat", runtime: "process" } });
  assert.deepEqual(createOptions("vm", { ...settings, network: "host" }).networkNote, { wanted: "host", runtime: "vm" });
  assert.deepEqual(createOptions("process", { network: "host", memoryMiB: 0, pids: 0, cpus: 1.5 }), { network: "host", limits: { cpus: 1.5 } });
});

test("offline hint: the resolver errors of curl, wget, getent, git, npm and busybox say no network; others do not", () => {
  for (const said of [
    "curl: (6) Could not resolve host: registry.npmjs.org",
    "wget: unable to resolve host address 'x'... Temporary failure in name resolution",
    "fatal: unable to access 'https://github.com/a/b/': Could not resolve host: github.com",
    "npm ERR! request to https://registry.npmjs.org/x failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org",
    "Error: getaddrinfo ENOTFOUND example.com",
    "wget: bad address 'example.com'",
    "ping: example.com: Name or service not known",
  ]) assert.equal(saysNoResolution(said), true, said);
  for (const other of ["curl: (7) Failed to connect to 127.0.0.1 port 80", "Could not open file", "resolved 3 packages"]) assert.equal(saysNoResolution(other), false, other);
});
