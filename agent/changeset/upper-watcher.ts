/**
 * Follows a sandbox's upper directory while it runs (chokidar over inotify), and reports in
 * debounced batches which workspace paths may have changed: the views of a client follow a
 * running command without listing everything again.
 */
import { watch, type FSWatcher } from "chokidar";
import * as path from "node:path";
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from "./changes";
import { Beneath } from "../sys/beneath";

const DEBOUNCE_MS = 100;
const READY_TIMEOUT_MS = 2000;

/** The workspace path an upper directory entry speaks about. */
export function workspacePathOf(upperRoot: string, file: string): string {
  const rel = path.relative(upperRoot, file).split(path.sep).join("/");
  const name = path.posix.basename(rel);
  const dir = path.posix.dirname(rel) === "." ? "" : path.posix.dirname(rel);
  if (name === OPAQUE_MARKER) return dir;
  if (name.startsWith(WHITEOUT_PREFIX)) return dir === "" ? name.slice(WHITEOUT_PREFIX.length) : `${dir}/${name.slice(WHITEOUT_PREFIX.length)}`;
  return rel;
}

const MAX_LISTED = 10_000;

/** Entries below a folder of the upper dir (confined to it, symlinks not followed), up to a cap. */
function entriesBelow(upperRoot: string, rel: string): string[] {
  const out: string[] = [];
  let root: Beneath | undefined;
  try {
    root = Beneath.open(upperRoot);
    const walk = (dir: string) => {
      for (const entry of root!.readdirTypes(dir)) {
        if (out.length >= MAX_LISTED) return;
        const child = `${dir}/${entry.name}`;
        out.push(child);
        if (entry.isDirectory()) walk(child);
      }
    };
    walk(rel);
  } catch {
    // gone or swapped meanwhile: what was listed is enough
  } finally {
    root?.close();
  }
  return out;
}

export class UpperWatcher {
  private readonly watchers = new Map<string, { watcher: FSWatcher; timer?: NodeJS.Timeout; pending: Set<string> }>();

  constructor(private readonly onChange: (id: string, paths: string[]) => void) {}

  /** Resolves once the watch is in place (events before that would be taken for the initial state). */
  watch(id: string, upperRoot: string): Promise<void> {
    if (this.watchers.has(id)) return Promise.resolve();
    const watcher = watch(upperRoot, { ignoreInitial: true, followSymlinks: false, persistent: false });
    const ready = new Promise<void>((resolve) => {
      watcher.once("ready", () => resolve());
      // A watch slow to start (a huge upper dir) must not hold up the sandbox: live updates only lag.
      setTimeout(resolve, READY_TIMEOUT_MS).unref();
    });
    const state: { watcher: FSWatcher; timer?: NodeJS.Timeout; pending: Set<string> } = { watcher, pending: new Set() };
    const flush = () => {
      state.timer = undefined;
      const paths = [...state.pending].sort();
      state.pending.clear();
      this.onChange(id, paths);
    };
    watcher.on("all", (event, file) => {
      const rel = workspacePathOf(upperRoot, file);
      if (rel.startsWith("..")) return;
      state.pending.add(rel);
      // Files made in a new folder before its watch was set are never seen by inotify: list them.
      if (event === "addDir" && rel !== "") for (const entry of entriesBelow(upperRoot, rel)) state.pending.add(workspacePathOf(upperRoot, path.join(upperRoot, entry)));
      state.timer ??= setTimeout(flush, DEBOUNCE_MS);
    });
    // A watch that fails (too many inotify watches, say) only costs live updates.
    watcher.on("error", () => undefined);
    this.watchers.set(id, state);
    return ready;
  }

  async unwatch(id: string): Promise<void> {
    const state = this.watchers.get(id);
    if (!state) return;
    this.watchers.delete(id);
    clearTimeout(state.timer);
    await state.watcher.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.watchers.keys()].map((id) => this.unwatch(id)));
  }
}
