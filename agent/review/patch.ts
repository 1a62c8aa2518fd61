/**
 * A git-style unified patch of a sandbox's changes: what `git diff` would print, so that
 * `git apply` (and GNU patch, for text) accepts it. Binary files are named, not dumped.
 * Pure: the caller reads the two sides.
 */
import { computeLineChanges, formatUnifiedHunks, splitLines, type LineChange } from "./line-changes";
import { asText } from "./entries";

export interface PatchSide {
  type: "file" | "symlink";
  mode: number;
  bytes: Buffer;
}

export interface PatchItem {
  path: string;
  /** Absent: the file is new. */
  old?: PatchSide;
  /** Absent: the file is deleted. */
  new?: PatchSide;
}

export interface FileDiff {
  path: string;
  binary: boolean;
  /** The line changes from the workspace's version to the sandbox's (what hunk selectors select among). */
  changes: LineChange[];
  text: string;
}

/** git's mode for a side: executable or not, or a symlink. */
function gitMode(side: PatchSide): string {
  if (side.type === "symlink") return "120000";
  return side.mode & 0o100 ? "100755" : "100644";
}

/** A byte of a name that is not UTF-8 (sys/names.ts): a lone U+DC80..U+DCFF. */
const isRawByte = (c: string) => c.length === 1 && c.charCodeAt(0) >= 0xdc80 && c.charCodeAt(0) <= 0xdcff;
const needsQuoting = (c: string) => c === '"' || c === "\\" || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f || isRawByte(c);
const NAMED_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r" };
const octal = (byte: number) => `\\${byte.toString(8).padStart(3, "0")}`;

/**
 * Quotes a path as git does when it holds a quote, a backslash, a control character or a
 * byte that is not UTF-8 (written as its octal escape, which git apply turns back into it).
 */
export function gitQuote(name: string): string {
  const chars = [...name];
  if (!chars.some(needsQuoting)) return name;
  const escape = (c: string) => NAMED_ESCAPES[c] ?? octal(c.charCodeAt(0) - (isRawByte(c) ? 0xdc00 : 0));
  return `"${chars.map((c) => (needsQuoting(c) ? escape(c) : c)).join("")}"`;
}

const prefixed = (prefix: string, name: string) => gitQuote(`${prefix}${name}`);

export function diffItem(item: PatchItem, context = 3): FileDiff {
  const a = prefixed("a/", item.path);
  const b = prefixed("b/", item.path);
  const head: string[] = [`diff --git ${a} ${b}\n`];
  if (!item.old && item.new) head.push(`new file mode ${gitMode(item.new)}\n`);
  else if (item.old && !item.new) head.push(`deleted file mode ${gitMode(item.old)}\n`);
  else if (item.old && item.new && gitMode(item.old) !== gitMode(item.new)) head.push(`old mode ${gitMode(item.old)}\n`, `new mode ${gitMode(item.new)}\n`);
  const oldBytes = item.old?.bytes ?? Buffer.alloc(0);
  const newBytes = item.new?.bytes ?? Buffer.alloc(0);
  const oldText = asText(oldBytes);
  const newText = asText(newBytes);
  if (oldText === undefined || newText === undefined) {
    const text = oldBytes.equals(newBytes) ? head.join("") : `${head.join("")}Binary files ${item.old ? a : "/dev/null"} and ${item.new ? b : "/dev/null"} differ\n`;
    return { path: item.path, binary: true, changes: [], text };
  }
  const oldLines = splitLines(oldText);
  const newLines = splitLines(newText);
  const changes = computeLineChanges(oldLines, newLines);
  if (changes.length === 0) return { path: item.path, binary: false, changes, text: head.join("") };
  const body = `--- ${item.old ? a : "/dev/null"}\n+++ ${item.new ? b : "/dev/null"}\n${formatUnifiedHunks(oldLines, newLines, changes, context)}`;
  return { path: item.path, binary: false, changes, text: head.join("") + body };
}
