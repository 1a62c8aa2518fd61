/**
 * The runtimes a sandbox can have. Adding one is a folder below this one, implementing
 * SandboxRuntime, and a line in `makeRuntimes`.
 */
import * as path from "node:path";
import type { CheckName, CheckResult, RuntimeKind, RuntimeReadiness } from "../protocol/methods";
import { RUNTIME_KINDS } from "../protocol/runtime-kinds";
import type { Changesets } from "./changeset/changesets";
import type { Images } from "./image/images";
import type { Logger } from "./log/logger";
import type { SandboxRecord } from "./state/sandbox-record";
import { ContainerRuntime } from "./runtime/container/container-runtime";
import { ProcessRuntime } from "./runtime/process/process-runtime";
import type { Overrides } from "./runtime/readiness";
import type { SandboxRuntime } from "./runtime/runtime";
import { VmRuntime } from "./runtime/vm/vm-runtime";
import type { Vms } from "./runtime/vm/vms";

type RuntimeOf<K extends RuntimeKind> = SandboxRuntime<Extract<SandboxRecord, { runtime: K }>>;
export type RuntimeTable = { [K in RuntimeKind]: RuntimeOf<K> };

export class Runtimes {
  constructor(private readonly table: RuntimeTable) {}

  /** The runtime of a sandbox, which takes that sandbox's record. */
  of(record: SandboxRecord): SandboxRuntime {
    // The one place a record meets its runtime: the table pairs each kind with the runtime of
    // that kind's records, which the type system cannot follow through a union.
    return this.table[record.runtime] as unknown as SandboxRuntime;
  }

  get<K extends RuntimeKind>(kind: K): RuntimeOf<K> {
    return this.table[kind];
  }

  /** Every runtime, for what concerns them all (leftovers without a record, orphans). */
  all(): Pick<SandboxRuntime, "kind" | "removeLeftovers" | "orphans">[] {
    return RUNTIME_KINDS.map((kind) => this.table[kind]);
  }

  /** The runtimes this agent can run at all (capabilities.runtimes). */
  supported(): RuntimeKind[] {
    return RUNTIME_KINDS.filter((kind) => this.table[kind].supported);
  }

  /** Which runtimes can run here, as `system/check` reports it. */
  readiness(checks: CheckResult[]): Record<RuntimeKind, RuntimeReadiness> {
    return Object.fromEntries(RUNTIME_KINDS.map((kind) => [kind, this.table[kind].readiness(checks)])) as Record<RuntimeKind, RuntimeReadiness>;
  }
}

export interface RuntimeDeps {
  root: boolean;
  overrides: Overrides;
  /** This boot's results of these checks (run now if need be). */
  checks(names: CheckName[]): Promise<CheckResult[]>;
  changesets: Changesets;
  images: Images;
  vms: Vms;
  stateDir: string;
  nativeDir: string;
  log: Logger;
}

export function makeRuntimes(deps: RuntimeDeps): Runtimes {
  const { root, overrides, checks } = deps;
  return new Runtimes({
    process: new ProcessRuntime(deps.changesets),
    container: new ContainerRuntime({ root, overrides, changeset: deps.changesets.kind, checks, images: deps.images, stateDir: deps.stateDir, initBinary: path.join(deps.nativeDir, "container-init"), log: deps.log }),
    vm: new VmRuntime({ root, overrides, changeset: deps.changesets.kind, checks, vms: deps.vms }),
  });
}
