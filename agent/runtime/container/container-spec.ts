/**
 * The `container` runtime's pure half: the OCI bundle config of a container sandbox and the
 * `runc exec` command line of a program in it. Running them is containers.ts's job.
 *
 * The container's root is the image's layers with a private upper layer; the sandbox's
 * merged workspace is bound at /workspace; PID 1 is Paddock's own small init (bound from the
 * host, so any image works, even one without a shell); every program is started with
 * `runc exec`, as the sandbox's owner, like the process runtime's.
 */
import type { Limits, NetworkMode } from "../../../protocol/methods";
import { WORKSPACE_IN_GUEST, guestCwd, sandboxEnv, type LaunchSpec } from "../launch-spec";
import { DEFAULT_PATH } from "../../sys/default-path";
/** On /dev (a tmpfs of the container's), so that the image's own file system is not touched. */
export const INIT_IN_CONTAINER = "/dev/.paddock-init";

export interface ContainerInput {
  rootfs: string;
  /** The sandbox's merged view on the host. */
  workspaceView: string;
  initBinary: string;
  /** The image's `config` (OCI image config): its Env is used (commands start in /workspace, not its WorkingDir). */
  imageConfig: unknown;
  network: NetworkMode;
  /** resolv.conf for the container, when it has a network. */
  resolvConf?: string;
  limits: Limits;
  /** Relative cgroup path, e.g. /paddock/<scope>/<id>. */
  cgroupsPath?: string;
  hostname: string;
}

interface ImageConfig {
  Env?: unknown;
}

function imageConfigOf(config: unknown): ImageConfig {
  const inner = (config as { config?: ImageConfig } | undefined)?.config;
  return inner && typeof inner === "object" ? inner : {};
}

/** The image's environment (its PATH above all), with Paddock's defaults for what it leaves out. */
export function imageEnv(imageConfig: unknown): Record<string, string> {
  const env: Record<string, string> = {};
  const list = imageConfigOf(imageConfig).Env;
  for (const entry of Array.isArray(list) ? (list as unknown[]) : []) {
    if (typeof entry !== "string") continue; // a malformed image config is ignored, not fatal
    const eq = entry.indexOf("=");
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** Docker's default capabilities: what a root process in a container may do. */
const ROOT_CAPABILITIES = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

function resources(limits: Limits): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Swap is capped by the sandbox's cgroup where the machine accounts for it (a runtime fails where it does not).
  if (limits.memoryMiB !== undefined) out.memory = { limit: limits.memoryMiB * 1024 * 1024 };
  if (limits.pids !== undefined) out.pids = { limit: limits.pids };
  if (limits.cpus !== undefined) out.cpu = { period: 100000, quota: Math.max(1000, Math.round(limits.cpus * 100000)) };
  return out;
}

/** config.json of the container's bundle. */
export function containerConfig(input: ContainerInput): Record<string, unknown> {
  const env = { PATH: DEFAULT_PATH, ...imageEnv(input.imageConfig) };
  const mounts: Record<string, unknown>[] = [
    { destination: "/proc", type: "proc", source: "proc" },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", ...(input.limits.tmpMiB !== undefined ? [`size=${input.limits.tmpMiB}m`] : [])] },
    { destination: INIT_IN_CONTAINER, type: "bind", source: input.initBinary, options: ["bind", "ro", "nosuid", "nodev"] },
  ];
  if (input.resolvConf) mounts.push({ destination: "/etc/resolv.conf", type: "bind", source: input.resolvConf, options: ["bind", "ro"] });
  // Last: nothing is mounted through the workspace (the agent also refuses symlinked destinations).
  mounts.push({ destination: WORKSPACE_IN_GUEST, type: "bind", source: input.workspaceView, options: ["rbind", "rw", "nodev"] });
  const namespaces = [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, ...(input.network === "host" ? [] : [{ type: "network" }])];
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [INIT_IN_CONTAINER],
      env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      cwd: "/",
      // runc exec starts from these: none, so that the owner's programs have none; root's get
      // Docker's set through --cap.
      capabilities: { bounding: ROOT_CAPABILITIES, effective: [], permitted: [], inheritable: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts,
    linux: {
      namespaces,
      ...(input.cgroupsPath ? { cgroupsPath: input.cgroupsPath } : {}),
      // Only the devices the runtime itself creates (null, zero, tty, ptmx, ...).
      resources: { ...resources(input.limits), devices: [{ allow: false, access: "rwm" }] },
      seccomp: SECCOMP,
      maskedPaths: ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}

/** Where the config mounts, as the image's root must not redirect with symlinks. */
export function mountDestinations(config: Record<string, unknown>): string[] {
  return (config.mounts as { destination: string }[]).map((m) => m.destination);
}

const EPERM = 1;
const ENOSYS = 38;
const CLONE_NEWUSER = 0x10000000;

/**
 * Everything is allowed but what lets a process reach beyond the container's kernel view
 * (new user namespaces, keyrings, BPF, kernel modules, perf, userfaultfd, kexec, ...):
 * a small deny list in the spirit of Docker's default profile.
 */
const SECCOMP = {
  defaultAction: "SCMP_ACT_ALLOW",
  architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  syscalls: [
    {
      names: ["add_key", "request_key", "keyctl", "bpf", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "perf_event_open", "userfaultfd", "unshare", "setns", "mount", "umount2", "pivot_root", "open_by_handle_at", "name_to_handle_at", "swapon", "swapoff", "reboot", "acct", "lookup_dcookie", "quotactl", "fsopen", "fsmount", "move_mount", "open_tree", "fspick"],
      action: "SCMP_ACT_ERRNO",
      errnoRet: EPERM,
    },
    // glibc falls back to clone, whose flags can be checked; clone3's cannot.
    { names: ["clone3"], action: "SCMP_ACT_ERRNO", errnoRet: ENOSYS },
    { names: ["clone"], action: "SCMP_ACT_ERRNO", errnoRet: EPERM, args: [{ index: 0, value: CLONE_NEWUSER, valueTwo: CLONE_NEWUSER, op: "SCMP_CMP_MASKED_EQ" }] },
  ],
};

/** `runc exec`'s arguments (after the global options) for a program of a container sandbox. */
export function execArgs(container: string, spec: LaunchSpec, imageConfig: unknown): string[] {
  const image = imageEnv(imageConfig);
  const env = { ...sandboxEnv(spec), PATH: spec.env?.PATH ?? image.PATH ?? DEFAULT_PATH, HOME: spec.env?.HOME ?? (spec.uid === 0 ? "/root" : "/tmp") };
  return [
    "exec",
    ...(spec.pty ? ["--tty"] : []),
    "--user", `${spec.uid}:${spec.gid}`,
    "--cwd", guestCwd(spec.cwd),
    ...Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]),
    ...(spec.uid === 0 ? ROOT_CAPABILITIES.flatMap((c) => ["--cap", c]) : []),
    // Everything after the container's name is the program's (runc does not reorder arguments).
    container,
    INIT_IN_CONTAINER, "run",
    ...spec.argv,
  ];
}
