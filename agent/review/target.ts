/**
 * What every review operation works on: a sandbox's workspace, its upper directory, its
 * bases and its journal, and how a request's paths and hunks select among its changes.
 */
import * as fs from "node:fs";
import { PaddockError } from "../../protocol/errors";
import type { Change, HunkSelector } from "../../protocol/methods";
import type { Logger } from "../log/logger";
import { Beneath, parentOf } from "../sys/beneath";
import { withUserRights, type UserRights } from "../sys/credentials";
import type { UpperFormat } from "../changeset/upper-format";
import type { BaseStore } from "./bases";
import type { LineChange } from "./line-changes";
import type { UndoRecorder } from "./undo-record";

export interface ReviewTarget {
  sandboxId: string;
  workspace: string;
  /** "dev:ino" recorded at creation: a directory put in the workspace's place is refused. */
  workspaceId: string;
  upper: string;
  /** The marks the upper directory's overlay writes (whiteouts, opaque folders). */
  upperFormat: UpperFormat;
  journal: string;
  bases: BaseStore;
  /**
   * The sandbox owner's rights, with which every read and write of the workspace, the upper
   * directory and the merged view is done (undefined: the agent's own, for root's sandboxes).
   */
  rights: UserRights | undefined;
  /**
   * Root's own sandboxes: what approve creates gets the owner of the sandbox's entry (and
   * reject the workspace's). With a user's rights, what the user writes is theirs.
   */
  chown: boolean;
  log: Logger;
  /** Keeps what the operation changes, so that it can be undone (undo.ts). */
  undo?: UndoRecorder;
  /**
   * Approve fills it, the reject that follows it reads it: for a file approved in hunks and
   * merged with the workspace's own edits, the sandbox's copy with those edits merged in too
   * (its other changes kept), which it then takes in place of the workspace's version.
   */
  rebased?: Map<string, Buffer>;
}

/** The workspace as a tree, checked to still be the directory the sandbox was made from. */
export function openWorkspaceTree(target: Pick<ReviewTarget, "workspace" | "workspaceId" | "rights">): Beneath {
  let tree: Beneath;
  try {
    // The workspace's own path is walked with the owner's rights too: a folder they cannot reach is refused.
    tree = withUserRights(target.rights, () => Beneath.open(target.workspace, target.rights));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES") throw new PaddockError("E_INVALID_WORKSPACE", `the workspace ${target.workspace} cannot be reached: permission denied`, "its changes are kept in the sandbox; review them once you can open the folder in a shell again");
    throw new PaddockError("E_INVALID_WORKSPACE", `cannot open the workspace ${target.workspace}: ${code ?? String(err)}`, "its changes are kept in the sandbox");
  }
  const st = fs.fstatSync(tree.fd);
  if (`${st.dev}:${st.ino}` !== target.workspaceId) {
    tree.close();
    throw new PaddockError("E_INVALID_WORKSPACE", `${target.workspace} is no longer the directory this sandbox was made from`, "its changes are kept in the sandbox; delete it when you no longer need them");
  }
  return tree;
}

/** The workspace and upper trees, opened together; `close` closes both. */
function openTrees(target: ReviewTarget): { ws: Beneath; upper: Beneath; close(): void } {
  const ws = openWorkspaceTree(target);
  try {
    const upper = Beneath.open(target.upper, target.rights);
    return { ws, upper, close: () => (upper.close(), ws.close()) };
  } catch (err) {
    ws.close();
    throw err;
  }
}

/** Runs `work` with the trees open, and closes them whatever happens. */
export function withTrees<T>(target: ReviewTarget, work: (ws: Beneath, upper: Beneath) => T): T {
  const trees = openTrees(target);
  try {
    return work(trees.ws, trees.upper);
  } finally {
    trees.close();
  }
}

/** withTrees for work that waits between steps (the trees stay open until it ends). */
export async function withTreesAsync<T>(target: ReviewTarget, work: (ws: Beneath, upper: Beneath) => Promise<T>): Promise<T> {
  const trees = openTrees(target);
  try {
    return await work(trees.ws, trees.upper);
  } finally {
    trees.close();
  }
}

/** Everything a sandbox did at one path: a deletion, an addition or modification, or both (a type change). */
export interface PathChange {
  path: string;
  deleted?: Change;
  /** Added or modified: what the sandbox has there now. */
  current?: Change;
}

export function byPath(changes: readonly Change[]): PathChange[] {
  const paths = new Map<string, PathChange>();
  for (const change of changes) {
    const entry = paths.get(change.path) ?? { path: change.path };
    if (change.kind === "deleted") entry.deleted = change;
    else entry.current = change;
    paths.set(change.path, entry);
  }
  const keyed = [...paths.values()].map((change) => ({ change, key: sortKey(change.path) }));
  return keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map(({ change }) => change);
}

