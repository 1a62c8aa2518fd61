/**
 * What a sandbox changed, read from its upper directory alone (so the cost follows the
 * number of changes, not the workspace's size), with the workspace consulted only for the
 * paths the upper directory names.
 *
 * The upper directory's language (upper-format.ts says which marks its overlay writes): a
 * file or directory that is there was written; a whiteout deletes NAME; an opaque directory
 * hides everything the workspace had below it. A redirect or metacopy attribute would make
 * an entry mean something else: it is refused, never guessed at.
 */
import * as fs from "node:fs";
import { PaddockError } from "../../protocol/errors";
import type { Change } from "../../protocol/methods";
import { Beneath, BeneathError, childOf, Folder, MAX_PATH_BYTES, O_DIRECTORY, parentOf, type FolderEntry } from "../sys/beneath";
import { withUserRights, type UserRights } from "../sys/credentials";
import { byteLength, displayPath, hasRawBytes, nameBytes, nameFromBytes } from "../sys/names";
import { nextTurn, SLICE_MS } from "../sys/pacer";
import type { UpperFormat } from "./upper-format";

/** Bytes looked at to tell binary from text, as git does. */
const BINARY_SNIFF = 8000;
const O_NONBLOCK = 0o4000;

/** What the listing needs of one upper entry, from a single open where it can be opened. */
interface Probe {
  stat: fs.Stats;
  /** Overlay attributes, prefix removed (most entries have none). */
  attributes: Map<string, string>;
  /** Regular files: a NUL byte in the first 8000 bytes. */
  binary: boolean;
}

/**
 * Opens an entry of an upper folder once (by its name through the folder's descriptor, so a
 * path swapped meanwhile is not followed) for its status, overlay attributes and, for files,
 * the binary sniff. Symlinks, whiteouts and sockets cannot be opened that way: their status alone.
 */
