/**
 * How a sandbox's overlay is mounted and how a program gets to see it, in the two modes the
 * agent runs in:
 *
 * - root: kernel overlayfs mounted in the host's mount namespace; native/paddock-enter joins
 *   the cgroups, binds the merged view over the workspace path in a private namespace and
 *   drops to the owner before bwrap runs.
 * - rootless: overlayfs with `userxattr`, mounted inside a user and mount namespace that a
 *   small holder process keeps alive (and that dies with the agent); programs enter it with
 *   nsenter, then bwrap binds the merged view over the workspace path.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import { isAgentFolder, type SandboxPaths } from "../state/sandbox-layout";
import { DEFAULT_PATH } from "../sys/default-path";
import { OVERLAY_OPTIONS, isMountPoint, mountOverlay, mountPoints, refuseUnsafeOptionPaths, unmountOverlay } from "./overlay";
import { dieWithAgent } from "../process/die-with-agent";
import { UpperFormat } from "./upper-format";

export type ChangesetKind = "kernel overlayfs" | "overlayfs in a user namespace" | "fuse-overlayfs";

/** The program to let into a sandbox's view: which sandbox, as whom, joining which cgroups. */
export interface EnterSpec {
  sandboxId: string;
  /** The sandbox's merged overlay on the host. */
  merged: string;
  workspace: string;
  /** "dev:ino" of the workspace directory checked at creation. */
  workspaceId: string;
  uid: number;
  gid: number;
  cgroupProcs: string[];
}

/**
 * How a program gets into a mounted sandbox's view: the command line before bubblewrap,
 * bubblewrap's own first options, and where bubblewrap then finds the view.
 */
export interface Entry {
  before: string[];
  bwrapFirst: string[];
  view: string;
}

export interface Changesets {
  readonly kind: ChangesetKind;
  /** The marks its overlay writes in an upper directory. */
  readonly upperFormat: UpperFormat;
  mount(id: string, paths: SandboxPaths, workspace: { fd: number; path: string }): Promise<void>;
  unmount(id: string, paths: SandboxPaths): Promise<void>;
  isMounted(id: string, paths: SandboxPaths): boolean;
  /** Where the agent itself reaches the merged view of a mounted sandbox. */
  viewPath(id: string, paths: SandboxPaths): string;
  /** How a program gets into the sandbox's view (bubblewrap then runs it there). */
  enter(spec: EnterSpec): Entry;
  /** Sandbox ids that have a mount, so that orphans (no record) can be found. */
  mountedIds(sandboxesRoot: string): string[];
}

/** The changesets of a kind. */
export function makeChangesets(kind: ChangesetKind, enterHelper: string): Changesets {
  if (kind === "fuse-overlayfs") return new FuseChangesets(enterHelper);
  return kind === "kernel overlayfs" ? new KernelChangesets(enterHelper) : new UserNamespaceChangesets(enterHelper);
}

export class KernelChangesets implements Changesets {
  readonly kind: ChangesetKind = "kernel overlayfs";
  readonly upperFormat = UpperFormat.kernel;
  constructor(private readonly enterHelper: string) {}

  async mount(id: string, paths: SandboxPaths, workspace: { fd: number }): Promise<void> {
    if (!isMountPoint(paths.merged)) mountOverlay({ lowerFd: workspace.fd, upper: paths.upper, work: paths.work, merged: paths.merged }, `paddock-${id}`);
  }

  async unmount(_id: string, paths: SandboxPaths): Promise<void> {
    unmountOverlay(paths.merged);
  }

  isMounted(_id: string, paths: SandboxPaths): boolean {
    return isMountPoint(paths.merged);
  }

  viewPath(_id: string, paths: SandboxPaths): string {
    return paths.merged;
  }

  enter(spec: EnterSpec): Entry {
    return rootEntry(this.enterHelper, spec);
  }

  mountedIds(sandboxesRoot: string): string[] {
    return mountedUnder(sandboxesRoot);
  }
}

/** As root: paddock-enter joins the cgroups, binds the view over the workspace and drops to the owner. */
function rootEntry(enterHelper: string, spec: EnterSpec): Entry {
  return {
    before: [
      enterHelper,
      ...spec.cgroupProcs.flatMap((file) => ["--cgroup", file]),
      "--bind", spec.merged, spec.workspace, spec.workspaceId,
      ...(spec.uid !== 0 ? ["--user", String(spec.uid), String(spec.gid)] : []),
      "--",
    ],
    bwrapFirst: [],
    // paddock-enter has bound the merged view over the workspace path.
    view: spec.workspace,
  };
}

function mountedUnder(sandboxesRoot: string): string[] {
  const root = sandboxesRoot + path.sep;
  return mountPoints()
    .filter((p) => p.startsWith(root))
    .map((p) => path.relative(sandboxesRoot, p).split(path.sep)[0] ?? "")
    .filter((id) => id !== "" && !isAgentFolder(id));
}

/**
 * fuse-overlayfs: the fallback where overlayfs itself cannot be mounted. The mount is in
 * the host's namespace (as root) or the user's (rootless, through fusermount3); a daemon
 * serves it and outlives the agent, so a restarted agent adopts it.
 */
export class FuseChangesets implements Changesets {
  readonly kind: ChangesetKind = "fuse-overlayfs";
  readonly upperFormat = UpperFormat.fuse;
  private readonly root = process.getuid?.() === 0;

  constructor(private readonly enterHelper: string) {}

