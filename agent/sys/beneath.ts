/**
 * File operations confined to one directory tree: every path is resolved by openat2(2) with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS relative to the tree's descriptor, and the last
 * component is acted on with the *at() calls, which never follow it. A process that swaps a
 * directory for a symlink while the agent works cannot make it read or write anything
 * outside the tree: the resolution fails with ELOOP instead.
 *
 * A tree opened for a user (`Beneath.open(root, rights)`) does every operation with that
 * user's rights (sys/credentials.ts): the agent, root, reads, makes and removes there only
 * what the user could in a shell. Descriptors it returns keep the rights they were opened with.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { withUserRights, type UserRights } from "./credentials";
import { byteLength, cName, hasRawBytes, nameBytes, nameFromBytes } from "./names";
import {
  AT_REMOVEDIR,
  errnoName,
  fchownat,
  mkdirat,
  openat2,
  readlinkat,
  renameat,
  RESOLVE_BENEATH,
  RESOLVE_NO_MAGICLINKS,
  RESOLVE_NO_SYMLINKS,
  symlinkat,
  unlinkat,
} from "./libc";

export const O_PATH = 0o10000000;
export const O_DIRECTORY = 0o200000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const O_NOCTTY = 0o400;
const RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

const EXPLAINED: Record<string, string> = {
  ELOOP: "a symlink is in the way",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
};

export class BeneathError extends Error {
  constructor(
    readonly code: string,
    readonly where: string,
    message?: string,
  ) {
    super(message ?? `${where}: ${EXPLAINED[code] ?? code}`);
  }
}

/** The longest path a system call takes (PATH_MAX, 4096, with its NUL): deeper entries are reached from a folder's descriptor. */
export const MAX_PATH_BYTES = 4095;

/** "a/b/c" style, relative, no "." or ".." parts: anything else is refused before any syscall. */
export function isSafeRelativePath(rel: string): boolean {
  if (rel.length === 0 || byteLength(rel) > MAX_PATH_BYTES || rel.includes("\0") || rel.startsWith("/")) return false;
  return rel.split("/").every((part) => part !== "" && part !== "." && part !== "..");
}

export class Beneath {
  private constructor(
    readonly fd: number,
    readonly root: string,
    /** Whose rights every operation is done with (undefined: the agent's own). */
    readonly rights: UserRights | undefined,
  ) {}

  /**
   * Opens a tree's root (which the caller trusts: it is not checked for symlinks), with the
   * agent's rights; what lies below it is reached with `rights`, when given.
   */
  static open(root: string, rights?: UserRights): Beneath {
    return new Beneath(fs.openSync(root, fs.constants.O_RDONLY | O_DIRECTORY | O_CLOEXEC), root, rights);
  }

