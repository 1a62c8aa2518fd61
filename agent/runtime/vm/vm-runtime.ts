/**
 * The `vm` runtime: each sandbox is a QEMU micro-VM whose /workspace is the sandbox's view,
 * shared over virtio-9p; programs run through the guest's agent (see vms.ts).
 */
import * as fs from "node:fs";
import type { CheckName, CheckResult, Limits, RuntimeReadiness } from "../../../protocol/methods";
import { RUNTIME_NETWORKS } from "../../../protocol/runtime-kinds";
import type { Launch } from "../../process/launch";
import type { SandboxPaths } from "../../state/sandbox-layout";
import type { RuntimePart, VmRecord } from "../../state/sandbox-record";
import { guestCwd, sandboxEnv, type LaunchSpec } from "../launch-spec";
import { resolveVmLimits } from "../limits";
import { acceleratorChoice, choose, vmReadiness, type ChoiceInputs } from "../readiness";
import { refuseImage, refuseNetwork, type CreateRequest, type SandboxRuntime, type StartContext, type Validated } from "../runtime";
import type { Vms } from "./vms";

const ACCELERATOR_CHECKS: CheckName[] = ["qemu", "kvm", "tcg"];

export interface VmRuntimeOptions extends ChoiceInputs {
  vms: Vms;
}

export class VmRuntime implements SandboxRuntime<VmRecord> {
  readonly kind = "vm";
  readonly networks = RUNTIME_NETWORKS.vm;
  readonly supported: boolean;
  /** QEMU dies with the sandbox's cgroup, which reconcile empties after a restart: the VM boots again. */
  readonly survivesAgentRestart = false;
  /** A boot takes seconds (a minute under TCG). */
  readonly startsSlowly = true;

  constructor(private readonly options: VmRuntimeOptions) {
    this.supported = options.root;
  }

  readiness(checks: CheckResult[]): RuntimeReadiness {
    return vmReadiness(checks, this.options.root, this.options.overrides, this.options.changeset);
  }

  validate(request: CreateRequest): Validated {
    const validated = resolveVmLimits(request.limits ?? {});
    refuseImage(request);
    refuseNetwork(this, request);
    return validated;
  }

  /** KVM where system/check proved it boots a guest, else TCG; no accelerator is a plain refusal. */
  async prepare(): Promise<RuntimePart<VmRecord>> {
    const { root, overrides } = this.options;
    const accelerator = await choose(!root || overrides.accelerator !== undefined, () => this.options.checks(ACCELERATOR_CHECKS), (checks) => acceleratorChoice(checks, root, overrides));
    return { runtime: "vm", vm: { accelerator } };
  }

  /** A VM's limits are its QEMU's memory and CPUs: a cgroup limit would only kill QEMU. */
  cgroupLimits(): Limits {
    return {};
  }

  async start(record: VmRecord, context: StartContext): Promise<void> {
    // QEMU writes the share with its own uid and no capabilities: root's sandbox of another
    // user's folder writes as that folder's owner (root without capabilities could not).
    let owner: { uid: number; gid: number } = context.owner;
    if (owner.uid === 0) {
      const ws = fs.statSync(record.workspace);
      owner = { uid: ws.uid, gid: ws.gid };
    }
    const booted = await this.options.vms.start({
      id: record.id,
      dir: context.paths.vm,
      workspaceView: context.view,
      uid: owner.uid,
      gid: owner.gid,
      limits: record.limits,
      network: record.network,
      accelerator: record.vm.accelerator,
      cgroupProcs: context.cgroupProcs,
      onProgress: context.onProgress,
      onEnded: context.onEnded,
    });
    record.vm = { accelerator: booted.accelerator, kernelRelease: booted.kernelRelease, fromPool: booted.fromPool };
  }

  /** A VM's commands end with it: waiting for a stuck (or hostile) guest to report their exits could last forever. */
  async halt(record: VmRecord): Promise<void> {
    await this.options.vms.stop(record.id);
  }

  async stop(record: VmRecord): Promise<void> {
    await this.options.vms.stop(record.id);
  }

  deleted(): void {}

  /** Through the VM's guest agent, as the owner, in /workspace unless told otherwise. */
  launch(record: VmRecord, spec: LaunchSpec): Launch {
    const env = { ...sandboxEnv(spec), HOME: spec.env?.HOME ?? (spec.uid === 0 ? "/root" : "/tmp") };
    const request = { argv: spec.argv, env, cwd: guestCwd(spec.cwd), uid: spec.uid, gid: spec.gid, ...(spec.ptySize ? { pty: spec.ptySize } : {}) };
    return { guest: (onOutput) => this.options.vms.connection(record.id).exec(request, onOutput) };
  }

  async checkExec(): Promise<void> {}

  async removeLeftovers(): Promise<void> {}

  async orphans(): Promise<[]> {
    return [];
  }

  imageOf(): undefined {
    return undefined;
  }

  /** The running VM's console log, or the last one kept in its folder. */
  console(record: VmRecord, paths: SandboxPaths): string {
    const file = this.options.vms.consoleLog(record.id, paths.vm);
    try {
      return fs.readFileSync(file, "utf8");
    } catch {
      return "";
    }
  }
}
