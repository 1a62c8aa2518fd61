/**
 * The Paddock protocol: every method's name, parameter schema and result type, in one place.
 * The agent validates with these schemas; the CLI, the extension and tests get their types
 * from them, so a method cannot drift between the two sides.
 */
import { z } from "zod/v3";
import { NETWORK_MODES, RUNTIME_KINDS } from "./runtime-kinds";

export { PROTOCOL_VERSION } from "./version";

export const RuntimeKind = z.enum(RUNTIME_KINDS);
export type RuntimeKind = z.infer<typeof RuntimeKind>;

// ---- lifecycle -------------------------------------------------------------------------

export const InitializeParams = z
  .object({
    clientName: z.string().max(200).optional(),
    clientVersion: z.string().max(100).optional(),
    /** "MAJOR.MINOR"; the agent refuses a different major version. */
    protocolVersion: z
      .string()
      .regex(/^\d+\.\d+$/, 'must look like "1.0"')
      .optional(),
  })
  .passthrough(); // LSP clients send processId, rootUri, capabilities, ...
export type InitializeParams = z.infer<typeof InitializeParams>;

export interface InitializeResult {
  agentVersion: string;
  protocolVersion: string;
  capabilities: {
    methods: string[];
    runtimes: RuntimeKind[];
  };
  /** Who the agent believes the caller is (SO_PEERCRED on a socket, the agent's own uid on stdio). */
  client: { uid: number; transport: "stdio" | "socket" };
  agent: { pid: number; uid: number; rootless: boolean; stateDir: string };
}

export const EmptyParams = z.union([z.object({}).strict(), z.array(z.never()).max(0)]).optional();

// ---- system ----------------------------------------------------------------------------

export const PingParams = z.object({ data: z.string().max(1 << 20).optional() }).strict().optional();
export interface PingResult {
  data?: string;
}

export const CheckName = z.enum([
  "overlayfs",
  "overlayfs-rootless",
  "fuse-overlayfs",
  "bwrap",
  "runc",
  "crun",
  "cgroups",
  "qemu",
  "kvm",
  "tcg",
]);
export type CheckName = z.infer<typeof CheckName>;

export const SystemCheckParams = z
  .object({ refresh: z.boolean().optional() })
  .strict()
  .optional();

export interface CheckResult {
  name: CheckName;
  ok: boolean;
  /** What was tried and what happened, in words. */
  detail: string;
  /** What to do about a failure (or what Paddock will do instead). */
  hint?: string;
  durationMs: number;
}

export interface RuntimeReadiness {
  available: boolean;
  /** The checks this runtime needs that failed. */
  missing: CheckName[];
  /** Which implementation will be used, e.g. "runc" or "tcg". */
  using?: string;
  /** Why it is unavailable when no check failed (e.g. it needs the agent as root). */
  reason?: string;
  /** What to do about that reason. */
  hint?: string;
}

export interface SystemCheckResult {
  bootId: string;
  checkedAt: string;
  /** True when these results came from the cache for this boot. */
  cached: boolean;
  checks: CheckResult[];
  runtimes: Record<RuntimeKind, RuntimeReadiness>;
  defaultRuntime: RuntimeKind;
}

// ---- sandboxes -------------------------------------------------------------------------

export const SandboxId = z.string().regex(/^sbx-[0-9a-f]{12}$/, 'must be a sandbox id like "sbx-0123456789ab"');

export const Limits = z
  .object({
    memoryMiB: z.number().int().min(16, "at least 16 MiB").max(1024 * 1024, "at most 1 TiB").optional(),
    pids: z.number().int().min(8, "at least 8").max(4_194_304, "at most 4194304").optional(),
    cpus: z.number().min(0.01, "at least 0.01").max(1024, "at most 1024").optional(),
    /** The size of the sandbox's /tmp (a tmpfs: memory), not for VMs. */
    tmpMiB: z.number().int().min(1, "at least 1 MiB").max(1024 * 1024, "at most 1 TiB").optional(),
  })
  .strict();
/** Asked for in sandbox/create; in a Sandbox, the limits in force (Paddock's defaults for what was not asked). */
export type Limits = z.infer<typeof Limits>;

export const NetworkMode = z.enum(NETWORK_MODES);
export type NetworkMode = z.infer<typeof NetworkMode>;

