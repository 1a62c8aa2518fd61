/**
 * `paddock agent`: takes the state dir's lock, opens the logs, and serves the protocol on
 * stdio or on a Unix socket until told to stop.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Agent } from "./agent";
import { ROOTLESS_CONTAINERS, ROOTLESS_VMS, SystemChecker, chooseChangeset, readBootId, type ChangesetKind } from "./check/system-check";
import { SandboxManager } from "./sandbox/manager";
import { SandboxStore } from "./sandbox/store";
import { ProcessTable } from "./process/process-table";
import { cgroupScope, openCgroups } from "./runtime/cgroup";
import { FuseChangesets, KernelChangesets, UserNamespaceChangesets, type Changesets } from "./changeset/changesets";
import { killAllProbes } from "./check/run-probe";
import { bindOntoItself } from "./changeset/overlay";
import { HumanSink, JsonFileSink, LevelFilterSink, Logger, type LogLevel } from "./log/logger";
import { acquireStateLock } from "./state/lock";
import { stateFiles } from "./state/paths";
import { prepareStateDir } from "./state/state-dir";
import { listenOnSocket } from "./server/socket-server";
import { AGENT_VERSION } from "./version";
import { Containers, type OciRuntimeName } from "./runtime/containers";
import { Images } from "./image/images";
import { Vms, type Accelerator } from "./runtime/vms";
import { GuestImages } from "./vm/guest-image";
import { PaddockError } from "./protocol/errors";

export interface ServeOptions {
  stateDir: string;
  transport: { kind: "stdio" } | { kind: "socket"; path: string; group?: string };
  logLevel: LogLevel;
  /** A quieter level for stderr only (a private agent the CLI starts should not chatter). */
  stderrLevel?: LogLevel;
  /** Where the built native helpers (probe-init) are. */
  nativeDir: string;
  /** The OCI runtime containers use, whatever the checks found (--oci-runtime, else PADDOCK_OCI_RUNTIME). */
  ociRuntime?: string;
}

/**
 * The changeset mechanism: overlayfs itself, or fuse-overlayfs where this boot's checks found
 * that overlayfs does not mount and fuse-overlayfs does. PADDOCK_CHANGESET forces one.
 */
function makeChangesets(chosen: ChangesetKind, enterHelper: string, log: Logger): Changesets {
  const forced = process.env.PADDOCK_CHANGESET;
  const kind = forced === "fuse-overlayfs" ? "fuse-overlayfs" : chosen;
  log.info("changesets", { using: kind, ...(forced ? { forcedBy: "PADDOCK_CHANGESET" } : {}) });
  if (kind === "fuse-overlayfs") return new FuseChangesets(enterHelper);
  return kind === "kernel overlayfs" ? new KernelChangesets(enterHelper) : new UserNamespaceChangesets(enterHelper);
}

const OCI_RUNTIMES: OciRuntimeName[] = ["runc", "crun"];

/**
 * The OCI runtime new containers use: PADDOCK_OCI_RUNTIME when set, else the first whose
 * check ran a container on this machine (their probes run now if this boot has no checks).
 */
async function chooseOciRuntime(checker: SystemChecker, log: Logger, forced: string | undefined): Promise<OciRuntimeName> {
  if (process.getuid?.() !== 0) {
    throw new PaddockError("E_RUNTIME_UNAVAILABLE", ROOTLESS_CONTAINERS, "run the agent as root (sudo paddock agent; in VS Code, paddock.agent.mode: root), or use the process runtime");
  }
  if (forced === "runc" || forced === "crun") return forced;
  if (forced) throw new PaddockError("E_RUNTIME_UNAVAILABLE", `the OCI runtime was set to ${JSON.stringify(forced)}, which is not one Paddock runs`, "set it (--oci-runtime, PADDOCK_OCI_RUNTIME or the paddock.agent.ociRuntime setting) to runc or crun, or leave it unset to use the one `paddock check` found working");
  const checks = await checker.some(OCI_RUNTIMES, log);
  const works = OCI_RUNTIMES.find((name) => checks.find((c) => c.name === name)?.ok);
  if (works) return works;
  const why = OCI_RUNTIMES.map((name) => checks.find((c) => c.name === name)).filter((c) => c !== undefined).map((c) => `${c.name}: ${c.detail}`).join("; ");
  throw new PaddockError("E_RUNTIME_UNAVAILABLE", `no OCI runtime works on this machine (${why})`, "install runc (apt-get install runc); `paddock check` shows the details");
}

