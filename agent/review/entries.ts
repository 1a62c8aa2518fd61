/**
 * One path as a tree holds it (the workspace, the sandbox's upper directory, its merged view
 * or a recorded base), read without following symlinks or leaving the tree.
 */
import type * as fs from "node:fs";
import type { Beneath } from "../sys/beneath";
import { nameBytes } from "../sys/names";

export type EntryType = "file" | "directory" | "symlink" | "other";

export interface Entry {
  type: EntryType;
  /** Permission bits, with setuid, setgid and sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Symlinks only. */
  target?: string;
  stat: fs.Stats;
}

export function entryType(st: fs.Stats): EntryType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  return "other";
}

/** What tells an entry untouched: the same inode, size and times. */
export function identityOf(st: fs.Stats | undefined): string {
  return st ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : "absent";
}

/** The entry at `rel`, or undefined when there is none. */
export function readEntry(tree: Beneath, rel: string): Entry | undefined {
  const stat = tree.lstat(rel);
  if (!stat) return undefined;
  const type = entryType(stat);
  return { type, mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, stat, ...(type === "symlink" ? { target: tree.readlink(rel) } : {}) };
}

/** A file's bytes, or a symlink's target as bytes (as git diffs them); empty for anything else. */
export function entryBytes(tree: Beneath, rel: string, entry: Entry | undefined): Buffer {
  if (entry?.type === "file") return tree.readFile(rel);
  if (entry?.type === "symlink") return nameBytes(entry.target ?? "");
  return Buffer.alloc(0);
}

/** As git decides: a NUL byte in the first 8000 bytes. */
export function looksBinary(bytes: Buffer): boolean {
  return bytes.subarray(0, 8000).includes(0);
}

/** Text as the review shows it; undefined for binary content or content that is not UTF-8. */
export function asText(bytes: Buffer): string | undefined {
  if (looksBinary(bytes)) return undefined;
  const text = bytes.toString("utf8");
  return Buffer.from(text, "utf8").equals(bytes) ? text : undefined;
}