export const SandboxCreateParams = z
  .object({
    workspace: z.string().min(1).max(4096),
    runtime: RuntimeKind.optional(),
    /** container only: an image of image/list; the default image when left out. */
    image: z.string().min(1).max(200).optional(),
    name: z.string().min(1).max(100).regex(/^[\w.@+-][\w .@+-]*$/, "letters, digits, spaces and . @ + - _ only").optional(),
    network: NetworkMode.optional(),
    limits: Limits.optional(),
    idempotencyKey: z.string().min(1).max(200).optional(),
    ttlSeconds: z.number().int().min(1).max(365 * 24 * 3600).optional(),
  })
  .strict();

export type SandboxRuntime = RuntimeKind;

export type SandboxState = "creating" | "running" | "stopped" | "deleting";

export interface Sandbox {
  id: string;
  name: string;
  /** The real workspace directory (resolved, absolute). */
  workspace: string;
  runtime: SandboxRuntime;
  /** container sandboxes: the image's name and digest. */
  image?: { name: string; digest: string };
  /** VM sandboxes: the accelerator QEMU uses (KVM when it really boots a guest here, else TCG) and the guest kernel's release once booted. */
  vm?: { accelerator: "kvm" | "tcg"; kernelRelease?: string; fromPool?: boolean };
  state: SandboxState;
  network: NetworkMode;
  limits: Limits;
  /** Defaults not in force because the agent has no cgroup to enforce them with (a rootless agent). */
  limitsUnavailable?: ("memoryMiB" | "pids")[];
  createdAt: string;
  expiresAt?: string;
  ownerUid: number;
}

export const SandboxIdParams = z.object({ id: SandboxId }).strict();
export const SandboxListParams = z.object({ workspace: z.string().min(1).max(4096).optional() }).strict().optional();

export const Env = z.record(z.string().regex(/^[^=\0]+$/, "no = or NUL in names"), z.string().max(128 * 1024).regex(/^[^\0]*$/, "no NUL bytes")).optional();
export const Argv = z.array(z.string().max(128 * 1024).regex(/^[^\0]*$/, "no NUL bytes")).min(1, "argv needs at least the program").max(4096);

/** What every command names: the sandbox, the program and its arguments, where, with what environment. */
const CommandFields = {
  id: SandboxId,
  argv: Argv,
  cwd: z.string().min(1).max(4096).optional(),
  env: Env,
};

export const SandboxExecParams = z
  .object({
    ...CommandFields,
    stdin: z.string().max(16 * 1024 * 1024).optional(),
    timeoutMs: z.number().int().min(1).max(24 * 3600 * 1000).optional(),
  })
  .strict();

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** True when stdout or stderr was cut at the cap (`outputCap` bytes each). */
  truncated: boolean;
  outputCap: number;
  timedOut: boolean;
  /** Limits the sandbox ran into while this command ran. */
  limitsHit: ("memory" | "pids")[];
}

export interface Change {
  /**
   * Relative to the workspace, with `/` separators. A component whose name is not UTF-8 shows
   * its other bytes as `\xHH` and a backslash as `\\` (then `pathBytes` is set); requests name
   * the change by this path.
   */
  path: string;
  /** The path's bytes (base64), only when they are not UTF-8: the exact name. */
  pathBytes?: string;
  kind: "added" | "modified" | "deleted";
  type: "file" | "directory" | "symlink" | "other";
  /** A NUL byte in the first 8000 bytes, as git decides. */
  binary: boolean;
  size: number;
  mode: number;
  /**
   * A folder whose tree goes deeper than a path can name (4095 bytes, PATH_MAX): what lies
   * below that is not listed; approve holds the whole folder back, reject removes it.
   */
  deepTree?: boolean;
  /** What a person should know about this change, in words (a deep tree's says why it is held back). */
  note?: string;
  /**
   * The workspace's file changed too since the sandbox's base (what the sandbox started from):
   * the diff, and hunk selectors, are taken from the base to the sandbox's version, so the
   * user's own edits never read as the sandbox removing them (sandbox/readFile `base: true`
   * gives the base). Approving hunks merges them into the workspace three ways.
   */
  againstBase?: boolean;
}

// ---- review ----------------------------------------------------------------------------

