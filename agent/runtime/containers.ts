/**
 * Container sandboxes with an OCI runtime (runc or crun): each sandbox's container root is
 * an overlay of its image's unpacked layers with a private upper layer, its bundle and the
 * runtime's state live in the agent's state dir, and its name is derived from the sandbox
 * id, so that containers of two sandboxes, or of two agents, never collide.
 *
 * A container is up while its sandbox runs: PID 1 is Paddock's init; each program is a
 * `runc exec`. Stopping deletes the container (its upper layer, the container's own changes
 * outside /workspace, stays until the sandbox is deleted).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../protocol/errors";
import type { Limits, NetworkMode } from "../protocol/methods";
import type { Logger } from "../log/logger";
import { OVERLAY_OPTIONS, refuseUnsafeOptionPaths, unmountOverlay } from "../changeset/overlay";
import { MS_NODEV, errnoName, mount } from "../sys/libc";
import { containerConfig, execArgs } from "./container-spec";
import { DEFAULT_PATH, type LaunchSpec } from "./process-runtime";
import type { ImageRecord } from "../image/oci-import";

export type OciRuntimeName = "runc" | "crun";

export interface ContainerPaths {
  /** The container's own changes (outside /workspace). */
  upper: string;
  work: string;
  rootfs: string;
  bundle: string;
}

export interface ContainerStart {
  id: string;
  paths: ContainerPaths;
  image: ImageRecord;
  /** Unpacked layer directories, bottom first. */
  layerDirs: string[];
  workspaceView: string;
  network: NetworkMode;
  limits: Limits;
  cgroupsPath?: string;
}

const PREFIX = "paddock-";
const RUNTIME_TIMEOUT_MS = 30_000;
/** The kernel takes mount options up to a page. */
const MAX_OPTIONS = 4000;
/** slirp4netns's DNS forwarder, from the container's side. */
const SLIRP_DNS = "10.0.2.3";

export class Containers {
  private readonly nat = new Map<string, ChildProcess>();

  constructor(
    readonly runtime: OciRuntimeName,
    /** The runtime's --root: its state of this agent's containers. */
    private readonly stateRoot: string,
    private readonly initBinary: string,
    private readonly log: Logger,
  ) {
    fs.mkdirSync(stateRoot, { recursive: true, mode: 0o700 });
  }

  nameOf(id: string): string {
    return `${PREFIX}${id}`;
  }

  /** Mounts the container's root and starts its container (PID 1 only). */
  async start(request: ContainerStart): Promise<void> {
    const { paths } = request;
    for (const dir of [paths.upper, paths.work, paths.rootfs, paths.bundle]) fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    await this.remove(request.id, paths); // whatever a crash left
    this.mountRoot(request);
    try {
      let resolvConf: string | undefined;
      if (request.network === "host") resolvConf = "/etc/resolv.conf";
      if (request.network === "nat") {
        resolvConf = path.join(paths.bundle, "resolv.conf");
        fs.writeFileSync(resolvConf, `nameserver ${SLIRP_DNS}\n`);
      }
      const config = containerConfig({
        rootfs: paths.rootfs,
        workspaceView: request.workspaceView,
        initBinary: this.initBinary,
        imageConfig: request.image.config,
        network: request.network,
        ...(resolvConf && fs.existsSync(resolvConf) ? { resolvConf } : {}),
        limits: request.limits,
        ...(request.cgroupsPath ? { cgroupsPath: request.cgroupsPath } : {}),
        hostname: "paddock",
      });
      fs.writeFileSync(path.join(paths.bundle, "config.json"), JSON.stringify(config, null, 2));
      // PID 1 inherits the runtime's output: a file, not a pipe that would never close.
      const logFile = path.join(paths.bundle, "runtime.log");
      const logFd = fs.openSync(logFile, "w", 0o600);
      let run;
      try {
        run = spawnSync(this.runtime, ["--root", this.stateRoot, "run", "--detach", "--bundle", paths.bundle, this.nameOf(request.id)], { timeout: RUNTIME_TIMEOUT_MS, stdio: ["ignore", logFd, logFd], env: { PATH: DEFAULT_PATH } });
      } finally {
        fs.closeSync(logFd);
      }
      if (run.status !== 0) {
        const why = lastLine(fs.readFileSync(logFile, "utf8")) || run.error?.message || `exit code ${run.status}`;
        throw new PaddockError("E_CONTAINER", `${this.runtime} could not start the container: ${why}`, "see the agent log; `paddock check` tells whether the OCI runtime works");
      }
      if (request.network === "nat") await this.startNat(request.id);
    } catch (err) {
      await this.remove(request.id, paths);
      throw err;
    }
  }

