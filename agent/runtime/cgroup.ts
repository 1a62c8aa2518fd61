/**
 * One cgroup per sandbox, on cgroup v2 or on the v1 memory, pids and cpu hierarchies (these
 * machines are hybrid: v1 controllers, an empty v2 tree). Every process of a sandbox joins it
 * before anything else runs, so limits hold and stop/delete can kill everything, daemons that
 * double-forked included.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Limits } from "../../protocol/methods";
import { PaddockError } from "../../protocol/errors";
import { readCgroupLayout, type CgroupLayout } from "../check/probes/cgroups";
import type { CgroupControllers } from "./limits";

const PARENT = "paddock";

/**
 * Sandboxes of one state dir live under paddock/<scope>/, so that two agents on one machine
 * (different state dirs) never take each other's cgroups for orphans.
 */
export function cgroupScope(stateDir: string): string {
  let real = stateDir;
  try {
    real = fs.realpathSync(stateDir);
  } catch {
    // not created yet: the path as given
  }
  return `s-${createHash("sha256").update(real).digest("hex").slice(0, 12)}`;
}

export interface LimitCounters {
  oomKills: number;
  pidsMaxHits: number;
}

export interface SandboxCgroup {
  /** Files a process writes its pid to, to join the sandbox (all hierarchies). */
  readonly procsFiles: string[];
  pids(): number[];
  counters(): LimitCounters;
  /** Kills every process in the cgroup and waits until it is empty. */
  killAll(): Promise<void>;
  remove(): Promise<void>;
}

export interface Cgroups {
  readonly kind: "v1" | "v2";
  /** The limits these cgroups can enforce. */
  readonly controllers: CgroupControllers;
  /** Creates (or re-opens) a sandbox's cgroup and applies its limits. */
  create(id: string, limits: Limits): SandboxCgroup;
  open(id: string): SandboxCgroup | undefined;
  /** The sandbox's cgroup path as an OCI runtime takes it (linux.cgroupsPath). */
  pathOf(id: string): string;
  /** Ids of the sandbox cgroups that exist. */
  list(): string[];
  /** Removes this state dir's parent cgroups if no sandbox is left in them (the agent is stopping). */
  releaseIfEmpty(): void;
}

function rmdirIfEmpty(dir: string): void {
  try {
    fs.rmdirSync(dir);
  } catch {
    // still has sandboxes, or already gone
  }
}

function write(file: string, value: string): void {
  try {
    fs.writeFileSync(file, value);
  } catch (err) {
    throw new PaddockError("E_CGROUP", `cannot write ${value} to ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, "run `paddock check` to see what the cgroups allow");
  }
}

function makeDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new PaddockError("E_CGROUP", `cannot create cgroup ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, "run `paddock check` to see what the cgroups allow");
  }
}

function readNumberAfter(file: string, key: string): number {
  try {
    const line = fs
      .readFileSync(file, "utf8")
      .split("\n")
      .find((l) => l.startsWith(`${key} `));
    return line ? Number(line.split(" ")[1]) : 0;
  } catch {
    return 0;
  }
}