/** A path relative to the workspace, with `/` separators, without `.` or `..` parts. */
export const RelativePath = z
  .string()
  .min(1)
  .max(4095)
  .refine((p) => !p.includes("\0") && !p.startsWith("/") && p.split("/").every((part) => part !== "" && part !== "." && part !== ".."), 'must be relative, with "/" separators and no "." or ".." parts');

export const RelativePaths = z.array(RelativePath).max(100_000);

/**
 * One hunk, as line ranges of the workspace's version (old) and the sandbox's (new): 0-based,
 * end exclusive. It selects every change of `sandbox/diff` that lies within it on both sides,
 * so a change as `sandbox/diff` lists it and a wider hunk with context lines both work.
 */
export const HunkSelector = z
  .object({
    path: RelativePath,
    oldStart: z.number().int().min(0),
    oldEnd: z.number().int().min(0),
    newStart: z.number().int().min(0),
    newEnd: z.number().int().min(0),
  })
  .strict()
  .refine((h) => h.oldStart <= h.oldEnd && h.newStart <= h.newEnd, "a range's start must not be after its end");
export type HunkSelector = z.infer<typeof HunkSelector>;

export const SandboxPathParams = z.object({ id: SandboxId, path: RelativePath }).strict();

export const SandboxReadFileParams = z
  .object({
    id: SandboxId,
    path: RelativePath,
    /** The base a change's diff is taken against (`againstBase`), not the sandbox's version. */
    base: z.boolean().optional(),
  })
  .strict();

export const SandboxWriteFileParams = z
  .object({
    id: SandboxId,
    path: RelativePath,
    /** base64 */
    content: z.string().max(48 * 1024 * 1024),
  })
  .strict();

export interface ReadFileResult {
  path: string;
  type: "file" | "directory" | "symlink" | "other";
  mode: number;
  size: number;
  /** When the sandbox's version last changed (ms since the epoch). */
  mtimeMs: number;
  /** base64 of a file's bytes; a symlink's target is in `target`. */
  content: string;
  target?: string;
  /** Directories only: the names inside, as the sandbox sees them. */
  entries?: string[];
}

export const SandboxDiffParams = z
  .object({
    id: SandboxId,
    paths: RelativePaths.optional(),
    context: z.number().int().min(0).max(1000).optional(),
  })
  .strict();

export interface FileDiff {
  path: string;
  /** As in Change. */
  pathBytes?: string;
  binary: boolean;
  /** The line changes from the workspace's version to the sandbox's: what hunk selectors select among. */
  changes: { oldStart: number; oldEnd: number; newStart: number; newEnd: number }[];
}

export interface DiffResult {
  /** A git-style unified patch that `git apply` accepts; binary files are named, not dumped. */
  patch: string;
  files: FileDiff[];
}

export const SandboxApproveParams = z
  .object({
    id: SandboxId,
    /** Paths (files or folders) to approve; with neither paths nor hunks, everything. */
    paths: RelativePaths.optional(),
    hunks: z.array(HunkSelector).max(100_000).optional(),
    /** Apply over conflicts: everywhere (true) or at these paths and below. */
    force: z.union([z.boolean(), RelativePaths]).optional(),
  })
  .strict();

export const SandboxRejectParams = z
  .object({
    id: SandboxId,
    paths: RelativePaths.optional(),
    hunks: z.array(HunkSelector).max(100_000).optional(),
  })
  .strict();

export const SandboxUndoParams = z
  .object({
    id: SandboxId,
    /** Which approve or reject to undo (its result's `undo`); without it, the latest one. */
    undo: z.string().regex(/^[0-9a-f]{12}$/, "must be an undo id as approve and reject return it").optional(),
  })
  .strict();

/** What undo can give back to the user: whose result `undo` is, and what it did. */
export interface Undoable {
  /** The id to pass to sandbox/undo. */
  undo: string;
  kind: "approve" | "reject";
  /** When the approve or reject ended (ISO 8601). */
  at: string;
  /** The paths it did (up to 100). */
  paths: string[];
  /** How many paths it did. */
  count: number;
}

export interface UndoResult {
  undone: string;
  kind: "approve" | "reject";
  /** Paths as they were before the approve or reject again. */
  restored: string[];
  skipped: Skipped[];
}

/**
 * What approve and reject say about undoing them: the id to undo them with, or why they cannot
 * be undone (they changed more than undo keeps, or a special file). Neither: nothing was done.
 */
