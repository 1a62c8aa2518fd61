/**
 * Writing into a sandbox from outside: reject (the sandbox gets the workspace's version back)
 * and sandbox/writeFile (the user edits the sandbox's side of a diff).
 *
 * Both write through the sandbox's merged view, never into its upper directory behind the
 * overlay's back, so that programs running in the sandbox see the result at once. The view is
 * as hostile as the sandbox: every path goes through sys/beneath.ts. Both act with the
 * sandbox owner's rights: they change in the sandbox only what the owner could, and restore
 * only what the owner may read in the workspace.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { PaddockError } from "../../protocol/errors";
import type { Change, HunkSelector, RejectResult } from "../../protocol/methods";
import { Beneath, BeneathError, copyFileInto, copyRangeInto, parentOf, writeAll } from "../sys/beneath";
import type { KeptBytes } from "./undo-record";
import type { UserRights } from "../sys/credentials";
import { parseDisplayPath } from "../sys/names";
import { baseToDiffAgainst } from "./against-base";
import { mergeThreeWays } from "./conflicts";
import { asText, entryBytes, readEntry, type Entry } from "./entries";
import { withHunks } from "./hunks";
import { openWorkspaceTree, select, type ReviewTarget } from "./target";
import { Pacer } from "../sys/pacer";

const O_CREAT_EXCL_WRONLY = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;

export interface RejectRequest {
  paths?: string[];
  hunks?: HunkSelector[];
}

export async function reject(target: ReviewTarget, view: string, changes: readonly Change[], request: RejectRequest): Promise<RejectResult> {
  const pacer = new Pacer();
  const selection = select(changes, request.paths, request.hunks);
  const result: RejectResult = { rejected: [], skipped: selection.unknown.map((p) => ({ path: p, reason: "not a change of this sandbox" })) };
  const ws = openWorkspaceTree(target);
  const sandbox = Beneath.open(view, target.rights);
  try {
    // Every hunk is checked before anything is written: a stale selection changes nothing.
    const hunkContents: { rel: string; current: Entry; kept: Buffer; newBase: boolean }[] = [];
    for (const [rel, { ranges }] of selection.hunks) {
      await pacer.step();
      const workspace = readEntry(ws, rel);
      const current = readEntry(sandbox, rel);
      if (workspace?.type !== "file" || current?.type !== "file") {
        throw new PaddockError("E_UNSUPPORTED_CHANGE", `${rel} is not a file on both sides: it is rejected whole`, "leave out its hunks and name the path instead", { path: rel });
      }
      // The sandbox keeps every change but the rejected ones: of the base's diff where the workspace moved on since (against-base.ts).
      const base = baseToDiffAgainst(ws, rel, target.bases.get(rel));
      const currentBytes = entryBytes(sandbox, rel, current);
      if (!base) {
        hunkContents.push({ rel, current, kept: withHunks(rel, entryBytes(ws, rel, workspace), currentBytes, ranges, "others"), newBase: true });
        continue;
      }
      const kept = withHunks(rel, base, currentBytes, ranges, "others");
      // Taken onto the workspace's edits where that merges cleanly (then the workspace is its base); else still against the base.
      const rebased = mergeThreeWays(asText(base), asText(entryBytes(ws, rel, workspace)), asText(kept));
      hunkContents.push(rebased === undefined ? { rel, current, kept, newBase: false } : { rel, current, kept: Buffer.from(rebased), newBase: true });
    }
    await target.undo?.keep("sandbox", sandbox, [...selection.paths.map((c) => c.path), ...selection.hunks.keys()], target.bases);
    const attempt = (rel: string, work: () => void, newBase = true) => {
      try {
        work();
        if (newBase) target.bases.set(rel, ws, readEntry(ws, rel));
        result.rejected.push(rel);
      } catch (err) {
        // One path that cannot be restored (a symlink in the way, a full disk) does not stop the others.
        result.skipped.push({ path: rel, reason: (err as Error).message });
      }
    };
    for (const change of selection.paths) {
      await pacer.step();
      attempt(change.path, () => restore(target, ws, sandbox, change.path, result.skipped));
    }
    for (const { rel, current, kept, newBase } of hunkContents) {
      await pacer.step();
      attempt(rel, () => putFile(sandbox, rel, { bytes: kept }, current.mode, target.chown ? [current.uid, current.gid] : undefined), newBase);
    }
    target.undo?.settle("sandbox", sandbox);
    return result;
  } finally {
    target.bases.save();
    sandbox.close();
    ws.close();
  }
}

/** Gives the sandbox the workspace's version of one path (nothing, if the workspace has nothing). */
function restore(target: ReviewTarget, ws: Beneath, sandbox: Beneath, rel: string, skipped: RejectResult["skipped"]): void {
  const workspace = readEntry(ws, rel);
  const current = readEntry(sandbox, rel);
  // After an approve of some hunks merged with the workspace's edits: the sandbox's other changes stay, on top of them.
  const rebased = target.rebased?.get(rel);
  const owner = (entry: Entry): [number, number] | undefined => (target.chown ? [entry.uid, entry.gid] : undefined);
  if (!workspace) {
    if (current) sandbox.removeTree(rel);
    return;
  }
  if (workspace.type === "other") {
    skipped.push({ path: rel, reason: "special files (devices, FIFOs, sockets) are not copied into a sandbox" });
    return;
  }
  makeParents(ws, sandbox, rel, target.chown);
  if (current && (current.type === "directory") !== (workspace.type === "directory")) sandbox.removeTree(rel);
  if (workspace.type === "directory") {
    if (current?.type !== "directory") makeDirectory(sandbox, rel, workspace, owner(workspace));
    sandbox.chmodDirectory(rel, workspace.mode);
    return;
  }
  if (workspace.type === "symlink") putFile(sandbox, rel, { target: workspace.target ?? "" }, workspace.mode, owner(workspace));
  else putFile(sandbox, rel, rebased && workspace.type === "file" ? { bytes: rebased } : { from: ws }, workspace.mode, owner(workspace));
}

