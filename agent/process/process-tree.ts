/**
 * A command's processes as /proc shows them: children of every thread (a Go program such as
 * runc forks from any of its threads), the whole tree below a process, and killing it from
 * the leaves up so that nothing is re-parented out of reach before its turn.
 */
import * as fs from "node:fs";

export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tasks.flatMap((tid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
}

/** Every live process below `pid`, deepest first. */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const visit = (parent: number) => {
    for (const child of childrenOf(parent)) {
      visit(child);
      if (!isZombie(child)) out.push(child);
    }
  };
  visit(pid);
  return out;
}

function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true; // gone
  }
}

/** The container command wrapper (native/container-init.c) and its "clean up and exit" signal, SIGRTMIN+2 in glibc. */
const WRAPPER = ".paddock-init";
const WRAPPER_STOP = 36;

/**
 * SIGKILLs everything below `pid`, leaves first, then `pid` itself. A few rounds catch what
 * forked while the first one ran (a SIGKILLed process forks no more). A container command's
 * wrapper is asked to stop instead: it kills its command and everything re-parented to it,
 * which it alone can see (a SIGKILLed wrapper would leave its command's orphans to the
 * container's PID 1).
 */
export function killTree(pid: number): void {
  for (let round = 0; round < 3; round++) {
    const below = descendants(pid);
    if (below.length === 0) break;
    for (const p of below) signal(p, commOf(p) === WRAPPER ? WRAPPER_STOP : "SIGKILL");
  }
  signal(pid, "SIGKILL");
}

function commOf(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals | number): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Launchers between the agent and the program: bubblewrap, runc's init stages, the container's command wrapper. */
const LAUNCHERS = new Set(["bwrap", WRAPPER]);

/** The first process below `pid` that is the program itself, not one of its launchers. */
export function programPid(pid: number): number | undefined {
  const queue = childrenOf(pid);
  while (queue.length > 0) {
    const candidate = queue.shift()!;
    const comm = commOf(candidate);
    if (comm === undefined) continue; // it just exited
    if (!LAUNCHERS.has(comm) && !comm.startsWith("runc:[")) return candidate;
    queue.push(...childrenOf(candidate));
  }
  return undefined;
}
