/**
 * The PATH of every program the agent runs, in a sandbox or on the host (probes, skopeo, QEMU):
 * fixed, so that no caller's environment decides which binary runs as root.
 */
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
