/**
 * Rescans of an upper directory whose folders outnumber its inotify watches: a walk of the
 * whole tree through descriptors, in slices of a few milliseconds with the event loop served
 * between them, that finds the entries changed since a moment by their ctime (which a write,
 * a create, a rename or a removal inside a folder sets, and a program cannot set back).
 * Memory is bounded by the depth of the walk, not by the size of the tree. The agent runs one
 * rescan at a time, and rests between them in proportion to what the last one cost.
 */
import * as fs from "node:fs";
import { childOf } from "../sys/beneath";
import { closeQuietly, entriesOf, lstatAt, openFolderAt, typeKnown, type Entries } from "./folder-at";

/** How long one slice of a walk may hold the event loop. */
const SLICE_MS = 8;
const ENTRIES_BETWEEN_CLOCK_READS = 64;
/** Folders nested deeper are not entered (each level holds descriptors while walked); their own changes are still seen. */
const MAX_DEPTH = 128;

export interface ScanRequest {
  rootFd: number;
  /** Entries whose ctime is at or after this (ms since the epoch) are reported. */
  since: number;
  /** Entries of these folders are not reported (a watch reports them), though their subfolders are walked. */
  isWatched: (folder: string) => boolean;
  /** More changed entries than this make the result "everything". */
  maxReported: number;
  /** Asked between slices: true ends the walk early (the sandbox stopped being watched). */
  cancelled: () => boolean;
}

export interface ScanResult {
  /** Changed entries, or "everything" when there were more than the request's maximum. */
  changed: string[] | "everything";
  /** Folders seen (all of the tree's when completed). */
  folders: number;
  completed: boolean;
}

interface Level {
  rel: string;
  fd: number;
  entries: Entries;
  watched: boolean;
}

const nextSlice = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function scanUpper(request: ScanRequest): Promise<ScanResult> {
  const changed: string[] = [];
  let everything = false;
  let folders = 0;
  const stack: Level[] = [];
  const enter = (rel: string, fd: number): void => {
    const entries = entriesOf(fd);
    if (!entries) return closeQuietly(fd);
    stack.push({ rel, fd, entries, watched: request.isWatched(rel) });
  };
  const leave = (): void => {
    const level = stack.pop()!;
    level.entries.close();
    closeQuietly(level.fd);
  };
  const root = openFolderAt(request.rootFd, "");
  if (root !== undefined) enter("", root);
  try {
    while (stack.length > 0) {
      if (request.cancelled()) return { changed: [], folders, completed: false };
      // Past the maximum the answer is "everything" whatever the rest holds.
      if (everything) return { changed: "everything", folders, completed: false };
      const deadline = performance.now() + SLICE_MS;
      for (let n = 0; stack.length > 0; n++) {
        if (n % ENTRIES_BETWEEN_CLOCK_READS === 0 && performance.now() > deadline) break;
        const level = stack[stack.length - 1]!;
        let entry: fs.Dirent | null;
        try {
          entry = level.entries.next();
        } catch {
          entry = null; // the folder went away under the walk
        }
        if (!entry) {
          leave();
          continue;
        }
        const rel = childOf(level.rel, entry.name);
        let isFolder: boolean;
        if (level.watched && typeKnown(entry)) {
          isFolder = entry.isDirectory(); // a watch reports this entry: its type is all the walk needs
        } else {
          const stat = lstatAt(level.fd, entry.name);
          if (!stat) continue;
          if (!level.watched && !everything && stat.ctimeMs >= request.since) {
            if (changed.length < request.maxReported) changed.push(rel);
            else everything = true;
          }
          isFolder = stat.isDirectory();
        }
        if (!isFolder) continue;
        folders++;
        if (stack.length >= MAX_DEPTH) continue;
        const fd = openFolderAt(level.fd, entry.name);
        if (fd !== undefined) enter(rel, fd);
      }
      await nextSlice();
    }
    return { changed: everything ? "everything" : changed, folders, completed: true };
  } finally {
    while (stack.length > 0) leave();
  }
}

/** How many times its own duration the queue rests after a rescan: rescans take at most about a fifth of the agent's time. */
const REST_FACTOR = 4;

/** Rescans of all sandboxes, one at a time. */
export class RescanQueue {
  private tail: Promise<void> = Promise.resolve();

  run<T>(scan: () => Promise<T>): Promise<T> {
    let cost = 0;
    const result = this.tail.then(async () => {
      const started = performance.now();
      try {
        return await scan();
      } finally {
        cost = performance.now() - started;
      }
    });
    const rest = () => new Promise<void>((resolve) => setTimeout(resolve, cost * REST_FACTOR).unref());
    this.tail = result.then(rest, rest);
    return result;
  }
}
