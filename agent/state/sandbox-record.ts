/**
 * What the agent keeps of each sandbox (STATE_DIR/sandboxes/ID/record.json): the sandbox as
 * clients see it, plus what only the agent needs. One shape per runtime, told apart by
 * `runtime`: each runtime's part is there exactly when it is that runtime's sandbox.
 */
import type { Sandbox } from "../../protocol/methods";

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
