/**
 * Reading a sandbox without entering it: one path as the sandbox sees it (its upper
 * directory over the workspace, as overlayfs would resolve it), and the patch of its changes.
 */
import { PaddockError } from "../../protocol/errors";
import type { Change, DiffResult, ReadFileResult } from "../../protocol/methods";
import { isOpaque } from "../changeset/changes";
import type { UpperFormat } from "../changeset/upper-format";
import { BeneathError, childOf, parentOf, type Beneath } from "../sys/beneath";
import { displayPath, hasRawBytes, nameBytes, parseDisplayPath } from "../sys/names";
import { baseToDiffAgainst } from "./against-base";
import type { BaseStore } from "./bases";
import { exactChanges, ShownPaths } from "./client-paths";
import { entryBytes, readEntry, type Entry } from "./entries";
import { diffItem, type PatchItem, type PatchSide } from "./patch";
import { byPath, select } from "./target";

/** The largest file read or diffed as text; larger ones are named as binary in a patch. */
export const MAX_TEXT_BYTES = 16 * 1024 * 1024;
/** The largest file sandbox/readFile returns (base64 in one JSON answer). */
export const MAX_READ_BYTES = 32 * 1024 * 1024;

interface Found {
  tree: Beneath;
  entry: Entry;
  /** Whether the workspace's entries show through (a directory that is not opaque, or not in the upper dir). */
  lowerVisible: boolean;
}

/** Resolves `rel` as the sandbox's overlay does: upper first, whiteouts and opaque directories hide the workspace. */
export function lookup(format: UpperFormat, upper: Beneath, ws: Beneath, rel: string): Found | undefined {
  const parts = rel.split("/");
  if (parts.some((p) => format.isMark(p))) return undefined;
  let lowerVisible = true;
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join("/");
    const parent = parentOf(prefix);
    const st = upper.lstat(prefix);
    if (st && format.isWhiteoutDevice(st)) return undefined;
    if (!st) {
      const whiteout = format.whiteoutFileFor(parts[i - 1]!);
      if (!lowerVisible || (whiteout !== undefined && upper.lstat(childOf(parent, whiteout)))) return undefined;
      // Nothing of the rest is in the upper directory: the workspace's entry, if any.
      const entry = readEntry(ws, rel);
      return entry ? { tree: ws, entry, lowerVisible: true } : undefined;
    }
    const opaque = st.isDirectory() && isOpaque(format, upper, prefix);
    if (i === parts.length) {
      const entry = readEntry(upper, prefix)!;
      return { tree: upper, entry, lowerVisible: lowerVisible && !opaque && readEntry(ws, rel)?.type === "directory" };
    }
    if (!st.isDirectory()) return undefined;
    if (opaque) lowerVisible = false;
    if (lowerVisible && readEntry(ws, prefix)?.type !== "directory") lowerVisible = false;
  }
  return undefined;
}

/**
 * One path as the sandbox sees it. `shown` is a path as clients see it: the name itself, or
 * else the name that is not UTF-8 it shows (sys/names.ts).
 */
export function readSandboxFile(format: UpperFormat, upper: Beneath, ws: Beneath, shown: string): ReadFileResult {
  const exact = parseDisplayPath(shown);
  let rel = shown;
  let found = lookup(format, upper, ws, rel);
  if (!found && exact !== shown) found = lookup(format, upper, ws, (rel = exact));
  if (!found) throw new PaddockError("E_NOT_FOUND", `${shown} does not exist in the sandbox`, "sandbox/changes lists what the sandbox changed");
  const { entry, tree } = found;
  const result: ReadFileResult = { path: shown, type: entry.type, mode: entry.mode, size: entry.stat.size, mtimeMs: Math.round(entry.stat.mtimeMs), content: "" };
  if (entry.type === "file") {
    if (entry.stat.size > MAX_READ_BYTES) throw new PaddockError("E_FILE_TOO_LARGE", `${shown} is ${entry.stat.size} bytes; sandbox/readFile returns at most ${MAX_READ_BYTES}`, "run a command in the sandbox to read it");
    result.content = tree.readFile(rel).toString("base64");
  } else if (entry.type === "symlink") {
    result.target = displayPath(entry.target ?? "");
  } else if (entry.type === "directory") {
    result.entries = listDirectory(format, upper, ws, rel, found).map(displayPath);
  }
  return result;
}