  /** Kills and deletes the container, its user-mode network and its root mount. Safe to repeat. */
  async remove(id: string, paths: ContainerPaths): Promise<void> {
    const slirp = this.nat.get(id);
    if (slirp) {
      this.nat.delete(id);
      slirp.kill("SIGKILL");
    }
    if (this.exists(id)) {
      const del = this.runtimeSync(["delete", "--force", this.nameOf(id)]);
      if (del.status !== 0 && this.exists(id)) {
        throw new PaddockError("E_CONTAINER", `${this.runtime} could not delete container ${this.nameOf(id)}: ${lastLine(del.stderr)}`, "see the agent log");
      }
    }
    if (fs.existsSync(paths.rootfs)) unmountOverlay(paths.rootfs);
  }

  isRunning(id: string): boolean {
    const state = this.runtimeSync(["state", this.nameOf(id)]);
    if (state.status !== 0) return false;
    try {
      return (JSON.parse(state.stdout) as { status?: string }).status === "running";
    } catch {
      return false;
    }
  }

  /** Sandbox ids of this agent's containers, running or not. */
  list(): string[] {
    const out = this.runtimeSync(["list", "--quiet"]);
    if (out.status !== 0) return [];
    return out.stdout
      .split("\n")
      .filter((name) => name.startsWith(PREFIX))
      .map((name) => name.slice(PREFIX.length));
  }

  /** The command line of a program in the sandbox's container. */
  command(spec: LaunchSpec, image: ImageRecord): string[] {
    return [this.runtime, "--root", this.stateRoot, ...execArgs(this.nameOf(spec.sandboxId), spec, image.config)];
  }

  private exists(id: string): boolean {
    return fs.existsSync(path.join(this.stateRoot, this.nameOf(id)));
  }

  private mountRoot(request: ContainerStart): void {
    const { paths, layerDirs } = request;
    if (layerDirs.length === 0) throw new PaddockError("E_IMAGE", `image ${request.image.name} has no layers`, "import an image with at least one layer");
    refuseUnsafeOptionPaths([...layerDirs, paths.upper, paths.work]);
    // overlayfs lists lower layers top first.
    const options = `lowerdir=${[...layerDirs].reverse().join(":")},upperdir=${paths.upper},workdir=${paths.work},${OVERLAY_OPTIONS}`;
    if (options.length > MAX_OPTIONS) {
      throw new PaddockError("E_IMAGE", `image ${request.image.name} has too many layers (${layerDirs.length}) for one overlay mount`, "flatten the image (fewer layers) and import it again");
    }
    const err = mount(`paddock-root-${request.id}`, paths.rootfs, "overlay", MS_NODEV, options);
    if (err !== 0) throw new PaddockError("E_MOUNT", `cannot mount the container's root on ${paths.rootfs}: ${errnoName(err)}`, "run `paddock check`: overlayfs must work on this machine");
  }

  /** User-mode NAT: slirp4netns gives the container's network namespace a tap device and DNS. */
  private async startNat(id: string): Promise<void> {
    const state = JSON.parse(this.runtimeSync(["state", this.nameOf(id)]).stdout) as { pid: number };
    const slirp = spawn("setpriv", ["--pdeathsig", "SIGKILL", "--", "slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd=3", String(state.pid), "tap0"], {
      stdio: ["ignore", "ignore", "pipe", "pipe"],
      env: { PATH: DEFAULT_PATH },
    });
    await new Promise<void>((resolve, reject) => {
      let stderr = "";
      const fail = (why: string) => {
        slirp.kill("SIGKILL");
        reject(new PaddockError("E_CONTAINER", `cannot give the container a network: slirp4netns ${why}`, "install slirp4netns (apt-get install slirp4netns), or create the sandbox with network none"));
      };
      const timer = setTimeout(() => fail("did not get ready in 10 s"), 10_000);
      slirp.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
      (slirp.stdio[3] as NodeJS.ReadableStream).once("data", () => {
        clearTimeout(timer);
        resolve();
      });
      slirp.once("exit", (code) => {
        clearTimeout(timer);
        fail(lastLine(stderr) || `exited with code ${code}`);
      });
      slirp.once("error", (err) => fail(err.message));
    });
    slirp.removeAllListeners("exit");
    this.nat.set(id, slirp);
  }

  private runtimeSync(args: string[]) {
    return spawnSync(this.runtime, ["--root", this.stateRoot, ...args], { encoding: "utf8", timeout: RUNTIME_TIMEOUT_MS, stdio: ["ignore", "pipe", "pipe"], env: { PATH: DEFAULT_PATH } });
  }
}

function lastLine(text: string | undefined): string {
  const line = (text ?? "").trim().split("\n").pop() ?? "";
  // runc logs as logfmt: the message is what a person needs.
  return /msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1]?.replace(/\\"/g, '"') ?? line;
}
