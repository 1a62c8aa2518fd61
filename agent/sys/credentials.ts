/**
 * File work done with a user's rights inside a root agent.
 *
 * The kernel checks file access against a thread's filesystem uid, filesystem gid and
 * supplementary groups, and makes new files with them. `withUserRights` sets all three on
 * the calling thread, with raw system calls (glibc's wrappers would change every thread of
 * the process, libuv's pool included), runs `work`, and puts root's back. Setting the
 * filesystem uid to a non-zero one also drops CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
 * CAP_FOWNER, CAP_CHOWN and CAP_FSETID from the thread's effective set (capabilities(7)), so
 * within `work` the agent can open, create, rename, remove and chmod exactly what the user
 * could in a shell, and nothing more.
 *
 * `work` must be synchronous: Node's synchronous fs calls run on the calling thread, and
 * nothing else runs on it until they return. An asynchronous call would run on the pool,
 * with root's rights.
 */
import * as fs from "node:fs";
import { setFsGid, setFsUid, setThreadGroups } from "./libc";

export interface UserRights {
  uid: number;
  gid: number;
  /** Supplementary groups, as the user database gives them. */
  groups: readonly number[];
}

let current: UserRights | undefined;
/** The agent's own groups, read before the first switch (as the kernel has them: Node's getgroups adds the egid). */
let agentGroups: number[] | undefined;

function threadGroups(): number[] {
  const line = fs.readFileSync("/proc/thread-self/status", "utf8").split("\n").find((l) => l.startsWith("Groups:")) ?? "";
  return line.slice("Groups:".length).trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Whether switching means anything: only a root agent acting for a user other than root. */
export function needsSwitch(rights: UserRights | undefined): rights is UserRights {
  return rights !== undefined && rights.uid !== 0 && process.getuid?.() === 0;
}

/** Runs `work` with `rights` (nothing changes when they are root's, or the agent is not root). */
export function withUserRights<T>(rights: UserRights | undefined, work: () => T): T {
  if (!needsSwitch(rights) || current === rights) return checkedSync(work());
  agentGroups ??= threadGroups();
  const previous = current;
  try {
    become(rights);
    return checkedSync(work());
  } finally {
    if (previous) become(previous);
    else becomeRoot();
  }
}

function checkedSync<T>(result: T): T {
  if (result instanceof Promise) throw new Error("withUserRights: work must be synchronous");
  return result;
}

/** Takes the user's rights; half a switch is never left behind (the caller puts the previous ones back). */
function become(rights: UserRights): void {
  current = rights;
  setThreadGroups(rights.groups);
  setFsGid(rights.gid, false);
  // Read back: a uid that did not take would leave root's rights in place.
  setFsUid(rights.uid);
}

function becomeRoot(): void {
  current = undefined;
  setFsUid(process.geteuid?.() ?? 0, false);
  setFsGid(process.getegid?.() ?? 0, false);
  setThreadGroups(agentGroups ?? []);
}