/** Directories the sandbox deleted above `rel` come back, as the workspace has them. */
function makeParents(ws: Beneath, sandbox: Beneath, rel: string, chown: boolean): void {
  const parts = rel.split("/");
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join("/");
    const current = sandbox.lstat(dir);
    if (current?.isDirectory()) continue;
    const workspace = readEntry(ws, dir);
    if (workspace?.type !== "directory") throw new BeneathError("ENOTDIR", `${dir} is not a directory in the workspace`);
    if (current) sandbox.removeTree(dir);
    makeDirectory(sandbox, dir, workspace, chown ? [workspace.uid, workspace.gid] : undefined);
  }
}

export function makeDirectory(tree: Beneath, rel: string, like: Pick<Entry, "mode">, owner: [number, number] | undefined): void {
  tree.mkdir(rel, 0o700);
  if (owner) tree.chown(rel, owner[0], owner[1]);
  tree.chmodDirectory(rel, like.mode);
}

type Content = { bytes: Buffer } | { from: Beneath } | { target: string } | { kept: KeptBytes };

/**
 * Replaces `rel` in a tree with new content, atomically: a temp file beside it, renamed over
 * it. A directory in the way is removed first.
 */
export function putFile(tree: Beneath, rel: string, content: Content, mode: number, owner: [number, number] | undefined, mtimeMs?: number): void {
  const temp = `${parentOf(rel) === "" ? "" : `${parentOf(rel)}/`}.paddock-write-${randomBytes(6).toString("hex")}`;
  tree.withRights(() => {
    try {
      if ("target" in content) {
        tree.symlink(content.target, temp);
        if (owner) tree.chown(temp, owner[0], owner[1]);
      } else {
        const out = tree.open(temp, O_CREAT_EXCL_WRONLY, 0o600);
        try {
          if (owner) fs.fchownSync(out, owner[0], owner[1]);
          if ("bytes" in content) writeAll(out, content.bytes);
          else if ("kept" in content) copyRangeInto(content.kept.fd, content.kept.offset, content.kept.size, out);
          else copyFileInto(content.from, rel, out);
          fs.fchmodSync(out, mode);
          if (mtimeMs !== undefined) fs.futimesSync(out, mtimeMs / 1000, mtimeMs / 1000);
        } finally {
          fs.closeSync(out);
        }
      }
      if (tree.lstat(rel)?.isDirectory()) tree.removeTree(rel);
      tree.rename(temp, rel);
    } catch (err) {
      try {
        tree.unlink(temp);
      } catch {
        // never made, or renamed
      }
      if (isDenied(err) && "bytes" in content && tree.lstat(rel)?.isFile()) return overwrite(tree, rel, content.bytes);
      throw err;
    }
  });
}

const isDenied = (err: unknown): boolean => err instanceof BeneathError && (err.code === "EACCES" || err.code === "EPERM");

/**
 * A file the owner may write in a folder they may not (no temp file can go beside it): written
 * in place, as a shell's `>` would. Not atomic, which a sandbox can afford.
 */
function overwrite(tree: Beneath, rel: string, bytes: Buffer): void {
  const out = tree.open(rel, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  try {
    if (!fs.fstatSync(out).isFile()) throw new BeneathError("not a regular file", rel);
    fs.ftruncateSync(out, 0);
    writeAll(out, bytes);
  } finally {
    fs.closeSync(out);
  }
}

/**
 * sandbox/writeFile: new content for one file, as the sandbox sees it, written with the
 * owner's rights. The new file is theirs, without setuid or setgid bits.
 */
export function writeSandboxFile(view: string, shown: string, bytes: Buffer, rights: UserRights | undefined): void {
  const sandbox = Beneath.open(view, rights);
  try {
    // A path as clients see it: a name that is not UTF-8 is shown escaped (sys/names.ts); the
    // name itself is meant where the sandbox has it and has nothing of the shown name.
    const exact = parseDisplayPath(shown);
    const rel = exact !== shown && !quietLstat(sandbox, shown) && quietLstat(sandbox, exact) ? exact : shown;
    const parent = sandbox.lstat(parentOf(rel));
    if (!parent?.isDirectory()) {
      throw new PaddockError("E_NOT_FOUND", `${parentOf(shown) || "the workspace root"} is not a directory in the sandbox`, "create the folder first (run mkdir in the sandbox)");
    }
    const current = readEntry(sandbox, rel);
    if (current && current.type !== "file") {
      throw new PaddockError("E_INVALID_PARAMS", `${shown} is a ${current.type} in the sandbox, not a file`, "only regular files can be written", { field: "path" });
    }
    putFile(sandbox, rel, { bytes }, (current?.mode ?? 0o644) & ~0o6000, undefined);
  } finally {
    sandbox.close();
  }
}

function quietLstat(tree: Beneath, rel: string): fs.Stats | undefined {
  try {
    return tree.lstat(rel);
  } catch {
    return undefined;
  }
}