export interface UndoOffer {
  undo?: string;
  undoUnavailable?: string;
}

export type ConflictReason = "both-modified" | "deleted-in-sandbox" | "deleted-in-workspace" | "added-in-both" | "type-changed";

export interface Conflict {
  path: string;
  reason: ConflictReason;
  /**
   * The three versions as text (null: nothing at that path); left out when a version is
   * binary, too large, or (for the base) was not captured.
   */
  base?: string | null;
  workspace?: string | null;
  sandbox?: string | null;
  /** The three-way merge, when it is clean. */
  merged?: string;
}

export interface Skipped {
  path: string;
  reason: string;
}

export interface ApproveResult extends UndoOffer {
  applied: string[];
  /**
   * Of `applied`: files the workspace had changed too, in other lines, merged three ways
   * without asking (whole-file approves of text). The sandbox then has the merged file too.
   */
  merged: string[];
  conflicts: Conflict[];
  skipped: Skipped[];
}

export interface RejectResult extends UndoOffer {
  rejected: string[];
  skipped: Skipped[];
}

// ---- images ----------------------------------------------------------------------------

export const ImageName = z.string().min(1).max(200).regex(/^[a-z0-9][a-z0-9._/:@-]*$/, "lower-case letters, digits and . _ / : @ - (e.g. debian:12)");

export const ImageImportParams = z
  .object({
    /** An OCI image layout (a folder or a tar of one) or a `docker save` archive, on the agent's machine. */
    source: z.string().min(1).max(4096).refine((p) => p.startsWith("/"), "must be an absolute path"),
    name: ImageName,
  })
  .strict();

export const ImageNameParams = z.object({ name: ImageName }).strict();

export const ImagePullParams = z
  .object({
    /** A registry reference, e.g. docker.io/library/debian:12 or 127.0.0.1:5000/tools:1. */
    reference: z.string().min(1).max(500).regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/, "a registry reference such as registry.example.com/team/tools:1"),
    /** The name in image/list; the reference when left out. */
    name: ImageName.optional(),
    /** Plain HTTP and unverified TLS: for a registry on this machine or a trusted network. */
    insecure: z.boolean().optional(),
  })
  .strict();

export interface ImageSummary {
  name: string;
  digest: string;
  layers: number;
  importedAt: string;
}

export interface GcResult {
  deleted: string[];
  cleaned: string[];
}

// ---- processes -------------------------------------------------------------------------

export const ProcessSpawnParams = z
  .object({
    ...CommandFields,
    argv: Argv.optional(),
    /** In place of argv: the sandbox's own login shell, chosen inside it (its SHELL, the user's shell, bash, else sh). */
    shell: z.literal(true).optional(),
    pty: z.object({ cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) }).strict().optional(),
  })
  .strict()
  .refine((p) => (p.argv === undefined) !== (p.shell === undefined), { message: "give either argv or shell: true", path: ["argv"] });

export const ProcessRef = z.object({ pid: z.number().int().positive() }).strict();
export const ProcessWriteParams = z
  .object({ pid: z.number().int().positive(), data: z.string().max(16 * 1024 * 1024), eof: z.boolean().optional() })
  .strict();
export const ProcessResizeParams = z
  .object({ pid: z.number().int().positive(), cols: z.number().int().min(1).max(1000), rows: z.number().int().min(1).max(1000) })
  .strict();
export const Signal = z.enum(["SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGSTOP", "SIGCONT", "SIGWINCH"]);
export const ProcessKillParams = z.object({ pid: z.number().int().positive(), signal: Signal.optional() }).strict();
export const ProcessListParams = z.object({ id: SandboxId.optional() }).strict().optional();

export interface ProcessInfo {
  pid: number;
  sandboxId: string;
  argv: string[];
  pty: boolean;
  startedAt: string;
}

/** Notifications the agent sends: method and params. */
export interface AgentNotifications {
  "sandbox/didChangeState": { id: string; state: SandboxState | "deleted" };
  "process/output": { pid: number; stream: "stdout" | "stderr"; data: string };
  "process/exit": { pid: number; exitCode: number | null; signal: string | null };
  /** Paths under which a sandbox's changes may have changed (debounced; a folder covers what it holds). */
  "sandbox/didChange": { id: string; paths: string[] };
  /** A long step of a sandbox's creation or start (a VM booting). */
  "sandbox/progress": { id: string; step: string };
  /** A long image job (a pull, the first build of the default image) moving on. */
  "image/progress": { name: string; step: string; done?: boolean };
}