/** Path order in which a directory comes right before what it holds. */
export function compareLike(a: string, b: string): number {
  const [ka, kb] = [sortKey(a), sortKey(b)];
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/**
 * A path as a string that sorts in `compareLike` order: "/" made the lowest character (no name
 * holds a NUL), so a folder's entries follow it and come before any sibling it is a prefix of.
 * Computed once per path, a sort compares plain strings.
 */
function sortKey(rel: string): string {
  return rel.replaceAll("/", "\0");
}

export interface Selection {
  /** Whole paths selected. */
  paths: PathChange[];
  /** Paths of which only some hunks are selected. */
  hunks: Map<string, { change: PathChange; ranges: LineChange[] }>;
  /** Requested paths that are not changes. */
  unknown: string[];
}

/**
 * Paths that each stand for themselves and everything below them. Asking whether one covers a
 * path walks that path's folders, so a request naming 100,000 paths against as many changes
 * costs about as much as reading them, never their product.
 */
export class PathCover {
  private readonly roots: Set<string>;

  constructor(paths: Iterable<string> = []) {
    this.roots = new Set(paths);
  }

  add(rel: string): void {
    this.roots.add(rel);
  }

  /** The paths of the cover that `rel` is, or is below. */
  *coveringOf(rel: string): Generator<string> {
    for (let at = rel; at !== ""; at = parentOf(at)) if (this.roots.has(at)) yield at;
  }

  /** Whether `rel` is, or is below, one of the paths. */
  covers(rel: string): boolean {
    return !this.coveringOf(rel).next().done;
  }

  /** Whether `rel` is strictly below one of the paths. */
  coversBelow(rel: string): boolean {
    const parent = parentOf(rel);
    return parent !== rel && this.covers(parent);
  }
}

/**
 * A path selects itself and everything below it; no paths and no hunks select everything;
 * hunks alone select only their files' hunks.
 */
export function select(changes: readonly Change[], paths: readonly string[] | undefined, hunks: readonly HunkSelector[] | undefined, options: { newFolders?: boolean } = {}): Selection {
  const all = byPath(changes);
  const byName = new Map(all.map((c) => [c.path, c]));
  const unknown: string[] = [];
  let chosen: PathChange[];
  if (paths === undefined) {
    chosen = hunks === undefined ? all : [];
  } else {
    const requested = new PathCover(paths);
    const matched = new Set<string>();
    const wanted = new Set<PathChange>();
    for (const c of all) {
      for (const p of requested.coveringOf(c.path)) {
        matched.add(p);
        wanted.add(c);
      }
    }
    unknown.push(...paths.filter((p) => !matched.has(p)));
    // Approving a new file brings the new folders it needs along.
    for (const c of options.newFolders ? [...wanted] : []) {
      for (let dir = parentOf(c.path); dir !== ""; dir = parentOf(dir)) {
        const folder = byName.get(dir);
        if (folder?.current?.kind === "added" && folder.current.type === "directory") wanted.add(folder);
      }
    }
    chosen = all.filter((c) => wanted.has(c));
  }
  const chosenPaths = new Set(chosen.map((c) => c.path));
  const selectedHunks = new Map<string, { change: PathChange; ranges: LineChange[] }>();
  for (const hunk of hunks ?? []) {
    if (chosenPaths.has(hunk.path)) continue; // the whole file is selected anyway
    const change = byName.get(hunk.path);
    if (!change?.current || change.deleted || change.current.kind !== "modified" || change.current.type !== "file") {
      throw new PaddockError("E_INVALID_PARAMS", `${hunk.path} is not a modified file of this sandbox, so it has no hunks`, "sandbox/diff lists the hunks of each modified text file", { field: "hunks" });
    }
    const entry = selectedHunks.get(hunk.path) ?? { change, ranges: [] };
    entry.ranges.push({ oldStart: hunk.oldStart, oldEnd: hunk.oldEnd, newStart: hunk.newStart, newEnd: hunk.newEnd });
    selectedHunks.set(hunk.path, entry);
  }
  return { paths: chosen, hunks: selectedHunks, unknown };
}

/** Which paths `force` (true, or a list of paths and folders) covers. */
export function forcedPaths(force: boolean | readonly string[] | undefined): (rel: string) => boolean {
  if (force === true) return () => true;
  if (!Array.isArray(force)) return () => false;
  const cover = new PathCover(force);
  return (rel) => cover.covers(rel);
}