/** KVM where its check booted a guest, else TCG (PADDOCK_ACCELERATOR forces one). */
async function chooseAccelerator(checker: SystemChecker, log: Logger): Promise<Accelerator> {
  if (process.getuid?.() !== 0) throw new PaddockError("E_RUNTIME_UNAVAILABLE", ROOTLESS_VMS, "run the agent as root (sudo paddock agent; in VS Code, paddock.agent.mode: root), or use the process runtime");
  const forced = process.env.PADDOCK_ACCELERATOR;
  if (forced === "kvm" || forced === "tcg") return forced;
  if (forced) throw new PaddockError("E_RUNTIME_UNAVAILABLE", `PADDOCK_ACCELERATOR is ${JSON.stringify(forced)}, which is not an accelerator`, "set it to kvm or tcg, or unset it to use the one `paddock check` found booting a guest");
  const checks = await checker.some(["qemu", "kvm", "tcg"], log);
  const ok = (name: string) => checks.find((c) => c.name === name)?.ok === true;
  if (!ok("qemu")) throw new PaddockError("E_RUNTIME_UNAVAILABLE", "QEMU is not installed or does not run", "install qemu-system-x86 (npm run setup does); `paddock check` shows the details");
  if (ok("kvm")) return "kvm";
  if (ok("tcg")) return "tcg";
  const why = checks.filter((c) => c.name !== "qemu").map((c) => `${c.name}: ${c.detail}`).join("; ");
  throw new PaddockError("E_RUNTIME_UNAVAILABLE", `QEMU cannot boot a guest here (${why})`, "`paddock check --refresh` shows the details");
}

export interface AgentInfo {
  pid: number;
  version: string;
  socket: string;
  startedAt: string;
}

