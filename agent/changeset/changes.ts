/**
 * What a sandbox changed, read from its upper directory alone (so the cost follows the
 * number of changes, not the workspace's size), with the workspace consulted only for the
 * paths the upper directory names.
 *
 * The upper directory's language: a file or directory that is there was written; a
 * whiteout (a 0/0 character device, or a `.wh.NAME` file as fuse-overlayfs and OCI layers
 * write) deletes NAME; an opaque directory (the `overlay.opaque` attribute, or a
 * `.wh..wh..opq` file) hides everything the workspace had below it. A redirect or metacopy
 * attribute would make an entry mean something else: it is refused, never guessed at.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../protocol/errors";
import type { Change } from "../protocol/methods";
import { Beneath, BeneathError, childOf } from "../sys/beneath";
import { fgetxattr, flistxattr } from "../sys/libc";

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";
const XATTR_PREFIXES = ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."];
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
 * Opens a file or directory of the upper tree once (through a descriptor, so a path swapped
 * meanwhile is not followed) for its status, overlay attributes and, for files, the binary
 * sniff. Symlinks, whiteouts and sockets cannot be opened that way: their status alone.
 */
function probe(upper: Beneath, rel: string, listedAs?: fs.Dirent): Probe | undefined {
  let fd: number;
  try {
    // Only what the directory lists as a file or a folder is opened (never a device node).
    if (listedAs && !listedAs.isFile() && !listedAs.isDirectory()) throw new BeneathError("ENXIO", rel);
    fd = upper.open(rel, fs.constants.O_RDONLY | O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    if (!(err instanceof BeneathError) || !["ELOOP", "ENXIO", "ENODEV", "EACCES"].includes(err.code)) throw err;
    const stat = upper.lstat(rel);
    return stat && { stat, attributes: new Map(), binary: false };
  }
  try {
    const stat = fs.fstatSync(fd);
    const attributes = new Map<string, string>();
    for (const name of flistxattr(fd)) {
      const prefix = XATTR_PREFIXES.find((p) => name.startsWith(p));
      if (prefix) attributes.set(name.slice(prefix.length), fgetxattr(fd, name)?.toString() ?? "");
    }
    return { stat, attributes, binary: stat.isFile() && sniff(fd) };
  } finally {
    fs.closeSync(fd);
  }
}

export function isOpaque(upper: Beneath, rel: string, names?: string[], known?: Probe): boolean {
  if ((names ?? upper.readdir(rel)).includes(OPAQUE_MARKER)) return true;
  return (known ?? probe(upper, rel))?.attributes.get("opaque") === "y";
}

function lstat(file: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(file);
  } catch {
    return undefined;
  }
}

function typeOf(st: fs.Stats): Change["type"] {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  return "other";
}

