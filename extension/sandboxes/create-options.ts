/**
 * What a new sandbox is asked for, from the settings and the runtime picked: pure, so that it
 * is unit-tested. The settings hold for every runtime, but not every runtime has every
 * network or limit: what one lacks is left out (and said), never sent to be refused.
 */
import type { Limits, NetworkMode, RuntimeKind } from "../../protocol/methods";
import { RUNTIME_LIMITS, RUNTIME_NETWORKS, type LimitName } from "../../protocol/runtime-kinds";

export interface CreateOptions {
  network: NetworkMode;
  limits: Limits;
  /** Set when the network setting does not apply to this runtime. */
  networkNote?: { wanted: NetworkMode; runtime: RuntimeKind };
}

export function createOptions(runtime: RuntimeKind, settings: { network: NetworkMode; memoryMiB: number; pids: number; cpus: number; tmpMiB?: number }): CreateOptions {
  // 0 (or nothing) leaves a limit to the agent's default.
  const takes = (name: LimitName, value: number | undefined) => (value ?? 0) > 0 && RUNTIME_LIMITS[runtime].includes(name);
  const limits: Limits = {
    ...(takes("memoryMiB", settings.memoryMiB) ? { memoryMiB: settings.memoryMiB } : {}),
    ...(takes("pids", settings.pids) ? { pids: settings.pids } : {}),
    ...(takes("cpus", settings.cpus) ? { cpus: settings.cpus } : {}),
    ...(takes("tmpMiB", settings.tmpMiB) ? { tmpMiB: settings.tmpMiB } : {}),
  };
  if (RUNTIME_NETWORKS[runtime].includes(settings.network)) return { network: settings.network, limits };
  return { network: "none", limits, networkNote: { wanted: settings.network, runtime } };
}
