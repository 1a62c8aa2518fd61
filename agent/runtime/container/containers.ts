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
import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../../protocol/errors";
import type { Limits, NetworkMode } from "../../../protocol/methods";
import type { Logger } from "../../log/logger";
import { OVERLAY_OPTIONS, refuseUnsafeOptionPaths, unmountAllBelow, unmountOverlay } from "../../changeset/overlay";
import { MS_NODEV, errnoName, mount } from "../../sys/libc";
import { Beneath, BeneathError } from "../../sys/beneath";
import { containerConfig, execArgs, mountDestinations } from "./container-spec";
import type { LaunchSpec } from "../launch-spec";
import { DEFAULT_PATH } from "../../sys/default-path";
import { lastMessage } from "../../log/logfmt";
import { SLIRP_DNS, startSlirp } from "../slirp";
import type { OciRuntimeName } from "../../state/sandbox-record";


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
  /** For messages. */
  imageName: string;
  imageConfig: unknown;
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

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

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
      if (request.network === "host" && fs.existsSync("/etc/resolv.conf")) resolvConf = "/etc/resolv.conf";
      if (request.network === "nat") {
        resolvConf = path.join(paths.bundle, "resolv.conf");
        fs.writeFileSync(resolvConf, `nameserver ${SLIRP_DNS}\n`);
      }
      const config = containerConfig({
        rootfs: paths.rootfs,
        workspaceView: request.workspaceView,
        initBinary: this.initBinary,
        imageConfig: request.imageConfig,
        network: request.network,
        ...(resolvConf ? { resolvConf } : {}),
        limits: request.limits,
        ...(request.cgroupsPath ? { cgroupsPath: request.cgroupsPath } : {}),
        hostname: "paddock",
      });
      if (resolvConf) ownResolvConf(paths.rootfs);
      refuseSymlinkedDestinations(paths.rootfs, mountDestinations(config), request.imageName);
      fs.writeFileSync(path.join(paths.bundle, "config.json"), JSON.stringify(config, null, 2));
      // PID 1 inherits the runtime's output: a file, not a pipe that would never close.
      const logFile = path.join(paths.bundle, "runtime.log");
      const logFd = fs.openSync(logFile, "w", 0o600);
      let run: Ran;
      try {
        run = await this.runtimeCall(["run", "--detach", "--bundle", paths.bundle, this.nameOf(request.id)], logFd);
      } finally {
        fs.closeSync(logFd);
      }
      if (run.code !== 0) {
        const output = fs.readFileSync(logFile, "utf8");
        this.log.warn("the OCI runtime could not start a container", { sandboxId: request.id, runtime: this.runtime, output });
        throw new PaddockError("E_CONTAINER", `${this.runtime} could not start the container: ${lastMessage(output) || `exit code ${run.code}`}`, `the agent log has ${this.runtime}'s output; \`paddock check\` tells whether ${this.runtime} works here`);
      }
      if (request.network === "nat") await this.startNat(request.id);
    } catch (err) {
      await this.remove(request.id, paths).catch((cleanup: Error) => this.log.error("cannot clean up a container that did not start", { sandboxId: request.id, error: cleanup.message }));
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
      // A `runc init` killed while it started (an exec's timeout, a stop) can leave the
      // read-only bind of runc's own binary that it makes in the container's state folder
      // (runc.XXXXXX, runc 1.1's cloned binary): runc delete could not remove the folder.
      unmountAllBelow(path.join(this.stateRoot, this.nameOf(id)));
      const del = await this.runtimeCall(["delete", "--force", this.nameOf(id)]);
      if (del.code !== 0 && this.exists(id)) {
        this.log.error("the OCI runtime could not delete a container", { sandboxId: id, runtime: this.runtime, stderr: del.stderr });
        throw new PaddockError("E_CONTAINER", `${this.runtime} could not delete container ${this.nameOf(id)}: ${lastMessage(del.stderr)}`, "a process in it may be stuck in the kernel (see ps); `paddock gc` tries again");
      }
    }
    if (fs.existsSync(paths.rootfs)) unmountOverlay(paths.rootfs);
  }

  async isRunning(id: string): Promise<boolean> {
    const state = await this.runtimeCall(["state", this.nameOf(id)]);
    return state.code === 0 && parseState(state.stdout)?.status === "running";
  }

  /** Sandbox ids of this agent's containers, running or not. */
  async list(): Promise<string[]> {
    const out = await this.runtimeCall(["list", "--quiet"]);
    if (out.code !== 0) return [];
    return out.stdout
      .split("\n")
      .filter((name) => name.startsWith(PREFIX))
      .map((name) => name.slice(PREFIX.length));
  }

  /** The command line of a program in the sandbox's container. */
  command(spec: LaunchSpec, imageConfig: unknown): string[] {
    return [this.runtime, "--root", this.stateRoot, ...execArgs(this.nameOf(spec.sandboxId), spec, imageConfig)];
  }

  private exists(id: string): boolean {
    return fs.existsSync(path.join(this.stateRoot, this.nameOf(id)));
  }

  private mountRoot(request: ContainerStart): void {
    const { paths, layerDirs } = request;
    if (layerDirs.length === 0) throw new PaddockError("E_IMAGE", `image ${request.imageName} has no layers`, "import an image with at least one layer");
    const missing = layerDirs.find((dir) => !fs.existsSync(dir));
    if (missing) throw new PaddockError("E_IMAGE", `a layer of image ${request.imageName} is missing from the image store (${path.basename(missing)})`, "delete the sandbox (approve what you need first) and import the image again");
    refuseUnsafeOptionPaths([...layerDirs, paths.upper, paths.work]);
    // overlayfs lists lower layers top first.
    const options = `lowerdir=${[...layerDirs].reverse().join(":")},upperdir=${paths.upper},workdir=${paths.work},${OVERLAY_OPTIONS}`;
    if (options.length > MAX_OPTIONS) {
      throw new PaddockError("E_IMAGE", `image ${request.imageName} has too many layers (${layerDirs.length}) for one overlay mount`, "flatten the image (fewer layers) and import it again");
    }
    const err = mount(`paddock-root-${request.id}`, paths.rootfs, "overlay", MS_NODEV, options);
    if (err !== 0) throw new PaddockError("E_MOUNT", `cannot mount the container's root on ${paths.rootfs}: ${errnoName(err)}`, "run `paddock check`: overlayfs must work on this machine");
  }

  /** User-mode NAT: slirp4netns gives the container's network namespace a tap device and DNS. */
  private async startNat(id: string): Promise<void> {
    const state = await this.runtimeCall(["state", this.nameOf(id)]);
    const pid = parseState(state.stdout)?.pid;
    if (!pid) throw new PaddockError("E_CONTAINER", `${this.runtime} does not say which process the container is (${lastMessage(state.stderr)})`, "stop and start the sandbox");
    this.nat.set(id, await startSlirp({ pid }, "container", "E_CONTAINER"));
  }

  /** Runs the OCI runtime without blocking the agent; `outFd` takes both outputs when given. */
  private runtimeCall(args: string[], outFd?: number): Promise<Ran> {
    const argv = ["--root", this.stateRoot, ...args];
    if (outFd !== undefined) {
      return new Promise((resolve) => {
        const child = spawn(this.runtime, argv, { stdio: ["ignore", outFd, outFd], env: { PATH: DEFAULT_PATH }, timeout: RUNTIME_TIMEOUT_MS });
        child.once("error", (err) => resolve({ code: -1, stdout: "", stderr: err.message }));
        child.once("exit", (code) => resolve({ code, stdout: "", stderr: "" }));
      });
    }
    return new Promise((resolve) => {
      execFile(this.runtime, argv, { encoding: "utf8", timeout: RUNTIME_TIMEOUT_MS, env: { PATH: DEFAULT_PATH }, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr: stderr || (err && typeof err.code !== "number" ? err.message : "") });
      });
    });
  }
}

