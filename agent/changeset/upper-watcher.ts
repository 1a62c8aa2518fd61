/**
 * Follows the upper directories of running sandboxes, and reports in debounced batches which
 * workspace paths may have changed: the views of a client follow a running command without
 * listing everything again. Each sandbox is followed within bounds (watched-upper.ts): a
 * share of the host's inotify watches for all of them together, an allowance for each, and
 * rescans a step at a time where a sandbox has more folders than its allowance.
 */
import type { UpperFormat } from "./upper-format";
import { WatchedUpper, type WatchShared } from "./watched-upper";
import { RescanQueue } from "./upper-rescan";
import { WatchBudget, type WatchLimits } from "./watch-budget";

const READY_TIMEOUT_MS = 2000;

export class UpperWatcher {
  private readonly uppers = new Map<string, WatchedUpper>();
  private readonly shared: WatchShared;

  constructor(
    private readonly format: UpperFormat,
    private readonly onChange: (id: string, paths: string[]) => void,
    limits?: WatchLimits,
  ) {
    this.shared = { budget: new WatchBudget(limits), rescans: new RescanQueue() };
  }

  /** Resolves once the watches are in place (events before that would be taken for the initial state). */
  watch(id: string, upperRoot: string): Promise<void> {
    if (this.uppers.has(id)) return Promise.resolve();
    const upper = WatchedUpper.open(upperRoot, this.format, this.shared, (paths) => this.onChange(id, paths));
    if (!upper) return Promise.resolve(); // no upper directory: nothing to follow
    this.uppers.set(id, upper);
    // A watch slow to start (a huge upper dir) must not hold up the sandbox: live updates only lag.
    return Promise.race([upper.start(), new Promise<void>((resolve) => setTimeout(resolve, READY_TIMEOUT_MS).unref())]);
  }

  async unwatch(id: string): Promise<void> {
    const upper = this.uppers.get(id);
    if (!upper) return;
    this.uppers.delete(id);
    upper.close();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.uppers.keys()].map((id) => this.unwatch(id)));
  }
}