export function isWhiteoutDevice(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

const sniffBuffer = Buffer.alloc(BINARY_SNIFF);

function sniff(fd: number): boolean {
  return sniffBuffer.subarray(0, fs.readSync(fd, sniffBuffer, 0, BINARY_SNIFF, 0)).includes(0);
}

function sameContent(upper: Beneath, rel: string, lowerPath: string, size: number): boolean {
  if (size > 64 * 1024 * 1024) return false; // big files: reported, not compared
  return upper.readFile(rel).equals(fs.readFileSync(lowerPath));
}

/** Entries that vanish or turn into something else while they are read were being changed: skipped. */
function isRace(err: unknown): boolean {
  return err instanceof BeneathError && ["ENOENT", "ENOTDIR", "ELOOP", "not a regular file"].includes(err.code);
}

export function listChanges(upperRoot: string, workspace: string): Change[] {
  const upper = Beneath.open(upperRoot);
  try {
    return listWith(upper, workspace);
  } finally {
    upper.close();
  }
}

function listWith(upper: Beneath, workspace: string): Change[] {
  const changes: Change[] = [];
  const describe = (rel: string, kind: Change["kind"], st: fs.Stats, binary: () => boolean): Change => ({
    path: rel,
    kind,
    type: typeOf(st),
    binary: st.isFile() ? binary() : false,
    size: st.isFile() ? st.size : 0,
    mode: st.mode & 0o7777,
  });

  /** Everything the workspace has at and below `rel`, reported deleted, parents first. */
  const deletedTree = (rel: string) => {
    const lowerPath = path.join(workspace, rel);
    const st = lstat(lowerPath);
    if (!st) return;
    changes.push(describe(rel, "deleted", st, () => isBinaryFile(lowerPath)));
    if (st.isDirectory()) for (const name of safeReaddir(lowerPath)) deletedTree(childOf(rel, name));
  };

  /**
   * `hidden`: the workspace's entries below here are hidden (an opaque directory, or one
   * inside it): whatever the upper dir does not have again counts as deleted.
   */
  const walk = (rel: string, hidden: boolean, own?: Probe) => {
    // The workspace is consulted only through real directories: a symlink put in place of one
    // must not make the agent read (or list) what lies elsewhere.
    const lowerDir = path.join(workspace, rel);
    const lowerTrusted = isRealDirectory(lowerDir);
    const listed = new Map(upper.readdirTypes(rel).map((entry) => [entry.name, entry]));
    const names = [...listed.keys()].sort();
    const opaque = hidden || isOpaque(upper, rel, names, own);
    const present = new Set<string>();
    for (const name of names) {
      if (name === OPAQUE_MARKER) continue;
      const childRel = childOf(rel, name);
      if (name.startsWith(WHITEOUT_PREFIX)) {
        present.add(name.slice(WHITEOUT_PREFIX.length));
        if (lowerTrusted) deletedTree(childOf(rel, name.slice(WHITEOUT_PREFIX.length)));
        continue;
      }
      try {
        const found = probe(upper, childRel, listed.get(name));
        if (!found) continue; // gone meanwhile
        present.add(name);
        visit(childRel, found, lowerTrusted, opaque);
      } catch (err) {
        // Changed while it was read (a running command): the next listing will see it settled.
        if (!isRace(err)) throw err;
      }
    }
    // Whatever the workspace has here that an opaque directory did not bring back is deleted.
    if (opaque && lowerTrusted) {
      for (const name of safeReaddir(lowerDir)) if (!present.has(name)) deletedTree(childOf(rel, name));
    }
  };

  const visit = (rel: string, found: Probe, lowerTrusted: boolean, opaque: boolean) => {
    const { stat: st, attributes } = found;
    if (isWhiteoutDevice(st)) {
      if (lowerTrusted) deletedTree(rel);
      return;
    }
    for (const attribute of ["redirect", "metacopy"]) {
      if (attributes.has(attribute)) {
        throw new PaddockError(
          "E_UNSUPPORTED_CHANGE",
          `${rel} carries an overlay ${attribute} attribute; Paddock cannot tell what it means`,
          "sandboxes are mounted without redirects or metacopy; reject this path or delete the sandbox",
          { path: rel },
        );
      }
    }
    const binary = () => found.binary;
    const lowerPath = path.join(workspace, rel);
    const lower = lowerTrusted ? lstat(lowerPath) : undefined;
    if (!lower || typeOf(lower) !== typeOf(st)) {
      if (lower) deletedTree(rel); // the type changed: the old one is gone
      changes.push(describe(rel, "added", st, binary));
      if (st.isDirectory()) walk(rel, true, found);
      return;
    }
    const modeChanged = (lower.mode & 0o7777) !== (st.mode & 0o7777);
    if (st.isDirectory()) {
      if (modeChanged) changes.push(describe(rel, "modified", st, binary));
      walk(rel, opaque, found);
    } else if (st.isSymbolicLink()) {
      if (upper.readlink(rel) !== fs.readlinkSync(lowerPath)) changes.push(describe(rel, "modified", st, binary));
    } else if (st.isFile()) {
      // Copied up but ending identical (written back, touched) is not a change.
      const contentChanged = st.size !== lower.size || !sameContent(upper, rel, lowerPath, st.size);
      if (contentChanged || modeChanged) changes.push(describe(rel, "modified", st, binary));
    } else {
      changes.push(describe(rel, "modified", st, binary));
    }
  };

  walk("", false);
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** A workspace file (reached through real directories only) sniffed as git does. */
function isBinaryFile(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    return sniff(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function isRealDirectory(dir: string): boolean {
  try {
    return fs.lstatSync(dir).isDirectory() && fs.realpathSync(dir) === dir;
  } catch {
    return false;
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}