function probe(format: UpperFormat, folder: Folder, name: string, listedAs?: FolderEntry): Probe | undefined {
  let fd: number;
  try {
    // Only what the directory lists as a file or a folder is opened (never a device node).
    if (listedAs && !listedAs.isFile() && !listedAs.isDirectory()) throw new BeneathError("ENXIO", name);
    fd = folder.open(name, fs.constants.O_RDONLY | O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    if (!(err instanceof BeneathError) || !["ELOOP", "ENXIO", "ENODEV", "EACCES"].includes(err.code)) throw err;
    const stat = folder.lstat(name);
    return stat && { stat, attributes: new Map(), binary: false };
  }
  try {
    const stat = fs.fstatSync(fd);
    return { stat, attributes: format.attributes(fd), binary: stat.isFile() && sniff(fd) };
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the upper folder `rel` hides the workspace's entries below it. */
export function isOpaque(format: UpperFormat, upper: Beneath, rel: string, names?: string[], known?: Probe): boolean {
  if ((names ?? upper.readdir(rel)).some((name) => format.isOpaqueMarker(name))) return true;
  if (known) return known.attributes.get("opaque") === "y";
  const fd = upper.open(rel, fs.constants.O_RDONLY | O_DIRECTORY);
  try {
    return format.attributes(fd).get("opaque") === "y";
  } finally {
    fs.closeSync(fd);
  }
}

function typeOf(st: fs.Stats): Change["type"] {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  return "other";
}

const sniffBuffer = Buffer.alloc(BINARY_SNIFF);

function sniff(fd: number): boolean {
  return sniffBuffer.subarray(0, fs.readSync(fd, sniffBuffer, 0, BINARY_SNIFF, 0)).includes(0);
}

function sameContent(upper: Folder, lower: Folder, name: string, size: number): boolean {
  if (size > 64 * 1024 * 1024) return false; // big files: reported, not compared
  const before = quietly(() => lower.readFile(name));
  return before !== undefined && upper.readFile(name).equals(before);
}

/** Entries that vanish or turn into something else while they are read were being changed: skipped. */
function isRace(err: unknown): boolean {
  return err instanceof BeneathError && ["ENOENT", "ENOTDIR", "ELOOP", "not a regular file"].includes(err.code);
}

export const DEEP_TREE_NOTE = `holds paths longer than ${MAX_PATH_BYTES} bytes (PATH_MAX), which cannot be listed or approved one by one; reject the folder, or move what it holds to a shorter path in the sandbox`;

/**
 * The changes of an upper directory over a workspace. Each upper folder is opened once, with
 * the workspace's folder of the same path, and their entries are reached by name through the
 * two descriptors (sys/beneath.ts's Folder); names are taken as their bytes (sys/names.ts).
 * A path longer than a system call takes is not listed: the folder it is in is reported
 * instead, as the top of a deep tree (see DEEP_TREE_NOTE).
 *
 * It is listed a slice at a time (sys/pacer.ts) with the owner's rights, and the agent
 * serves others between slices: a sandbox of 100,000 changes takes seconds to list, and no
 * other client waits for it. The owner's rights are never left in force across a wait.
 */
export async function listChanges(upperRoot: string, workspace: string, format: UpperFormat, rights?: UserRights): Promise<Change[]> {
  // The upper directory's own path is the agent's (in its state dir); everything else is read
  // with the owner's rights, the workspace's path included: a listing says nothing of what
  // the owner could not see in a shell (a folder of root's swapped in, a file they cannot read).
  const upper = Beneath.open(upperRoot, rights);
  try {
    const ws = withUserRights(rights, () => Beneath.open(workspace, rights));
    try {
      const steps = listSteps(format, upper, ws);
      for (;;) {
        // The rights are switched once per slice, not per step (a switch costs about 30 µs).
        const changes = withUserRights(rights, () => runFor(steps, SLICE_MS));
        if (changes) return changes;
        await nextTurn();
      }
    } finally {
      ws.close();
    }
  } finally {
    upper.close();
  }
}

/** Runs steps for about `ms`; their result if they ended meanwhile. */
function runFor<T>(steps: Generator<void, T>, ms: number): T | undefined {
  const until = performance.now() + ms;
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() >= until) return undefined;
  }
}

/** A change as the agent works with it: `path` is the exact name. */
type Listed = Change;

/**
 * The listing as steps: each `next()` reads about one entry, and the last returns the changes.
 * Steps must run with the owner's rights in force; between them, other work may run.
 */
function* listSteps(format: UpperFormat, upper: Beneath, ws: Beneath): Generator<void, Change[]> {
  const changes: Listed[] = [];
  /** Folders (of either side) that hold paths too long to name. */
  const deep = new Set<string>();
  const describe = (rel: string, kind: Change["kind"], st: fs.Stats, binary: () => boolean): Listed => ({
    path: rel,
    kind,
    type: typeOf(st),
    binary: st.isFile() ? binary() : false,
    size: st.isFile() ? st.size : 0,
    mode: st.mode & 0o7777,
  });
  const tooLong = (rel: string) => byteLength(rel) > MAX_PATH_BYTES;

  /** The workspace's entry, reached through real folders only (a symlink on the way: none). */
  const lower = (rel: string): fs.Stats | undefined => quietly(() => ws.lstat(rel));

  // Trees are walked with a stack of their own, not by recursion: a chain of folders as deep as
  // a path can name (2048) would exhaust the call stack.

  /** Everything the workspace has at and below `rel`, reported deleted. */
  const deletedTree = function* (rel: string): Generator<void> {
    const pending = [rel];
    for (let at = pending.pop(); at !== undefined; at = pending.pop()) {
      yield;
      const st = lower(at);
      if (!st) continue;
      const here = at;
      changes.push(describe(here, "deleted", st, () => isBinaryIn(ws, here)));
      if (!st.isDirectory()) continue;
      for (const name of lowerNames(ws, here)) {
        if (tooLong(childOf(here, name))) deep.add(here);
        else pending.push(childOf(here, name));
      }
    }
  };
  const deletedChild = function* (dir: string, name: string): Generator<void> {
    if (tooLong(childOf(dir, name))) deep.add(dir);
    else yield* deletedTree(childOf(dir, name));
  };

  /** Upper folders still to list. */
  const folders: { rel: string; hidden: boolean; own?: Probe }[] = [];
  const walk = (rel: string, hidden: boolean, own?: Probe) => folders.push({ rel, hidden, ...(own ? { own } : {}) });

  /**
   * `hidden`: the workspace's entries below here are hidden (an opaque directory, or one
   * inside it): whatever the upper dir does not have again counts as deleted.
   */
  const listFolder = function* (rel: string, hidden: boolean, own?: Probe): Generator<void> {
    const folder = Folder.open(upper, rel);
    // The workspace is consulted only through real directories (reached without a symlink on
    // the way): a symlink put in place of one must not make the agent read (or list) what lies elsewhere.
    const lowerFolder = quietly(() => Folder.open(ws, rel, true));
    try {
      const listed = new Map(folder.entries().map((entry) => [entry.name, entry]));
      const names = [...listed.keys()].sort();
      const opaque = hidden || isOpaque(format, upper, rel, names, own);
      const present = new Set<string>();
      for (const name of names) {
        yield;
        if (format.isOpaqueMarker(name)) continue;
        const deleted = format.deletedBy(name);
        if (deleted !== undefined) {
          present.add(deleted);
          if (lowerFolder) yield* deletedChild(rel, deleted);
          continue;
        }
        if (tooLong(childOf(rel, name))) {
          present.add(name);
          deep.add(rel);
          continue;
        }
        try {
          const found = probe(format, folder, name, listed.get(name));
          if (!found) continue; // gone meanwhile
          present.add(name);
          yield* visit(rel, name, found, folder, lowerFolder, opaque);
        } catch (err) {
          // Changed while it was read (a running command): the next listing will see it settled.
          if (!isRace(err)) throw err;
        }
      }
      // Whatever the workspace has here that an opaque directory did not bring back is deleted.
      if (opaque && lowerFolder) {
        for (const name of lowerNames(ws, rel)) if (!present.has(name)) yield* deletedChild(rel, name);
      }
    } finally {
      folder.close();
      lowerFolder?.close();
    }
  };

  const visit = function* (dir: string, name: string, found: Probe, folder: Folder, lowerFolder: Folder | undefined, opaque: boolean): Generator<void> {
    const rel = childOf(dir, name);
    const { stat: st, attributes } = found;
    if (format.isWhiteoutDevice(st)) {
      if (lowerFolder) yield* deletedTree(rel);
      return;
    }
    for (const attribute of ["redirect", "metacopy"]) {
      if (attributes.has(attribute)) {
        throw new PaddockError(
          "E_UNSUPPORTED_CHANGE",
          `${displayPath(rel)} carries an overlay ${attribute} attribute; Paddock cannot tell what it means`,
          "sandboxes are mounted without redirects or metacopy; reject this path or delete the sandbox",
          { path: displayPath(rel) },
        );
      }
    }
    const binary = () => found.binary;
    const before = lowerFolder && quietly(() => lowerFolder.lstat(name));
    if (!lowerFolder || !before || typeOf(before) !== typeOf(st)) {
      if (before) yield* deletedTree(rel); // the type changed: the old one is gone
      changes.push(describe(rel, "added", st, binary));
      if (st.isDirectory()) walk(rel, true, found);
      return;
    }
    const modeChanged = (before.mode & 0o7777) !== (st.mode & 0o7777);
    if (st.isDirectory()) {
      if (modeChanged) changes.push(describe(rel, "modified", st, binary));
      walk(rel, opaque, found);
    } else if (st.isSymbolicLink()) {
      if (folder.readlink(name) !== quietly(() => lowerFolder.readlink(name))) changes.push(describe(rel, "modified", st, binary));
    } else if (st.isFile()) {
      // Copied up but ending identical (written back, touched) is not a change.
      const contentChanged = st.size !== before.size || !sameContent(folder, lowerFolder, name, st.size);
      if (contentChanged || modeChanged) changes.push(describe(rel, "modified", st, binary));
    } else {
      changes.push(describe(rel, "modified", st, binary));
    }
  };

  walk("", false);
  for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
    try {
      yield* listFolder(folder.rel, folder.hidden, folder.own);
    } catch (err) {
      // Changed while it was read (a running command): the next listing will see it settled.
      if (!isRace(err)) throw err;
    }
  }
  markDeepTrees(changes, deep, (rel) => quietly(() => upper.lstat(rel)) ?? lower(rel));
  return changes.map(forClients).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Each folder holding paths too long to name is reported at the top of its tree: the highest
 * folder that is new (or gone) with it, or the folder itself when it was there before. That
 * change carries the note (one is added for a folder that is not a change itself).
 */
function markDeepTrees(changes: Listed[], deep: ReadonlySet<string>, statOf: (rel: string) => fs.Stats | undefined): void {
  if (deep.size === 0) return;
  const wholeFolders = new Set(changes.filter((c) => c.type === "directory" && c.kind !== "modified").map((c) => c.path));
  const tops = new Set<string>();
  for (const folder of deep) {
    let top = folder;
    while (wholeFolders.has(top) && wholeFolders.has(parentOf(top))) top = parentOf(top);
    tops.add(top);
  }
  const atPath = new Map<string, Listed[]>();
  for (const change of changes) (atPath.get(change.path) ?? atPath.set(change.path, []).get(change.path)!).push(change);
  for (const top of tops) {
    const marked = atPath.get(top) ?? [];
    if (marked.length === 0) {
      const st = statOf(top);
      marked.push({ path: top, kind: "modified", type: "directory", binary: false, size: 0, mode: st ? st.mode & 0o7777 : 0 });
      changes.push(marked[0]!);
    }
    for (const change of marked) Object.assign(change, { deepTree: true, note: `${displayPath(top)} ${DEEP_TREE_NOTE}` });
  }
}

/** The change as clients see it: its path shown, and its bytes when they are not UTF-8. */
function forClients(change: Listed): Change {
  if (!hasRawBytes(change.path)) return change;
  return { ...change, path: displayPath(change.path), pathBytes: nameBytes(change.path).toString("base64") };
}

/** The exact name of a change as clients see it (the inverse of forClients). */
export function pathOf(change: Pick<Change, "path" | "pathBytes">): string {
  return change.pathBytes === undefined ? change.path : nameFromBytes(Buffer.from(change.pathBytes, "base64"));
}

/** A workspace file sniffed as git does; false when it cannot be read. */
function isBinaryIn(ws: Beneath, rel: string): boolean {
  return (
    quietly(() => {
      const { fd } = ws.openFile(rel);
      try {
        return sniff(fd);
      } finally {
        fs.closeSync(fd);
      }
    }) ?? false
  );
}

function lowerNames(ws: Beneath, rel: string): string[] {
  return (quietly(() => ws.readdir(rel)) ?? []).sort();
}

/** What the workspace side answers, or undefined when it cannot (gone, a symlink on the way, unreadable). */
function quietly<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (err) {
    if (err instanceof BeneathError) return undefined;
    throw err;
  }
}
