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
import { lgetxattr, llistxattr } from "../sys/libc";

export const WHITEOUT_PREFIX = ".wh.";
export const OPAQUE_MARKER = ".wh..wh..opq";
const XATTR_PREFIXES = ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."];
/** Bytes looked at to tell binary from text, as git does. */
const BINARY_SNIFF = 8000;

/** The overlay attributes of an entry (one listing syscall; most entries have none). */
function overlayAttributes(file: string): Map<string, () => string> {
  const found = new Map<string, () => string>();
  for (const name of llistxattr(file)) {
    const prefix = XATTR_PREFIXES.find((p) => name.startsWith(p));
    if (prefix) found.set(name.slice(prefix.length), () => lgetxattr(file, name)?.toString() ?? "");
  }
  return found;
}

export function isOpaque(dir: string, names?: string[]): boolean {
  if ((names ?? safeReaddir(dir)).includes(OPAQUE_MARKER)) return true;
  return overlayAttributes(dir).get("opaque")?.() === "y";
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

function isBinary(file: string): boolean {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.alloc(BINARY_SNIFF);
    const read = fs.readSync(fd, buffer, 0, BINARY_SNIFF, 0);
    return buffer.subarray(0, read).includes(0);
  } finally {
    fs.closeSync(fd);
  }
}

function sameContent(a: string, b: string, size: number): boolean {
  if (size > 64 * 1024 * 1024) return false; // big files: reported, not compared
  return fs.readFileSync(a).equals(fs.readFileSync(b));
}

export function listChanges(upperRoot: string, workspace: string): Change[] {
  const changes: Change[] = [];
  const describe = (rel: string, kind: Change["kind"], file: string, st: fs.Stats): Change => ({
    path: rel.split(path.sep).join("/"),
    kind,
    type: typeOf(st),
    binary: st.isFile() ? isBinary(file) : false,
    size: st.isFile() ? st.size : 0,
    mode: st.mode & 0o7777,
  });

  /** Everything the workspace has at and below `rel`, reported deleted, parents first. */
  const deletedTree = (rel: string) => {
    const lowerPath = path.join(workspace, rel);
    const st = lstat(lowerPath);
    if (!st) return;
    changes.push(describe(rel, "deleted", lowerPath, st));
    if (st.isDirectory()) for (const name of fs.readdirSync(lowerPath).sort()) deletedTree(path.join(rel, name));
  };

  /**
   * `hidden`: the workspace's entries below here are hidden (an opaque directory, or one
   * inside it): whatever the upper dir does not have again counts as deleted.
   */
  const walk = (rel: string, hidden: boolean) => {
    const upperDir = path.join(upperRoot, rel);
    // The workspace is consulted only through real directories: a symlink put in place of one
    // must not make the agent read (or list) what lies elsewhere.
    const lowerDir = path.join(workspace, rel);
    const lowerTrusted = isRealDirectory(lowerDir);
    const names = fs.readdirSync(upperDir).sort();
    const opaque = hidden || isOpaque(upperDir, names);
    const present = new Set<string>();
    for (const name of names) {
      if (name === OPAQUE_MARKER) continue;
      const upperPath = path.join(upperDir, name);
      const st = fs.lstatSync(upperPath);
      if (name.startsWith(WHITEOUT_PREFIX)) {
        present.add(name.slice(WHITEOUT_PREFIX.length));
        if (lowerTrusted) deletedTree(path.join(rel, name.slice(WHITEOUT_PREFIX.length)));
        continue;
      }
      present.add(name);
      const childRel = path.join(rel, name);
      if (isWhiteoutDevice(st)) {
        if (lowerTrusted) deletedTree(childRel);
        continue;
      }
      const attributes = overlayAttributes(upperPath);
      for (const attribute of ["redirect", "metacopy"]) {
        if (attributes.has(attribute)) {
          throw new PaddockError(
            "E_UNSUPPORTED_CHANGE",
            `${childRel} carries an overlay ${attribute} attribute; Paddock cannot tell what it means`,
            "sandboxes are mounted without redirects or metacopy; reject this path or delete the sandbox",
            { path: childRel.split(path.sep).join("/") },
          );
        }
      }
      const lowerPath = path.join(workspace, childRel);
      const lower = lowerTrusted ? lstat(lowerPath) : undefined;
      if (!lower || typeOf(lower) !== typeOf(st)) {
        if (lower) deletedTree(childRel); // the type changed: the old one is gone
        changes.push(describe(childRel, "added", upperPath, st));
        if (st.isDirectory()) walk(childRel, true);
        continue;
      }
      const modeChanged = (lower.mode & 0o7777) !== (st.mode & 0o7777);
      if (st.isDirectory()) {
        if (modeChanged) changes.push(describe(childRel, "modified", upperPath, st));
        walk(childRel, opaque);
      } else if (st.isSymbolicLink()) {
        if (fs.readlinkSync(upperPath) !== fs.readlinkSync(lowerPath)) changes.push(describe(childRel, "modified", upperPath, st));
      } else if (st.isFile()) {
        // Copied up but ending identical (written back, touched) is not a change.
        const contentChanged = st.size !== lower.size || !sameContent(upperPath, lowerPath, st.size);
        if (contentChanged || modeChanged) changes.push(describe(childRel, "modified", upperPath, st));
      } else {
        changes.push(describe(childRel, "modified", upperPath, st));
      }
    }
    // Whatever the workspace has here that an opaque directory did not bring back is deleted.
    if (opaque && lowerTrusted) {
      for (const name of safeReaddir(lowerDir)) if (!present.has(name)) deletedTree(path.join(rel, name));
    }
  };

  walk("", false);
  return changes.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
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