  /** Runs `work` with the tree's rights: several operations for the price of one switch. */
  withRights<T>(work: () => T): T {
    return withUserRights(this.rights, work);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  /** openat2 beneath the root; "" is the root itself. Throws BeneathError. */
  open(rel: string, flags: number, mode = 0): number {
    return this.withRights(() => {
      const fd = openat2(this.fd, rel === "" ? "." : cName(rel), flags | O_NOFOLLOW | O_CLOEXEC, mode, RESOLVE);
      if (fd < 0) throw new BeneathError(errnoName(-fd), this.where(rel));
      return fd;
    });
  }

  /** lstat; undefined when the path (or a directory on the way) does not exist. */
  lstat(rel: string): fs.Stats | undefined {
    return this.withRights(() => {
      let fd: number;
      try {
        fd = this.open(rel, O_PATH);
      } catch (err) {
        if (err instanceof BeneathError && (err.code === "ENOENT" || err.code === "ENOTDIR")) return undefined;
        throw err;
      }
      try {
        return fs.fstatSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  readlink(rel: string): string {
    return this.withRights(() => {
      return this.withParent(rel, (dir, name) => {
        const target = readlinkat(dir, cName(name));
        // EINVAL: not a symlink (any more): the entry was swapped since it was looked at.
        if (typeof target === "number") throw errnoName(target) === "EINVAL" ? new BeneathError("ENOENT", this.where(rel), `${this.where(rel)}: no longer a symlink (it changed while it was read)`) : new BeneathError(errnoName(target), this.where(rel));
        return nameFromBytes(target);
      });
    });
  }

  readdir(rel: string): string[] {
    return this.readdirTypes(rel).map((entry) => entry.name);
  }

  /** Names with their types as the directory lists them (no stat per entry). */
  readdirTypes(rel: string): FolderEntry[] {
    return this.withRights(() => {
      const fd = this.open(rel, fs.constants.O_RDONLY | O_DIRECTORY);
      try {
        return readFolder(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  /** Opens a regular file for reading (a FIFO cannot block it); throws if it is anything else. */
  openFile(rel: string): { fd: number; stat: fs.Stats } {
    return this.withRights(() => openRegularFile((flags) => this.open(rel, flags), this.where(rel)));
  }

  readFile(rel: string): Buffer {
    return this.withRights(() => {
      const { fd } = this.openFile(rel);
      try {
        return fs.readFileSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  /** Runs `work` with a descriptor of the path's directory and its last component. */
  withParent<T>(rel: string, work: (dirfd: number, name: string) => T): T {
    return this.withRights(() => {
      const dir = this.open(parentOf(rel), O_PATH | O_DIRECTORY);
      try {
        return work(dir, path.posix.basename(rel));
      } finally {
        fs.closeSync(dir);
      }
    });
  }

  mkdir(rel: string, mode: number): void {
    this.withRights(() => {
      this.check(rel, this.withParent(rel, (dir, name) => mkdirat(dir, cName(name), mode)));
    });
  }

  symlink(target: string, rel: string): void {
    this.withRights(() => {
      this.check(rel, this.withParent(rel, (dir, name) => symlinkat(cName(target), dir, cName(name))));
    });
  }

  unlink(rel: string): void {
    this.withRights(() => {
      this.check(rel, this.withParent(rel, (dir, name) => unlinkat(dir, cName(name), 0)));
    });
  }

  rmdir(rel: string): void {
    this.withRights(() => {
      this.check(rel, this.withParent(rel, (dir, name) => unlinkat(dir, cName(name), AT_REMOVEDIR)));
    });
  }

  /** rename(2) within the tree; replaces a file at `to`, never follows a symlink at either end. */
  rename(from: string, to: string): void {
    this.withRights(() => {
      const result = this.withParent(from, (fromDir, fromName) => this.withParent(to, (toDir, toName) => renameat(fromDir, cName(fromName), toDir, cName(toName))));
      this.check(`${from} -> ${to}`, result);
    });
  }

  /** Moves `sourceRel` of another tree (a folder of this one held open, say) to `rel` of this one. */
  moveFrom(source: Beneath, sourceRel: string, rel: string): void {
    this.withRights(() => {
      const result = source.withParent(sourceRel, (fromDir, fromName) => this.withParent(rel, (toDir, toName) => renameat(fromDir, cName(fromName), toDir, cName(toName))));
      this.check(`${source.where(sourceRel)} -> ${rel}`, result);
    });
  }

  /**
   * A folder of the tree as a tree of its own, held open: what is made in it and removed
   * through it stays in that folder, wherever it is moved meanwhile. Close it after use.
   */
  subtree(rel: string): Beneath {
    return new Beneath(this.open(rel, fs.constants.O_RDONLY | O_DIRECTORY), this.where(rel), this.rights);
  }

  /**
   * Removes a file, symlink or whole directory tree, never leaving the tree or following a
   * link. Below `rel` the walk goes from folder descriptor to folder descriptor, by single
   * names: a tree deeper than PATH_MAX goes too.
   */
  removeTree(rel: string): void {
    this.withRights(() => {
      const st = this.lstat(rel);
      if (!st) return;
      if (st.isDirectory()) this.withParent(rel, (dir, name) => removeFolderAt(dir, name, this.where(rel)));
      else this.unlink(rel);
    });
  }

  /** chmod of a folder; with `expect` ("dev:ino"), only if it is still that folder. */
  chmodDirectory(rel: string, mode: number, expect?: string): void {
    this.withRights(() => {
      const fd = this.open(rel, fs.constants.O_RDONLY | O_DIRECTORY);
      try {
        const st = expect === undefined ? undefined : fs.fstatSync(fd);
        if (st && `${st.dev}:${st.ino}` !== expect) throw new BeneathError("CHANGED", this.where(rel), `${rel} is no longer the folder approve planned for; its mode is left alone`);
        fs.fchmodSync(fd, mode);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  /** Changes the owner of the entry itself (a symlink's own, not its target's). */
  chown(rel: string, uid: number, gid: number): void {
    this.withRights(() => {
      this.check(rel, this.withParent(rel, (dir, name) => fchownat(dir, cName(name), uid, gid)));
    });
  }

  fsyncDir(rel: string): void {
    this.withRights(() => {
      const fd = this.open(rel, fs.constants.O_RDONLY | O_DIRECTORY);
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  private check(rel: string, errno: number): void {
    if (errno !== 0) throw new BeneathError(errnoName(errno), this.where(rel));
  }

  private where(rel: string): string {
    return rel === "" ? this.root : `${this.root}/${rel}`;
  }
}

/** `dir/name` for a tree-relative folder ("" is the root). */
export function childOf(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}

export function parentOf(rel: string): string {
  const parent = path.posix.dirname(rel);
  return parent === "." ? "" : parent;
}

/**
 * Opens a regular file for reading with `open` (given the flags): a FIFO cannot block it, and
 * anything else put in its place (a socket, a device: an overlay whiteout is one) is refused
 * as "not a regular file", the code of a path that changed while it was read.
 */
function openRegularFile(open: (flags: number) => number, where: string): { fd: number; stat: fs.Stats } {
  let fd: number;
  try {
    fd = open(fs.constants.O_RDONLY | O_NONBLOCK | O_NOCTTY);
  } catch (err) {
    if (err instanceof BeneathError && (err.code === "ENXIO" || err.code === "ENODEV")) throw new BeneathError("not a regular file", where);
    throw err;
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) {
    fs.closeSync(fd);
    throw new BeneathError("not a regular file", where);
  }
  return { fd, stat };
}

export function writeAll(fd: number, data: Buffer): void {
  for (let at = 0; at < data.length; ) at += fs.writeSync(fd, data, at, data.length - at);
}

const COPY_CHUNK = 1024 * 1024;

/** Copies a regular file of a tree into an open descriptor, in chunks; `onOpen` sees the source first. */
export function copyFileInto(from: Beneath, rel: string, out: number, onOpen?: (fd: number) => void): void {
  const { fd } = from.openFile(rel);
  try {
    onOpen?.(fd);
    const buffer = Buffer.allocUnsafe(COPY_CHUNK);
    for (;;) {
      const read = fs.readSync(fd, buffer, 0, COPY_CHUNK, null);
      if (read === 0) break;
      writeAll(out, buffer.subarray(0, read));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Copies `size` bytes from `offset` of an open file (a kept version, say) into another, in chunks. */
export function copyRangeInto(from: number, offset: number, size: number, out: number): void {
  const buffer = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(size, 1)));
  for (let done = 0; done < size; ) {
    const read = fs.readSync(from, buffer, 0, Math.min(buffer.length, size - done), offset + done);
    if (read === 0) throw new BeneathError("EIO", "kept version", "a kept version is shorter than recorded");
    writeAll(out, buffer.subarray(0, read));
    done += read;
  }
}

/** One entry of a folder: its exact name (see sys/names.ts) and its type as the folder lists it. */
export interface FolderEntry {
  name: string;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

/** The entries of the folder open as `fd`, named by their bytes (Node's strings turn bytes that are not UTF-8 into U+FFFD). */
export function readFolder(fd: number): FolderEntry[] {
  return fs.readdirSync(`/proc/self/fd/${fd}`, { withFileTypes: true, encoding: "buffer" }).map((entry) => ({
    name: nameFromBytes(entry.name),
    isFile: () => entry.isFile(),
    isDirectory: () => entry.isDirectory(),
    isSymbolicLink: () => entry.isSymbolicLink(),
  }));
}

/** Folders held open at once while a tree is removed; the outer ones are closed and found again through "..". */
const MAX_OPEN_FOLDERS = 64;
const EISDIR = 21;
const ENOENT = 2;

interface Level {
  /** Undefined while closed (more than MAX_OPEN_FOLDERS below it). */
  fd: number | undefined;
  name: string;
  /** dev:ino, to know the folder again when it is opened through its child's "..". */
  identity: string;
  /** Subfolders still to remove. */
  folders: string[];
}

const identityOfFd = (fd: number): string => {
  const st = fs.fstatSync(fd);
  return `${st.dev}:${st.ino}`;
};

/**
 * Removes the folder `name` of the folder open as `parentFd`, with all it holds. Each folder is
 * opened from its parent's descriptor by one name (never through a symlink) and emptied there,
 * so no path is ever longer than a name, however deep the tree. A folder more than
 * MAX_OPEN_FOLDERS above the one being emptied is closed, and opened again from its child as
 * "..": it must be the very folder it was, or the removal stops (a sandbox moved it meanwhile).
 */
export function removeFolderAt(parentFd: number, name: string, where: string): void {
  const stack: Level[] = [];
  const failed = (errno: number, folder: string) => new BeneathError(errnoName(errno), `${where}/…/${folder}`);
  const enter = (dirfd: number, folder: string) => {
    const fd = openat2(dirfd, cName(folder), fs.constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE);
    if (fd < 0) throw failed(-fd, folder);
    const level: Level = { fd, name: folder, identity: "", folders: [] };
    stack.push(level);
    level.identity = identityOfFd(fd);
    const outer = stack[stack.length - 1 - MAX_OPEN_FOLDERS];
    if (outer?.fd !== undefined) {
      fs.closeSync(outer.fd);
      outer.fd = undefined;
    }
    for (const entry of readFolder(fd)) {
      if (entry.isDirectory()) {
        level.folders.push(entry.name);
        continue;
      }
      const errno = unlinkat(fd, cName(entry.name), 0);
      if (errno === EISDIR) level.folders.push(entry.name); // listed without its type
      else if (errno !== 0 && errno !== ENOENT) throw failed(errno, entry.name);
    }
  };
  const reopen = (level: Level, childFd: number) => {
    const fd = openat2(childFd, "..", fs.constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (fd < 0) throw failed(-fd, level.name);
    level.fd = fd;
    if (identityOfFd(fd) !== level.identity) throw new BeneathError("ENOENT", where, `${where}: a folder was moved while it was being removed`);
  };
  try {
    enter(parentFd, name);
    while (stack.length > 0) {
      const level = stack[stack.length - 1]!;
      const next = level.folders.pop();
      if (next !== undefined) {
        enter(level.fd!, next);
        continue;
      }
      stack.pop();
      const parent = stack[stack.length - 1];
      try {
        if (parent && parent.fd === undefined) reopen(parent, level.fd!);
      } finally {
        fs.closeSync(level.fd!);
      }
      const errno = unlinkat(parent ? parent.fd! : parentFd, cName(level.name), AT_REMOVEDIR);
      if (errno !== 0 && errno !== ENOENT) throw failed(errno, level.name);
    }
  } finally {
    for (const level of stack) if (level.fd !== undefined) fs.closeSync(level.fd);
  }
}

/**
 * A folder held open by its descriptor, whose entries are reached by their single names
 * through it (/proc/self/fd/N/NAME: the kernel goes to the folder itself, whatever was renamed
 * or swapped on the way there since it was opened). The last component is never followed.
 * Cheaper than a resolution from a tree's root per entry, and it works at any depth.
 */
export class Folder {
  private constructor(
    readonly fd: number,
    private readonly where: string,
  ) {}

  /** Opens `rel` of a tree as a folder; `pathOnly` (O_PATH) needs no read permission but cannot be listed. */
  static open(tree: Beneath, rel: string, pathOnly = false): Folder {
    return new Folder(tree.open(rel, pathOnly ? O_PATH | O_DIRECTORY : fs.constants.O_RDONLY | O_DIRECTORY), rel === "" ? tree.root : `${tree.root}/${rel}`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  entries(): FolderEntry[] {
    return readFolder(this.fd);
  }

  /** Opens an entry, never following it; throws BeneathError. */
  open(name: string, flags: number): number {
    return this.attempt(name, () => fs.openSync(this.pathOf(name), flags | O_NOFOLLOW | O_CLOEXEC));
  }

  /** The entry itself; undefined when it is gone. */
  lstat(name: string): fs.Stats | undefined {
    return this.attempt(name, () => fs.lstatSync(this.pathOf(name), { throwIfNoEntry: false }));
  }

  readlink(name: string): string {
    try {
      return nameFromBytes(this.attempt(name, () => fs.readlinkSync(this.pathOf(name), { encoding: "buffer" })));
    } catch (err) {
      // Not a symlink (any more): the entry was swapped since it was looked at.
      if (err instanceof BeneathError && err.code === "EINVAL") throw new BeneathError("ENOENT", err.where, `${err.where}: no longer a symlink (it changed while it was read)`);
      throw err;
    }
  }

  /** A regular file's bytes (a FIFO cannot block it); throws if it is anything else. */
  readFile(name: string): Buffer {
    const { fd } = openRegularFile((flags) => this.open(name, flags), `${this.where}/${name}`);
    try {
      return fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  private pathOf(name: string): string | Buffer {
    const folder = `/proc/self/fd/${this.fd}/`;
    return hasRawBytes(name) ? Buffer.concat([Buffer.from(folder), nameBytes(name)]) : folder + name;
  }

  private attempt<T>(name: string, work: () => T): T {
    try {
      return work();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === "string") throw new BeneathError(code, `${this.where}/${name}`);
      throw err;
    }
  }
}
