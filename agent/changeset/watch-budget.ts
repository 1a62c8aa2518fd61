/**
 * How many inotify watches the agent allows itself. The kernel's limit,
 * fs.inotify.max_user_watches, is per user: a root agent shares it with every other program
 * of root's on the host, so the agent takes only a share of it, and each sandbox only an
 * allowance of that share. Watches are counted here, not by the kernel, so that running out
 * is a choice the agent makes (and falls back from), never ENOSPC for someone else.
 */
import * as fs from "node:fs";

/** Folders of one sandbox that get a watch of their own; past this, its deeper folders are rescanned. */
export const WATCHES_PER_SANDBOX = 2000;
/** The agent's share of the host's limit: most of it stays for other programs. */
const HOST_SHARE = 1 / 8;
/** Used when the host's limit cannot be read (the kernel's historical default). */
const FALLBACK_HOST_LIMIT = 8192;
const HOST_LIMIT_FILE = "/proc/sys/fs/inotify/max_user_watches";

export interface WatchLimits {
  perSandbox: number;
  total: number;
}

export function hostWatchLimit(file = HOST_LIMIT_FILE): number {
  try {
    const limit = Number(fs.readFileSync(file, "utf8").trim());
    return Number.isSafeInteger(limit) && limit > 0 ? limit : FALLBACK_HOST_LIMIT;
  } catch {
    return FALLBACK_HOST_LIMIT;
  }
}

export function defaultWatchLimits(hostLimit = hostWatchLimit()): WatchLimits {
  const total = Math.max(1, Math.floor(hostLimit * HOST_SHARE));
  return { perSandbox: Math.min(WATCHES_PER_SANDBOX, total), total };
}

/** The agent's watches together: taken one at a time, given back when a watch ends. */
export class WatchBudget {
  private used = 0;

  constructor(readonly limits: WatchLimits = defaultWatchLimits()) {}

  get inUse(): number {
    return this.used;
  }

  take(): boolean {
    if (this.used >= this.limits.total) return false;
    this.used++;
    return true;
  }

  give(): void {
    if (this.used > 0) this.used--;
  }
}