function readPids(procsFile: string): number[] {
  try {
    return fs.readFileSync(procsFile, "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGKILLs what `pids()` lists until it lists nothing (a SIGKILLed process cannot fork). */
async function killUntilEmpty(pids: () => number[], what: string): Promise<void> {
  for (let round = 0; round < 500; round++) {
    const left = pids();
    if (left.length === 0) return;
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    await sleep(round < 10 ? 5 : 20);
  }
  throw new PaddockError("E_CGROUP", `processes in ${what} survived SIGKILL for 10 s`, "a process may be stuck in the kernel (D state); see ps");
}

async function rmdirWhenEmpty(dir: string): Promise<void> {
  for (let round = 0; round < 100; round++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code !== "EBUSY") throw new PaddockError("E_CGROUP", `cannot remove ${dir}: ${code}`, "see the agent log");
      await sleep(10); // the last exiting processes are still being reaped
    }
  }
  throw new PaddockError("E_CGROUP", `cgroup ${dir} stayed busy`, "see the agent log");
}

class CgroupsV1 implements Cgroups {
  readonly kind = "v1";
  readonly controllers: CgroupControllers;
  constructor(
    private readonly roots: { memory?: string; pids: string; cpu?: string },
    private readonly scope: string,
  ) {
    // Probe that the hierarchy is ours to write; the parents themselves are made with the first sandbox.
    fs.accessSync(path.join(roots.pids), fs.constants.W_OK);
    this.controllers = { pids: true, memory: roots.memory !== undefined, cpu: roots.cpu !== undefined };
  }

  private dirs(id: string) {
    const under = (root: string) => path.join(root, PARENT, this.scope, id);
    return {
      pids: under(this.roots.pids),
      memory: this.roots.memory ? under(this.roots.memory) : undefined,
      cpu: this.roots.cpu ? under(this.roots.cpu) : undefined,
    };
  }

  create(id: string, limits: Limits): SandboxCgroup {
    const d = this.dirs(id);
    for (const dir of [d.pids, d.memory, d.cpu]) if (dir) makeDir(dir);
    write(path.join(d.pids, "pids.max"), limits.pids === undefined ? "max" : String(limits.pids));
    if (limits.memoryMiB !== undefined) {
      if (!d.memory) throw new PaddockError("E_CGROUP", "no memory controller on this machine", "run without a memory limit");
      const bytes = String(limits.memoryMiB * 1024 * 1024);
      write(path.join(d.memory, "memory.limit_in_bytes"), bytes);
      // Without this, a sandbox could use swap beyond its limit.
      const memsw = path.join(d.memory, "memory.memsw.limit_in_bytes");
      if (fs.existsSync(memsw)) write(memsw, bytes);
    }
    if (limits.cpus !== undefined) {
      if (!d.cpu) throw new PaddockError("E_CGROUP", "no cpu controller on this machine", "run without a cpu limit");
      write(path.join(d.cpu, "cpu.cfs_period_us"), "100000");
      write(path.join(d.cpu, "cpu.cfs_quota_us"), String(Math.max(1000, Math.round(limits.cpus * 100000))));
    }
    return this.handle(id);
  }

  /** Every v1 hierarchy: an OCI runtime makes a container's path in all of them, not just ours. */
  private hierarchies(): string[] {
    const mount = path.dirname(this.roots.pids);
    return [...new Set([...Object.values(this.roots).filter((r): r is string => r !== undefined), ...subdirectories(mount).map((name) => path.join(mount, name))])];
  }

  open(id: string): SandboxCgroup | undefined {
    return this.hierarchies().some((h) => fs.existsSync(path.join(h, PARENT, this.scope, id))) ? this.handle(id) : undefined;
  }

  list(): string[] {
    return [...new Set(this.hierarchies().flatMap((h) => subdirectories(path.join(h, PARENT, this.scope))))];
  }

  pathOf(id: string): string {
    return `/${PARENT}/${this.scope}/${id}`;
  }

  releaseIfEmpty(): void {
    for (const root of this.hierarchies()) {
      rmdirIfEmpty(path.join(root, PARENT, this.scope));
      rmdirIfEmpty(path.join(root, PARENT));
    }
  }

  private handle(id: string): SandboxCgroup {
    const d = this.dirs(id);
    const all = [d.pids, d.memory, d.cpu].filter((x): x is string => x !== undefined);
    const pids = () => readPids(path.join(d.pids, "cgroup.procs"));
    return {
      procsFiles: all.map((dir) => path.join(dir, "cgroup.procs")),
      pids,
      counters: () => ({
        oomKills: d.memory ? readNumberAfter(path.join(d.memory, "memory.oom_control"), "oom_kill") : 0,
        pidsMaxHits: readNumberAfter(path.join(d.pids, "pids.events"), "max"),
      }),
      killAll: () => killUntilEmpty(pids, d.pids),
      remove: async () => {
        await killUntilEmpty(pids, d.pids);
        for (const dir of all) await rmdirWhenEmpty(dir);
        // What an OCI runtime made in the other hierarchies and did not remove (its state was lost).
        for (const h of this.hierarchies()) await rmdirWhenEmpty(path.join(h, PARENT, this.scope, id));
      },
    };
  }
}

class CgroupsV2 implements Cgroups {
  readonly kind = "v2";
  readonly controllers: CgroupControllers;
  private readonly parent: string;
  private parentReady = false;

  constructor(
    private readonly root: string,
    private readonly available: string[],
    scope: string,
  ) {
    this.parent = path.join(root, PARENT, scope);
    fs.accessSync(root, fs.constants.W_OK);
    this.controllers = { pids: available.includes("pids"), memory: available.includes("memory"), cpu: available.includes("cpu") };
  }

  /** Controllers must be enabled at every level down to the sandboxes' parent. */
  private prepareParent(): void {
    if (this.parentReady) return;
    const enable = ["memory", "pids", "cpu"].filter((c) => this.available.includes(c)).map((c) => `+${c}`).join(" ");
    let dir = this.root;
    for (const part of path.relative(this.root, this.parent).split(path.sep)) {
      if (enable) write(path.join(dir, "cgroup.subtree_control"), enable);
      dir = path.join(dir, part);
      makeDir(dir);
    }
    if (enable) write(path.join(dir, "cgroup.subtree_control"), enable);
    this.parentReady = true;
  }

  create(id: string, limits: Limits): SandboxCgroup {
    this.prepareParent();
    const dir = path.join(this.parent, id);
    makeDir(dir);
    if (this.controllers.pids) write(path.join(dir, "pids.max"), limits.pids === undefined ? "max" : String(limits.pids));
    if (limits.memoryMiB !== undefined) {
      write(path.join(dir, "memory.max"), String(limits.memoryMiB * 1024 * 1024));
      const swap = path.join(dir, "memory.swap.max");
      if (fs.existsSync(swap)) write(swap, "0");
    }
    if (limits.cpus !== undefined) write(path.join(dir, "cpu.max"), `${Math.max(1000, Math.round(limits.cpus * 100000))} 100000`);
    return this.handle(id);
  }

  open(id: string): SandboxCgroup | undefined {
    return fs.existsSync(path.join(this.parent, id)) ? this.handle(id) : undefined;
  }

  list(): string[] {
    return subdirectories(this.parent);
  }

  pathOf(id: string): string {
    return `/${path.relative(this.root, path.join(this.parent, id))}`;
  }

  releaseIfEmpty(): void {
    rmdirIfEmpty(this.parent);
  }

  private handle(id: string): SandboxCgroup {
    const dir = path.join(this.parent, id);
    const pids = () => readPids(path.join(dir, "cgroup.procs"));
    const killAll = async () => {
      const kill = path.join(dir, "cgroup.kill");
      if (fs.existsSync(kill)) write(kill, "1");
      await killUntilEmpty(pids, dir);
    };
    return {
      procsFiles: [path.join(dir, "cgroup.procs")],
      pids,
      counters: () => ({
        oomKills: readNumberAfter(path.join(dir, "memory.events"), "oom_kill"),
        pidsMaxHits: readNumberAfter(path.join(dir, "pids.events"), "max"),
      }),
      killAll,
      remove: async () => {
        await killAll();
        await rmdirWhenEmpty(dir);
      },
    };
  }
}

function subdirectories(dir: string): string[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

/** Picks v2 when its tree has the controllers limits need, else the v1 hierarchies; undefined when neither works. */
export function openCgroups(scope: string, layout: CgroupLayout = readCgroupLayout()): Cgroups | undefined {
  try {
    const v2Limits = layout.v2Controllers.includes("pids") || layout.v2Controllers.includes("memory");
    if (layout.v2Mount && v2Limits) return new CgroupsV2(layout.v2Mount, layout.v2Controllers, scope);
    const pids = layout.v1.get("pids");
    if (pids) return new CgroupsV1({ pids, memory: layout.v1.get("memory"), cpu: layout.v1.get("cpu") }, scope);
  } catch {
    // not writable (e.g. rootless without delegation)
  }
  return undefined;
}
