/**
 * The Paddock protocol: every method's name, parameter schema and result type, in one place.
 * The agent validates with these schemas; the CLI, the extension and tests get their types
 * from them, so a method cannot drift between the two sides.
 */
import { z } from "zod";

export const PROTOCOL_VERSION = "1.0";

export const RuntimeKind = z.enum(["process", "container", "vm"]);
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

// ---- the method table ------------------------------------------------------------------

/** Requests: params schema and result type. */
export const requests = {
  initialize: InitializeParams,
  shutdown: EmptyParams,
  "system/ping": PingParams,
  "system/check": SystemCheckParams,
} as const;

export interface RequestResults {
  initialize: InitializeResult;
  shutdown: null;
  "system/ping": PingResult;
  "system/check": SystemCheckResult;
}

/** Notifications a client sends. */
export const clientNotifications = {
  exit: EmptyParams,
} as const;

export type RequestMethod = keyof typeof requests;
export type RequestParams<M extends RequestMethod> = z.input<(typeof requests)[M]>;
export type ClientNotificationMethod = keyof typeof clientNotifications;