  async mount(_id: string, paths: SandboxPaths, workspace: { path: string }): Promise<void> {
    if (isMountPoint(paths.merged)) return;
    refuseUnsafeOptionPaths([workspace.path, paths.upper, paths.work]);
    const result = spawnSync("fuse-overlayfs", ["-o", `lowerdir=${workspace.path},upperdir=${paths.upper},workdir=${paths.work}`, paths.merged], {
      encoding: "utf8",
      timeout: HOLDER_TIMEOUT_MS,
      env: { PATH: DEFAULT_PATH },
    });
    if (result.status !== 0 || !isMountPoint(paths.merged)) {
      throw new PaddockError("E_MOUNT", `cannot mount fuse-overlayfs: ${result.stderr?.trim() || result.error?.message || `exit code ${result.status}`}`, "run `paddock check`: fuse-overlayfs must pass");
    }
  }

  async unmount(_id: string, paths: SandboxPaths): Promise<void> {
    if (!isMountPoint(paths.merged)) return;
    const result = spawnSync("fusermount3", ["-u", "-z", paths.merged], { encoding: "utf8", env: { PATH: DEFAULT_PATH } });
    if (result.status !== 0 && isMountPoint(paths.merged)) unmountOverlay(paths.merged);
  }

  isMounted(_id: string, paths: SandboxPaths): boolean {
    return isMountPoint(paths.merged);
  }

  viewPath(_id: string, paths: SandboxPaths): string {
    return paths.merged;
  }

  enter(spec: EnterSpec): Entry {
    if (this.root) return rootEntry(this.enterHelper, spec);
    // The user's own mount, in the host's namespace: bwrap binds it directly.
    return { before: [this.enterHelper, ...spec.cgroupProcs.flatMap((file) => ["--cgroup", file]), "--"], bwrapFirst: [], view: spec.merged };
  }

  mountedIds(sandboxesRoot: string): string[] {
    return mountedUnder(sandboxesRoot);
  }
}

const HOLDER_READY = "paddock-holder-ready";
const HOLDER_TIMEOUT_MS = 10_000;

export class UserNamespaceChangesets implements Changesets {
  readonly kind: ChangesetKind = "overlayfs in a user namespace";
  readonly upperFormat = UpperFormat.userxattr;
  private readonly holders = new Map<string, ChildProcess>();

  constructor(private readonly enterHelper: string) {}

  async mount(id: string, paths: SandboxPaths, workspace: { path: string }): Promise<void> {
    if (this.isMounted(id)) return;
    refuseUnsafeOptionPaths([workspace.path, paths.upper, paths.work]);
    const options = `lowerdir=${workspace.path},upperdir=${paths.upper},workdir=${paths.work},userxattr,${OVERLAY_OPTIONS}`;
    // The namespace, and so the mount, ends when the agent does.
    const holder = spawn(
      ...dieWithAgent("unshare", ["--user", "--map-root-user", "--mount", "--propagation", "private", "sh", "-c", `mount -t overlay paddock-${id} -o "$1" "$2" && echo ${HOLDER_READY} && exec sleep infinity`, "holder", options, paths.merged]),
      { stdio: ["ignore", "pipe", "pipe"], env: { PATH: DEFAULT_PATH } },
    );
    await new Promise<void>((resolve, reject) => {
      let stderr = "";
      const fail = (why: string) => {
        holder.kill("SIGKILL");
        reject(new PaddockError("E_MOUNT", `cannot mount the sandbox's overlay in a user namespace: ${why}`, "run `paddock check`: overlayfs-rootless must pass"));
      };
      const timer = setTimeout(() => fail("timed out"), HOLDER_TIMEOUT_MS);
      holder.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
      holder.stdout!.on("data", (d: Buffer) => {
        if (d.toString("utf8").includes(HOLDER_READY)) {
          clearTimeout(timer);
          resolve();
        }
      });
      holder.once("exit", (code) => {
        clearTimeout(timer);
        fail(stderr.trim() || `exit code ${code}`);
      });
      holder.once("error", (err) => fail(err.message));
    });
    holder.removeAllListeners("exit");
    holder.once("exit", () => this.holders.delete(id));
    this.holders.set(id, holder);
  }

  async unmount(id: string): Promise<void> {
    const holder = this.holders.get(id);
    if (!holder) return;
    this.holders.delete(id);
    const exited = new Promise((resolve) => holder.once("exit", resolve));
    holder.kill("SIGKILL");
    await exited;
  }

  isMounted(id: string): boolean {
    const holder = this.holders.get(id);
    return holder !== undefined && holder.exitCode === null && holder.signalCode === null;
  }

  /** The mount lives in the holder's namespace; its /proc root leads there (same user, so allowed). */
  viewPath(id: string, paths: SandboxPaths): string {
    const holder = this.holders.get(id);
    if (!holder?.pid) throw new PaddockError("E_INVALID_STATE", `sandbox ${id} is not mounted`, "start it (sandbox/start)");
    return `/proc/${holder.pid}/root${paths.merged}`;
  }

  enter(spec: EnterSpec): Entry {
    const holder = this.holders.get(spec.sandboxId);
    if (!holder?.pid) throw new PaddockError("E_INVALID_STATE", `sandbox ${spec.sandboxId} is not mounted`, "start it (sandbox/start)");
    return {
      before: [
        "nsenter", "--target", String(holder.pid), "--user", "--mount", "--preserve-credentials", "--",
        this.enterHelper,
        ...spec.cgroupProcs.flatMap((file) => ["--cgroup", file]),
        "--",
      ],
      // Inside, the program has the owner's uid, as outside.
      bwrapFirst: ["--unshare-user", "--uid", String(spec.uid), "--gid", String(spec.gid)],
      view: spec.merged,
    };
  }

  mountedIds(): string[] {
    return [...this.holders.keys()];
  }
}