export async function serve(requested: ServeOptions): Promise<void> {
  prepareStateDir(requested.stateDir);
  // One spelling of the state dir everywhere (mount points are compared as strings).
  const options = { ...requested, stateDir: fs.realpathSync(requested.stateDir) };
  const files = stateFiles(options.stateDir);
  const lock = acquireStateLock(files.lock, options.stateDir);
  const fileSink = new JsonFileSink(files.log);
  const stderrSink = options.stderrLevel ? new LevelFilterSink(new HumanSink(), options.stderrLevel) : new HumanSink();
  const log = new Logger([fileSink, stderrSink], options.logLevel, {});
  const checker = new SystemChecker({ scratchRoot: files.tmp, cacheFile: files.checkCache, nativeDir: options.nativeDir });

  const cleanups: (() => Promise<void> | void)[] = [];
  let stopping = false;
  const cleanUp = async () => {
    killAllProbes();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };
  const stop = async (code: number, reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info("agent stopping", { reason });
    await cleanUp();
    lock.release();
    fileSink.close();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0, "SIGINT"));
  process.on("SIGTERM", () => void stop(0, "SIGTERM"));
  process.on("uncaughtException", (err) => log.error("uncaught exception", { error: err.stack ?? String(err) }));
  process.on("unhandledRejection", (err) => log.error("unhandled rejection", { error: String(err) }));

  const uid = process.getuid?.() ?? 0;
  let stdioExitCode = 0;
  const processes = new ProcessTable(log);
  const enterHelper = path.join(options.nativeDir, "paddock-enter");
  // As root, the sandboxes' mounts live in the host's namespace, under one folder that
  // commands' namespaces detach (rootless mounts live in holders' namespaces).
  if (uid === 0) cleanups.push(bindOntoItself(new SandboxStore(files.sandboxes).root));
  const cgroups = openCgroups(cgroupScope(options.stateDir));
  cleanups.push(() => cgroups?.releaseIfEmpty());
  // Each OCI runtime keeps its containers' state in its own folder of the state dir.
  const containers = new Map<OciRuntimeName, Containers>();
  const containersOf = (name: OciRuntimeName) => {
    let made = containers.get(name);
    if (!made) containers.set(name, (made = new Containers(name, path.join(options.stateDir, name), path.join(options.nativeDir, "container-init"), log)));
    return made;
  };
  const hasContainers = (name: OciRuntimeName) => {
    try {
      return fs.readdirSync(path.join(options.stateDir, name)).some((entry) => entry.startsWith("paddock-"));
    } catch {
      return false;
    }
  };
  const vms = new Vms(new GuestImages(files.cache, path.join(options.nativeDir, "guest-agent")), enterHelper, path.join(files.sandboxes, ".vm-pool"), log);
  cleanups.push(() => vms.stopAll());
  const images: Images = new Images(files.images, (progress) => agent.broadcastToAll("image/progress", progress), {
    usersOf: (digest: string): string[] => sandboxes.imageUsers(digest),
    layersInUse: (): Set<string> => sandboxes.layersInUse(),
  });
  const sandboxes: SandboxManager = new SandboxManager({
    store: new SandboxStore(files.sandboxes),
    stateDir: options.stateDir,
    bootId: readBootId(),
    cgroups,
    processes,
    log,
    changesets: makeChangesets(chooseChangeset(checker.cachedChecks(), uid === 0), enterHelper, log),
    containers: {
      choose: () => chooseOciRuntime(checker, log, options.ociRuntime ?? process.env.PADDOCK_OCI_RUNTIME),
      of: containersOf,
      leftovers: () => OCI_RUNTIMES.filter(hasContainers).map(containersOf),
    },
    images,
    vms: {
      runtime: vms,
      chooseAccelerator: () => chooseAccelerator(checker, log),
    },
    broadcast: (ownerUid, method, params, whenBehind) => agent.broadcast(ownerUid, method, params, whenBehind),
  });
  const agent: Agent = new Agent({
    stateDir: options.stateDir,
    log,
    checker,
    sandboxes,
    processes,
    images,
    vmPool: () => vms.poolStats(),
    runtimes: uid === 0 ? ["process", "container", "vm"] : ["process"],
    onExit: (session, connection) => {
      // LSP: exit after shutdown is a clean exit, exit without it is not.
      if (session.transport === "stdio") stdioExitCode = session.shutdownRequested ? 0 : 1;
      connection.closeWhenIdle();
    },
  });

  log.info("agent starting", { version: AGENT_VERSION, pid: process.pid, uid, stateDir: options.stateDir, transport: options.transport.kind });
  // Before any client is served: put every sandbox in order after a crash or a reboot.
  await sandboxes.reconcile();
  sandboxes.startTtlSweeper();
  cleanups.push(() => sandboxes.stopTtlSweeper());
  cleanups.push(() => void sandboxes.closeWatchers());

  if (options.transport.kind === "stdio") {
    const connection = agent.attach(process.stdin, process.stdout, { uid }, "stdio");
    connection.onClose(() => void stop(stdioExitCode, "stdio connection closed"));
    return;
  }

  const socketPath = path.resolve(options.transport.path);
  // A socket that cannot be served ends the agent: what it set up so far (the sandboxes'
  // bind mount, say) is undone first.
  const server = await listenOnSocket({
    socketPath,
    group: options.transport.group,
    onConnection: (socket, caller) => {
      agent.attach(socket, socket, caller, "socket");
    },
    onRefused: (reason) => log.warn("connection refused", { reason }),
    onError: (error) => log.error("socket server error", { error: error.message }),
  }).catch(async (err: unknown) => {
    await cleanUp();
    throw err;
  });
  cleanups.push(() => server.close());
  const info: AgentInfo = { pid: process.pid, version: AGENT_VERSION, socket: socketPath, startedAt: new Date().toISOString() };
  fs.writeFileSync(files.agentInfo, JSON.stringify(info, null, 2) + "\n", { mode: 0o644 });
  cleanups.push(() => fs.rmSync(files.agentInfo, { force: true }));
  log.info("listening", { socket: socketPath, mode: options.transport.group ? "0660" : "0600", group: options.transport.group });
}
