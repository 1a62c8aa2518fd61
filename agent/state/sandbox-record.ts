/**
 * What the agent keeps of each sandbox (STATE_DIR/sandboxes/ID/record.json): the sandbox as
 * clients see it, plus what only the agent needs. One shape per runtime, told apart by
 * `runtime`: each runtime's part is there exactly when it is that runtime's sandbox.
 */
import type { Sandbox } from "../../protocol/methods";
import { RUNTIME_KINDS } from "../../protocol/runtime-kinds";

export type OciRuntimeName = "runc" | "crun";
export type Accelerator = "kvm" | "tcg";

interface RecordBase extends Omit<Sandbox, "runtime" | "image" | "vm"> {
  /** The boot during which the overlay was last mounted. */
  bootId: string;
  /** "dev:ino" of the workspace directory that was checked: a directory put in its place is refused. */
  workspaceId: string;
  idempotencyKey?: string;
}

export interface ProcessRecord extends RecordBase {
  runtime: "process";
}

export interface ContainerRecord extends RecordBase {
  runtime: "container";
  /** The image's name and digest. */
  image: { name: string; digest: string };
  /** What the container stands on, kept with the sandbox (the image may be re-imported or removed meanwhile). */
  container: { ociRuntime: OciRuntimeName; layers: string[]; config: unknown };
}

export interface VmRecord extends RecordBase {
  runtime: "vm";
  /** The accelerator QEMU uses, and once booted the guest kernel's release. */
  vm: { accelerator: Accelerator; kernelRelease?: string; fromPool?: boolean };
}

export type SandboxRecord = ProcessRecord | ContainerRecord | VmRecord;

/** A record's runtime part: what a runtime decides when a sandbox is created. */
export type RuntimePart<R extends SandboxRecord> = R extends SandboxRecord ? Omit<R, keyof RecordBase> : never;

/**
 * Whether a record read from disk has the shape this agent works with: each runtime's part
 * where its runtime needs it. One from a newer agent, or a damaged one, is not taken for one.
 */
export function isSandboxRecord(value: unknown): value is SandboxRecord {
  if (typeof value !== "object" || value === null) return false;
  const r = value as Record<string, unknown>;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
  const base = ["id", "name", "workspace", "workspaceId", "state", "network", "createdAt", "bootId"].every((key) => typeof r[key] === "string") && typeof r.ownerUid === "number" && isObject(r.limits);
  if (!base || !(RUNTIME_KINDS as readonly unknown[]).includes(r.runtime)) return false;
  if (r.runtime === "container") {
    return isObject(r.image) && typeof r.image.digest === "string" && isObject(r.container) && typeof r.container.ociRuntime === "string" && Array.isArray(r.container.layers);
  }
  if (r.runtime === "vm") return isObject(r.vm) && typeof r.vm.accelerator === "string";
  return true;
}

/** The sandbox as clients see it: without what only the agent keeps. */
export function shownSandbox(record: SandboxRecord): Sandbox {
  const { bootId: _bootId, idempotencyKey: _key, ...sandbox } = record;
  if (!("container" in sandbox)) return sandbox;
  const { container: _container, ...shown } = sandbox;
  return shown;
}
