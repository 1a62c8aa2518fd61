/**
 * The `container` runtime: each sandbox is an OCI container (runc or crun) whose root is its
 * image and whose /workspace is the sandbox's view; programs are `runc exec`s into it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../../protocol/errors";
import type { CheckResult, Limits, RuntimeReadiness } from "../../../protocol/methods";
import { RUNTIME_NETWORKS } from "../../../protocol/runtime-kinds";
import { unmountOverlay } from "../../changeset/overlay";
import type { Images } from "../../image/images";
import type { Logger } from "../../log/logger";
import type { Completed } from "../../process/run-to-completion";
import type { Launch } from "../../process/launch";
import type { SandboxPaths } from "../../state/sandbox-layout";
import type { ContainerRecord, OciRuntimeName, RuntimePart } from "../../state/sandbox-record";
import type { LaunchSpec } from "../launch-spec";
import { resolveLimits, type CgroupControllers } from "../limits";
import { OCI_RUNTIMES, choose, containerReadiness, ociRuntimeChoice, type ChoiceInputs } from "../readiness";
import { refuseNetwork, type CreateRequest, type Leftover, type SandboxRuntime, type StartContext, type Validated } from "../runtime";
import { Containers, execFailure } from "./containers";

export interface ContainerRuntimeOptions extends ChoiceInputs {
  images: Images;
  /** The state dir: each OCI runtime keeps its containers' state in a folder of its own there. */
  stateDir: string;
  /** The containers' PID 1. */
  initBinary: string;
  log: Logger;
}

export class ContainerRuntime implements SandboxRuntime<ContainerRecord> {
  readonly kind = "container";
  readonly networks = RUNTIME_NETWORKS.container;
  readonly supported: boolean;
  /** Its processes die with the sandbox's cgroup, which reconcile empties after a restart: the container is made again. */
  readonly survivesAgentRestart = false;
  readonly startsSlowly = false;
  private readonly containers = new Map<OciRuntimeName, Containers>();

  constructor(private readonly options: ContainerRuntimeOptions) {
    this.supported = options.root;
  }

  readiness(checks: CheckResult[]): RuntimeReadiness {
    return containerReadiness(checks, this.options.root, this.options.overrides, this.options.changeset);
  }

  validate(request: CreateRequest, cgroups: CgroupControllers | undefined): Validated {
    const validated = resolveLimits(request.limits ?? {}, cgroups);
    refuseNetwork(this, request);
    return validated;
  }

  /** The OCI runtime and the image; no runtime or no image is a plain refusal. */
  async prepare(request: CreateRequest): Promise<RuntimePart<ContainerRecord>> {
    const { root, overrides } = this.options;
    const ociRuntime = await choose(!root || overrides.ociRuntime !== undefined, () => this.options.checks([...OCI_RUNTIMES]), (checks) => ociRuntimeChoice(checks, root, overrides));
    const image = await this.options.images.resolve(request.image);
    return { runtime: "container", image: { name: image.name, digest: image.digest }, container: { ociRuntime, layers: image.layers, config: image.config } };
  }

  cgroupLimits(record: ContainerRecord): Limits {
    return record.limits;
  }

  async start(record: ContainerRecord, context: StartContext): Promise<void> {
    await this.of(record.container.ociRuntime).start({
      id: record.id,
      paths: context.paths.container,
      imageName: record.image.name,
      imageConfig: record.container.config,
      layerDirs: this.options.images.layerDirs(record.container.layers),
      workspaceView: context.view,
      network: record.network,
      limits: record.limits,
      ...(context.cgroupsPath ? { cgroupsPath: context.cgroupsPath } : {}),
    });
  }

  async halt(): Promise<void> {}

  async stop(record: ContainerRecord, paths: SandboxPaths): Promise<void> {
    await this.of(record.container.ociRuntime).remove(record.id, paths.container);
  }

  /** Layers only this sandbox still held (its image was removed or re-imported meanwhile) go. */
  deleted(): void {
    this.options.images.collect();
  }

  launch(record: ContainerRecord, spec: LaunchSpec): Launch {
    return { host: this.of(record.container.ociRuntime).command(spec, record.container.config) };
  }

  /** `runc exec` itself failed (exit code 255 and its log line): an error, not the program's result. */
  async checkExec(record: ContainerRecord, done: Completed, interrupted: boolean): Promise<void> {
    // A command killed (a timeout, a stop) can make runc exec fail on its own: that is no exec failure.
    if (interrupted) return;
    const failure = execFailure(done.exitCode, done.stderr);
    if (!failure) return;
    if (!(await this.of(record.container.ociRuntime).isRunning(record.id))) {
      throw new PaddockError("E_INVALID_STATE", `the container of sandbox ${record.id} is no longer running (${failure})`, "stop and start the sandbox (its changes are kept)");
    }
    throw new PaddockError("E_SPAWN", `cannot run the command in the container: ${failure}`, "check the program's name and the working directory (relative to /workspace)");
  }

  /** Whatever OCI runtime may hold a container of this id, and its root's mount. */
  async removeLeftovers(id: string, paths: SandboxPaths): Promise<void> {
    for (const containers of this.leftovers()) await containers.remove(id, paths.container);
    unmountOverlay(paths.container.rootfs);
  }

  async orphans(known: (id: string) => boolean, pathsOf: (id: string) => SandboxPaths): Promise<Leftover[]> {
    const found: Leftover[] = [];
    for (const containers of this.leftovers()) {
      for (const id of await containers.list()) {
        if (!known(id)) found.push({ what: `container of ${id}`, remove: () => containers.remove(id, pathsOf(id).container) });
      }
    }
    return found;
  }

  imageOf(record: ContainerRecord): { digest: string; layers: string[] } {
    return { digest: record.image.digest, layers: record.container.layers };
  }

  private of(name: OciRuntimeName): Containers {
    let made = this.containers.get(name);
    if (!made) this.containers.set(name, (made = new Containers(name, path.join(this.options.stateDir, name), this.options.initBinary, this.options.log)));
    return made;
  }

  /** Containers of every OCI runtime whose state holds some (a crash may have left them). */
  private leftovers(): Containers[] {
    const hasContainers = (name: OciRuntimeName) => {
      try {
        return fs.readdirSync(path.join(this.options.stateDir, name)).some((entry) => entry.startsWith("paddock-"));
      } catch {
        return false;
      }
    };
    return OCI_RUNTIMES.filter(hasContainers).map((name) => this.of(name));
  }
}
