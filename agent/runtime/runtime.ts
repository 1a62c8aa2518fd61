/**
 * A sandbox is a changeset plus a runtime. The changeset (changeset/) is the copy-on-write
 * view of the workspace; a runtime is what runs commands on that view: bubblewrap on the
 * host, an OCI container, or a micro-VM. Each runtime lives in a folder of its own below
 * this one and implements this interface; agent/runtimes.ts lists them. The sandbox manager keeps
 * the lifecycle, the records and their durability, and asks the runtime for the rest.
 */
import { PaddockError } from "../../protocol/errors";
import type { CheckResult, Limits, NetworkMode, RuntimeKind, RuntimeReadiness } from "../../protocol/methods";
import { networkRefusal } from "../../protocol/runtime-kinds";
import type { Completed } from "../process/run-to-completion";
import type { Launch } from "../process/launch";
import type { SandboxPaths } from "../state/sandbox-layout";
import type { RuntimePart, SandboxRecord } from "../state/sandbox-record";
import type { UserRights } from "../sys/credentials";
import type { LaunchSpec } from "./launch-spec";
import type { CgroupControllers, UnavailableLimit } from "./limits";

/** What `sandbox/create` asks of a runtime. */
export interface CreateRequest {
  workspace: string;
  runtime?: RuntimeKind;
  /** container sandboxes: an image name; the default image when left out. */
  image?: string;
  name?: string;
  network?: NetworkMode;
  limits?: Limits;
  idempotencyKey?: string;
  ttlSeconds?: number;
}

/** The limits a new sandbox runs with, and the defaults not in force here. */
export interface Validated {
  limits: Limits;
  unavailable: UnavailableLimit[];
}

/** What a runtime gets to start a sandbox whose view is mounted and whose cgroup is made. */
export interface StartContext {
  paths: SandboxPaths;
  /** Where the agent reaches the sandbox's merged view. */
  view: string;
  /** The sandbox's cgroup: its cgroup.procs files, and its path for an OCI runtime (none without cgroups). */
  cgroupProcs: string[];
  cgroupsPath?: string;
  /** The sandbox's owner. */
  owner: UserRights;
  /** A step of a slow start, for progress notifications. */
  onProgress(step: string): void;
  /** What the sandbox runs on ended by itself (a VM killed or crashed): the sandbox is then stopped. */
  onEnded(why: string): void;
}

/** Something of a runtime's that no record owns (a crash left it), and how to remove it. */
export interface Leftover {
  what: string;
  remove(): Promise<void>;
}

/**
 * What takes a record is declared as a function-typed property, not a method: such members are
 * checked strictly, so a runtime of one kind cannot be handed another kind's record.
 */
export interface SandboxRuntime<R extends SandboxRecord = SandboxRecord> {
  readonly kind: R["runtime"];
  /** The networks its sandboxes can have. */
  readonly networks: readonly NetworkMode[];
  /** Whether this agent can run it at all (a rootless agent runs the process runtime only). */
  readonly supported: boolean;
  /**
   * After an agent restart (same boot), a sandbox whose view is still mounted needs nothing
   * more to run commands again; otherwise what it ran on (a container, a VM) died with the
   * old agent's processes and is started again.
   */
  readonly survivesAgentRestart: boolean;
  /** Starting takes long (a boot): after an agent restart it goes on in the background, and commands wait for it. */
  readonly startsSlowly: boolean;

  /** Whether it can run here, from the checks with the overrides applied: what `system/check` reports is what runs. */
  readiness(checks: CheckResult[]): RuntimeReadiness;
  /** Checks a create request (limits, image, network) before anything is recorded. */
  validate(request: CreateRequest, cgroups: CgroupControllers | undefined): Validated;
  /** Decides what a new sandbox stands on (the OCI runtime and image, the accelerator): the record's runtime part. */
  prepare(request: CreateRequest): Promise<RuntimePart<R>>;
  /** The limits its cgroup enforces (a VM's are its QEMU's memory and CPUs: none). */
  cgroupLimits: (record: R) => Limits;

  /** Starts what the sandbox runs on, on its mounted view. */
  start: (record: R, context: StartContext) => Promise<void>;
  /** Ends what runs in it that the agent did not start as a host process (a VM's guest), before processes are killed. */
  halt: (record: R) => Promise<void>;
  /** Stops what the sandbox runs on, keeping its changes. Safe to repeat, and after a crash. */
  stop: (record: R, paths: SandboxPaths) => Promise<void>;
  /** The sandbox and its record are gone. */
  deleted: (record: R) => void;

  /** How a command runs in the sandbox. */
  launch: (record: R, spec: LaunchSpec) => Launch;
  /** Turns a command's end into an error where the runtime, not the program, failed. */
  checkExec: (record: R, done: Completed, interrupted: boolean) => Promise<void>;

  /** Its things for a sandbox id without a record (a directory a crash left). */
  removeLeftovers(id: string, paths: SandboxPaths): Promise<void>;
  /** Its things that no record owns. */
  orphans(known: (id: string) => boolean, pathsOf: (id: string) => SandboxPaths): Promise<Leftover[]>;

  /** The image a sandbox stands on, if it has one. */
  imageOf: (record: R) => { digest: string; layers: string[] } | undefined;
  /** The console log of a sandbox that has one (a VM's). */
  console?: (record: R, paths: SandboxPaths) => string;
}

/** An image is for runtimes that stand on one. */
export function refuseImage(request: CreateRequest): void {
  if (request.image !== undefined) throw new PaddockError("E_INVALID_PARAMS", "an image is for container sandboxes", "create with runtime container, or leave the image out", { field: "image" });
}

/** A network this runtime does not have is refused, naming the runtimes that have it. */
export function refuseNetwork(runtime: Pick<SandboxRuntime, "kind" | "networks">, request: CreateRequest): void {
  const wrongNetwork = networkRefusal(runtime.kind, request.network ?? "none");
  if (wrongNetwork) throw new PaddockError("E_INVALID_PARAMS", wrongNetwork, `use ${runtime.networks.join(" or ")}, or another runtime`, { field: "network" });
}