function parseState(stdout: string): { status?: string; pid?: number } | undefined {
  try {
    return JSON.parse(stdout) as { status?: string; pid?: number };
  } catch {
    return undefined;
  }
}

/**
 * Many images make /etc/resolv.conf a symlink (to a resolver's file under /run): a container
 * with a network gets a file of its own there instead, in its own root's upper layer, where
 * Paddock's resolv.conf is then bound. /etc itself must still be a real folder.
 */
function ownResolvConf(rootfs: string): void {
  const root = Beneath.open(rootfs);
  try {
    const etc = root.lstat("etc");
    if (!etc?.isDirectory()) return; // refused below, or made by the runtime
    if (!root.lstat("etc/resolv.conf")?.isSymbolicLink()) return;
    root.unlink("etc/resolv.conf");
    fs.closeSync(root.open("etc/resolv.conf", fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644));
  } catch (err) {
    if (!(err instanceof BeneathError)) throw err;
    // Something moved under us (it is the image's root, nobody else's): the check below decides.
  } finally {
    root.close();
  }
}

/**
 * The runtime resolves mount destinations through the image's symlinks (inside its root): an
 * image whose /etc is a symlink to /workspace would have it create files in the sandbox's
 * changes. Such an image is refused.
 */
function refuseSymlinkedDestinations(rootfs: string, destinations: string[], imageName: string): void {
  const root = Beneath.open(rootfs);
  try {
    for (const destination of destinations) {
      const rel = destination.replace(/^\/+/, "");
      let symlink = false;
      try {
        symlink = root.lstat(rel)?.isSymbolicLink() ?? false;
      } catch (err) {
        if (!(err instanceof BeneathError)) throw err;
        symlink = true; // a folder on the way is a symlink (ELOOP), or worse
      }
      if (symlink) {
        throw new PaddockError("E_IMAGE", `image ${imageName} has a symlink at ${destination} (or on the way to it), where Paddock mounts`, "use an image where that path is a real folder or file");
      }
    }
  } finally {
    root.close();
  }
}

/** The message runc printed for a failed `runc exec` (exit code 255), if that is what happened. */
export function execFailure(exitCode: number | null, stderr: string): string | undefined {
  if (exitCode !== 255) return undefined;
  const line = stderr.trim().split("\n").pop() ?? "";
  return /level=error msg="/.test(line) ? lastMessage(line) : undefined;
}
