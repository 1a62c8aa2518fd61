/**
 * A sandbox's upper directory read one folder at a time through descriptors: each folder is
 * opened from its parent's descriptor by a single name, never through a symlink, so a
 * sandbox that swaps a folder for a symlink while the agent reads cannot lead it outside.
 * A big folder's entries are read a batch at a time, so a folder of a million names costs no
 * more memory than one of a thousand.
 */
import * as fs from "node:fs";
import { isSafeRelativePath, O_DIRECTORY, O_PATH } from "../sys/beneath";
import { openat2, RESOLVE_BENEATH, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS } from "../sys/libc";

const O_CLOEXEC = 0o2000000;
const RESOLVE = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
const ENTRIES_PER_READ = 64;

/** A path that reaches exactly the folder of `fd` (the kernel follows the descriptor, not a name). */
export function folderPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/**
 * An O_PATH descriptor of the folder `rel` below folder `dirfd` ("" is that folder itself);
 * undefined when it is not a folder (now) or the way there has a symlink.
 */
export function openFolderAt(dirfd: number, rel: string): number | undefined {
  if (rel !== "" && !isSafeRelativePath(rel)) return undefined;
  const fd = openat2(dirfd, rel === "" ? "." : rel, O_PATH | O_DIRECTORY | fs.constants.O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE);
  return fd < 0 ? undefined : fd;
}

/** The entry `name` of folder `dirfd` itself (a symlink's own); undefined when it is gone. */
export function lstatAt(dirfd: number, name: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(`${folderPath(dirfd)}/${name}`, { throwIfNoEntry: false });
  } catch {
    return undefined; // swapped or unreadable meanwhile: as good as gone
  }
}

/** A folder's entries, one at a time. */
export interface Entries {
  /** The next entry, or null at the end; throws when the folder went away meanwhile. */
  next(): fs.Dirent | null;
  close(): void;
}

/** A folder this small (in bytes of its own, as stat says) is read in one go: cheaper than a batch at a time. */
const SMALL_FOLDER_BYTES = 32 * 1024;

/** The entries of the folder of `fd`; undefined when it cannot be read. */
export function entriesOf(fd: number): Entries | undefined {
  try {
    if (fs.fstatSync(fd).size <= SMALL_FOLDER_BYTES) {
      const all = fs.readdirSync(folderPath(fd), { withFileTypes: true });
      let at = 0;
      return { next: () => all[at++] ?? null, close: () => undefined };
    }
    const dir = fs.opendirSync(folderPath(fd), { bufferSize: ENTRIES_PER_READ });
    return { next: () => dir.readSync(), close: () => dir.closeSync() };
  } catch {
    return undefined;
  }
}

/** False where the file system did not say (DT_UNKNOWN): only a stat tells then. */
export function typeKnown(entry: fs.Dirent): boolean {
  return entry.isFile() || entry.isDirectory() || entry.isSymbolicLink() || entry.isFIFO() || entry.isSocket() || entry.isCharacterDevice() || entry.isBlockDevice();
}

export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}
