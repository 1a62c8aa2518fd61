/**
 * What a new sandbox is asked for, from the settings and the runtime picked: pure, so that it
 * is unit-tested. The settings hold for every runtime, but not every runtime has every
 * network or limit: what one lacks is left out (and said), never sent to be refused.
 */
import type { Limits, NetworkMode, RuntimeKind } from "../../protocol/methods";
import { RUNTIME_NETWORKS } from "../../protocol/runtime-kinds";

export interface CreateOptions {
  network: NetworkMode;
  limits: Limits;
  /** Set when the network setting does not apply to this runtime. */
  networkNote?: { wanted: NetworkMode; runtime: RuntimeKind };
}

export function createOptions(runtime: RuntimeKind, settings: { network: NetworkMode; memoryMiB: number; pids: number; cpus: number; tmpMiB?: number }): CreateOptions {
  // 0 (or nothing) leaves a limit to the agent's default.
  const limits: Limits = {
    ...(settings.memoryMiB > 0 ? { memoryMiB: settings.memoryMiB } : {}),
    // A VM's limits are its memory and CPUs; its processes and its /tmp are the guest kernel's.
    ...(settings.pids > 0 && runtime !== "vm" ? { pids: settings.pids } : {}),
    ...(settings.cpus > 0 ? { cpus: settings.cpus } : {}),
    ...((settings.tmpMiB ?? 0) > 0 && runtime !== "vm" ? { tmpMiB: settings.tmpMiB } : {}),
  };
  if (RUNTIME_NETWORKS[runtime].includes(settings.network)) return { network: settings.network, limits };
  return { network: "none", limits, networkNote: { wanted: settings.network, runtime } };
}