// ---- the method table ------------------------------------------------------------------

/** Requests: params schema and result type. */
export const requests = {
  initialize: InitializeParams,
  shutdown: EmptyParams,
  "system/ping": PingParams,
  "system/check": SystemCheckParams,
  "sandbox/create": SandboxCreateParams,
  "sandbox/list": SandboxListParams,
  "sandbox/get": SandboxIdParams,
  "sandbox/stop": SandboxIdParams,
  "sandbox/start": SandboxIdParams,
  "sandbox/delete": SandboxIdParams,
  "sandbox/gc": EmptyParams,
  "sandbox/exec": SandboxExecParams,
  "sandbox/changes": SandboxIdParams,
  "sandbox/readFile": SandboxReadFileParams,
  "sandbox/writeFile": SandboxWriteFileParams,
  "sandbox/diff": SandboxDiffParams,
  "sandbox/approve": SandboxApproveParams,
  "sandbox/reject": SandboxRejectParams,
  "sandbox/undo": SandboxUndoParams,
  "sandbox/undoList": SandboxIdParams,
  "image/list": EmptyParams,
  "image/import": ImageImportParams,
  "image/remove": ImageNameParams,
  "image/pull": ImagePullParams,
  "vm/pool": EmptyParams,
  "sandbox/console": SandboxIdParams,
  "image/default": EmptyParams,
  "process/spawn": ProcessSpawnParams,
  "process/write": ProcessWriteParams,
  "process/resize": ProcessResizeParams,
  "process/kill": ProcessKillParams,
  "process/list": ProcessListParams,
} as const;

export interface RequestResults {
  initialize: InitializeResult;
  shutdown: null;
  "system/ping": PingResult;
  "system/check": SystemCheckResult;
  "sandbox/create": Sandbox;
  "sandbox/list": { sandboxes: Sandbox[] };
  "sandbox/get": Sandbox;
  "sandbox/stop": Sandbox;
  "sandbox/start": Sandbox;
  "sandbox/delete": { id: string; deleted: boolean };
  "sandbox/gc": GcResult;
  "sandbox/exec": ExecResult;
  "sandbox/changes": { changes: Change[] };
  "sandbox/readFile": ReadFileResult;
  "sandbox/writeFile": null;
  "sandbox/diff": DiffResult;
  "sandbox/approve": ApproveResult;
  "sandbox/reject": RejectResult;
  "sandbox/undo": UndoResult;
  /** The approves and rejects that can be undone, newest first. */
  "sandbox/undoList": { undo: Undoable[] };
  "image/list": { images: ImageSummary[] };
  "image/import": ImageSummary;
  "image/remove": { name: string; removed: boolean };
  "image/pull": ImageSummary;
  /** The warm pool of booted VMs: its target size, what is ready and booting, hits, misses and the last boot times. */
  "vm/pool": { target: number; ready: number; booting: number; hits: number; misses: number; bootMs: number[] };
  /** A VM sandbox's serial console as kept on the host (up to 1 MiB): the guest kernel's and guest agent's messages. */
  "sandbox/console": { id: string; text: string };
  "image/default": ImageSummary;
  "process/spawn": { pid: number };
  "process/write": null;
  "process/resize": null;
  "process/kill": null;
  "process/list": { processes: ProcessInfo[] };
}

/** Notifications a client sends. */
export const clientNotifications = {
  exit: EmptyParams,
} as const;

export type AgentNotificationMethod = keyof AgentNotifications;
/** One notification of the agent's, as a union on `method`: narrowing the method types the params. */
export type AgentNotification = { [M in AgentNotificationMethod]: { method: M; params: AgentNotifications[M] } }[AgentNotificationMethod];
/** The same as a listener's arguments: `(method, params) => ...` narrows `params` with `method`. */
export type AgentNotificationArgs = { [M in AgentNotificationMethod]: [method: M, params: AgentNotifications[M]] }[AgentNotificationMethod];

export type RequestMethod = keyof typeof requests;
export type RequestParams<M extends RequestMethod> = z.input<(typeof requests)[M]>;
export type ClientNotificationMethod = keyof typeof clientNotifications;
