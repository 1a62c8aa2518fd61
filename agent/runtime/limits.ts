/**
 * The limits a sandbox runs with: what its owner asked for, and Paddock's defaults for what
 * they did not, so that no sandbox can take the host down unasked (thousands of processes,
 * all of its memory, a /tmp as big as half the RAM). Decided here only: the runtimes apply
 * what this returns, and sandbox/get reports it.
 */
import * as os from "node:os";
import { PaddockError } from "../../protocol/errors";
import type { Limits, Sandbox } from "../../protocol/methods";
import { RUNTIME_LIMITS } from "../../protocol/runtime-kinds";

export const MiB = 1024 * 1024;
export const DEFAULT_PIDS = 4096;
/** /tmp's size unless asked; at most a quarter of a small host's memory. */
export const DEFAULT_TMP_MIB = 1024;
/** Memory unless asked: half of the host's, at most this. */
export const DEFAULT_MEMORY_CAP_MIB = 16 * 1024;
/** /dev/shm and /run of a process sandbox (as a container's /dev and /dev/shm): small by nature. */
export const SMALL_TMPFS_MIB = 64;
/** A VM's own memory and CPUs unless asked; pooled VMs are booted with these. */
export const VM_DEFAULTS = { memoryMiB: 512, cpus: 1 } as const;

/** Which controllers the agent's cgroups have: the limits it can enforce. */
export interface CgroupControllers {
  memory: boolean;
  pids: boolean;
  cpu: boolean;
}

/** A default that is not in force because the agent has no cgroup to enforce it with. */
export type UnavailableLimit = NonNullable<Sandbox["limitsUnavailable"]>[number];

export interface ResolvedLimits {
  limits: Limits;
  unavailable: UnavailableLimit[];
}

export function hostMemoryMiB(): number {
  return Math.floor(os.totalmem() / MiB);
}

function refuse(field: keyof Limits, message: string, hint: string): never {
  throw new PaddockError("E_INVALID_PARAMS", message, hint, { field: `limits.${field}` });
}

function refuseBeyondHost(asked: Limits, hostMiB: number): void {
  for (const field of ["memoryMiB", "tmpMiB"] as const) {
    const value = asked[field];
    if (value !== undefined && value > hostMiB) {
      refuse(field, `${field} ${value} is more memory than this host has (${hostMiB} MiB)`, `ask for at most ${hostMiB}`);
    }
  }
}

/**
 * The limits in force for a new sandbox that a cgroup holds (a process or container sandbox),
 * given what was asked and what the agent's cgroups (none: undefined) can enforce. Refuses
 * what cannot be had, before anything is made.
 */
export function resolveLimits(asked: Limits, cgroups: CgroupControllers | undefined, hostMiB = hostMemoryMiB()): ResolvedLimits {
  refuseBeyondHost(asked, hostMiB);
  const controllerOf = { memoryMiB: "memory", pids: "pids", cpus: "cpu" } as const;
  for (const field of ["memoryMiB", "pids", "cpus"] as const) {
    if (asked[field] === undefined) continue;
    if (!cgroups) throw new PaddockError("E_CGROUP", "limits need cgroups, and this agent cannot create them", "run the agent as root, or create the sandbox without memory, pids and cpu limits");
    if (!cgroups[controllerOf[field]]) throw new PaddockError("E_CGROUP", `no ${controllerOf[field]} controller on this machine`, `create the sandbox without ${field}`, { field: `limits.${field}` });
  }
  const limits: Limits = { tmpMiB: asked.tmpMiB ?? Math.max(16, Math.min(DEFAULT_TMP_MIB, Math.floor(hostMiB / 4))) };
  const unavailable: UnavailableLimit[] = [];
  if (cgroups?.memory) limits.memoryMiB = asked.memoryMiB ?? Math.max(16, Math.min(DEFAULT_MEMORY_CAP_MIB, Math.floor(hostMiB / 2)));
  else unavailable.push("memoryMiB");
  if (cgroups?.pids) limits.pids = asked.pids ?? DEFAULT_PIDS;
  else unavailable.push("pids");
  if (asked.cpus !== undefined) limits.cpus = asked.cpus;
  return { limits, unavailable };
}

const NOT_FOR_VMS = {
  pids: { message: "a pids limit is not for VM sandboxes (their processes are the guest kernel's)", hint: "give memoryMiB and cpus only" },
  tmpMiB: { message: "a VM's /tmp is in the guest's own memory: it has no size of its own", hint: "give memoryMiB (the guest's memory) instead" },
};

/** The limits in force for a new VM sandbox: its machine's. */
export function resolveVmLimits(asked: Limits, hostMiB = hostMemoryMiB()): ResolvedLimits {
  refuseBeyondHost(asked, hostMiB);
  return { limits: vmMachine(asked), unavailable: [] };
}

/**
 * A VM's memory and whole CPUs. Its processes and its /tmp are the guest kernel's, inside
 * that memory: there is no pids limit or /tmp size to give.
 */
export function vmMachine(asked: Limits): { memoryMiB: number; cpus: number } {
  for (const field of ["pids", "tmpMiB"] as const) {
    if (asked[field] !== undefined && !RUNTIME_LIMITS.vm.includes(field)) refuse(field, NOT_FOR_VMS[field].message, NOT_FOR_VMS[field].hint);
  }
  return { memoryMiB: asked.memoryMiB ?? VM_DEFAULTS.memoryMiB, cpus: Math.max(1, Math.ceil(asked.cpus ?? VM_DEFAULTS.cpus)) };
}
