/**
 * The runtimes, and which networks and limits each has: one table for the agent (which
 * refuses the others) and its clients (which offer only these). Apart from the schemas, so
 * the extension loads no zod.
 */
export const RUNTIME_KINDS = ["process", "container", "vm"] as const;
export type RuntimeKind = (typeof RUNTIME_KINDS)[number];

/** none: loopback only; host: the host's network; nat: user-mode NAT (slirp4netns). */
export const NETWORK_MODES = ["none", "host", "nat"] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

export const RUNTIME_NETWORKS: Record<RuntimeKind, readonly NetworkMode[]> = {
  process: ["none", "host"],
  container: ["none", "host", "nat"],
  vm: ["none", "nat"],
};

export type LimitName = "memoryMiB" | "pids" | "cpus" | "tmpMiB";

/** The limits each runtime takes. A VM's are its memory and CPUs: its processes and its /tmp are its guest kernel's, inside that memory. */
export const RUNTIME_LIMITS: Record<RuntimeKind, readonly LimitName[]> = {
  process: ["memoryMiB", "pids", "cpus", "tmpMiB"],
  container: ["memoryMiB", "pids", "cpus", "tmpMiB"],
  vm: ["memoryMiB", "cpus"],
};

const LABELS: Record<RuntimeKind, string> = { process: "process", container: "container", vm: "VM" };

/** Why `network` is not for `runtime`, and which runtimes have it; undefined when it is. */
export function networkRefusal(runtime: RuntimeKind, network: NetworkMode): string | undefined {
  if (RUNTIME_NETWORKS[runtime].includes(network)) return undefined;
  const having = RUNTIME_KINDS.filter((r) => RUNTIME_NETWORKS[r].includes(network)).map((r) => LABELS[r]);
  return `network ${network} is not for ${LABELS[runtime]} sandboxes (network ${network} is for ${having.join(" and ")} sandboxes)`;
}