/** A directory's names as the sandbox sees them. */
function listDirectory(format: UpperFormat, upper: Beneath, ws: Beneath, rel: string, found: Found): string[] {
  const names = new Set<string>();
  const hidden = new Set<string>();
  const prefix = rel === "" ? "" : `${rel}/`;
  if (found.tree === upper) {
    for (const name of upper.readdir(rel)) {
      if (format.isOpaqueMarker(name)) continue;
      const deleted = format.deletedBy(name);
      if (deleted !== undefined) hidden.add(deleted);
      else {
        const st = upper.lstat(`${prefix}${name}`);
        if (st && format.isWhiteoutDevice(st)) hidden.add(name);
        else if (st) names.add(name);
      }
    }
  }
  if (found.lowerVisible || found.tree === ws) {
    for (const name of safeReaddir(ws, rel)) if (!hidden.has(name)) names.add(name);
  }
  return [...names].sort();
}

function safeReaddir(tree: Beneath, rel: string): string[] {
  try {
    return tree.readdir(rel);
  } catch {
    return [];
  }
}

function side(tree: Beneath, rel: string, entry: Entry | undefined): PatchSide | undefined {
  if (entry?.type !== "file" && entry?.type !== "symlink") return undefined;
  // A file too large to diff, or that the owner may not read, is compared as binary: named, not read.
  const named = Buffer.from([0, entry.stat.size & 0xff]);
  const bytes = entry.type === "file" && entry.stat.size > MAX_TEXT_BYTES ? named : readableBytes(tree, rel, entry, named);
  return { type: entry.type, mode: entry.mode, bytes };
}

function readableBytes(tree: Beneath, rel: string, entry: Entry, otherwise: Buffer): Buffer {
  try {
    return entryBytes(tree, rel, entry);
  } catch (err) {
    if (err instanceof BeneathError && err.code === "EACCES") return otherwise;
    throw err;
  }
}

/** The patch of the listed changes (all, or those below `paths`, as clients show them). */
export function diffChanges(upper: Beneath, ws: Beneath, bases: BaseStore, listed: readonly Change[], paths: readonly string[] | undefined, context: number): DiffResult {
  const changes = exactChanges(listed);
  const selection = paths === undefined ? byPath(changes) : select(changes, new ShownPaths(listed).paths(paths), undefined).paths;
  const items: PatchItem[] = [];
  for (const change of selection) {
    const rel = change.path;
    const workspace = readEntry(ws, rel);
    const newSide = change.current ? side(upper, rel, readEntry(upper, rel)) : undefined;
    // The workspace moved on since the sandbox's base: what the sandbox did is the diff from the base.
    const base = newSide?.type === "file" && bases.has(rel) ? baseToDiffAgainst(ws, rel, bases.get(rel)) : undefined;
    const oldSide = base && workspace ? { type: "file" as const, mode: workspace.mode, bytes: base } : side(ws, rel, workspace);
    if (!oldSide && !newSide) continue;
    if (oldSide && newSide && oldSide.type !== newSide.type) {
      // A type change is a deletion and a creation, as git prints it.
      items.push({ path: rel, old: oldSide }, { path: rel, new: newSide });
    } else {
      items.push({ path: rel, ...(oldSide ? { old: oldSide } : {}), ...(newSide ? { new: newSide } : {}) });
    }
  }
  const diffs = items.map((item) => diffItem(item, context));
  // git apply refuses a binary diff without its data, and data is not for a review: binary
  // files are named before the first diff, where git apply and patch skip the text.
  const binary = items.filter((_item, i) => diffs[i]!.binary);
  const preamble = binary.length === 0 ? "" : `Binary files, not included (sandbox/readFile has them):\n${binary.map((item) => `  ${item.old ? (item.new ? "modified" : "deleted") : "added"}: ${displayPath(item.path)}\n`).join("")}`;
  return {
    patch: preamble + diffs.filter((d) => !d.binary).map((d) => d.text).join(""),
    files: diffs.map(({ path: p, binary, changes: c }) => ({ path: displayPath(p), ...(hasRawBytes(p) ? { pathBytes: nameBytes(p).toString("base64") } : {}), binary, changes: c })),
  };
}
