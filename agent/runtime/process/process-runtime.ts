/**
 * The `process` runtime: programs run on the host under bubblewrap, in the sandbox's view of
 * the workspace (the changeset says how a program gets into that view).
 */
import { PaddockError } from "../../../protocol/errors";
import type { CheckResult, Limits, RuntimeReadiness } from "../../../protocol/methods";
import { RUNTIME_NETWORKS } from "../../../protocol/runtime-kinds";
import type { Changesets } from "../../changeset/changesets";
import type { Completed } from "../../process/run-to-completion";
import type { Launch } from "../../process/launch";
import type { ProcessRecord, RuntimePart } from "../../state/sandbox-record";
import type { LaunchSpec } from "../launch-spec";
import { resolveLimits, type CgroupControllers } from "../limits";
import { processReadiness } from "../readiness";
import { refuseImage, refuseNetwork, type CreateRequest, type SandboxRuntime, type Validated } from "../runtime";
import { ENTER_FAILED, bwrapArgs, findProgram } from "./bwrap";

export class ProcessRuntime implements SandboxRuntime<ProcessRecord> {
  readonly kind = "process";
  readonly networks = RUNTIME_NETWORKS.process;
  readonly supported = true;
  /** Programs die with the agent (bwrap --die-with-parent); the view's mount is all it needs, and it stays. */
  readonly survivesAgentRestart = true;
  readonly startsSlowly = false;
  private readonly bwrap = findProgram("bwrap");

  constructor(private readonly changesets: Changesets) {}

  readiness(checks: CheckResult[]): RuntimeReadiness {
    return processReadiness(checks, this.changesets.kind);
  }

  validate(request: CreateRequest, cgroups: CgroupControllers | undefined): Validated {
    const validated = resolveLimits(request.limits ?? {}, cgroups);
    refuseImage(request);
    refuseNetwork(this, request);
    return validated;
  }

  async prepare(): Promise<RuntimePart<ProcessRecord>> {
    return { runtime: "process" };
  }

  cgroupLimits(record: ProcessRecord): Limits {
    return record.limits;
  }

  async start(): Promise<void> {}

  async halt(): Promise<void> {}

  async stop(): Promise<void> {}

  deleted(): void {}

  launch(_record: ProcessRecord, spec: LaunchSpec): Launch {
    const entry = this.changesets.enter(spec);
    return { host: [...entry.before, this.bwrap, ...entry.bwrapFirst, ...bwrapArgs(spec, entry.view)] };
  }

  async checkExec(_record: ProcessRecord, done: Completed): Promise<void> {
    if (done.exitCode === ENTER_FAILED && done.stderr.startsWith("paddock-enter:")) {
      throw new PaddockError("E_SPAWN", `cannot enter the sandbox: ${done.stderr.trim().slice("paddock-enter: ".length)}`, "see the agent log; `paddock check` tells what works");
    }
  }

  async removeLeftovers(): Promise<void> {}

  async orphans(): Promise<[]> {
    return [];
  }

  imageOf(): undefined {
    return undefined;
  }
}
