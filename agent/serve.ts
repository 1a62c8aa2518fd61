/**
 * `paddock agent`: takes the state dir's lock, opens the logs, and serves the protocol on
 * stdio or on a Unix socket until told to stop.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Agent } from "./agent";
import { SystemChecker, readBootId } from "./check/system-check";
import { SandboxManager } from "./sandbox/manager";
import { SandboxStore } from "./sandbox/store";
import { ProcessTable } from "./process/process-table";
import { cgroupScope, openCgroups } from "./runtime/cgroup";
import { makeChangesets } from "./changeset/changesets";
import { killAllProbes } from "./check/run-probe";
import { bindOntoItself } from "./changeset/overlay";
import { HumanSink, JsonFileSink, LevelFilterSink, Logger, type LogLevel } from "./log/logger";
import { acquireStateLock } from "./state/lock";
import { stateFiles } from "./state/paths";
import { vmPoolDir } from "./state/sandbox-layout";
import type { AgentInfo } from "../protocol/discovery";
import { prepareStateDir } from "./state/state-dir";
import { listenOnSocket } from "./server/socket-server";
import { AGENT_VERSION } from "./version";
import { Images } from "./image/images";
import { Vms } from "./runtime/vm/vms";
import { GuestImages } from "./guest/guest-image";
import { makeRuntimes, type Runtimes } from "./runtimes";
import { chooseChangeset, overridesFromEnv } from "./runtime/readiness";

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


export async function serve(requested: ServeOptions): Promise<void> {
  prepareStateDir(requested.stateDir);
  // One spelling of the state dir everywhere (mount points are compared as strings).
  const options = { ...requested, stateDir: fs.realpathSync(requested.stateDir) };
  const files = stateFiles(options.stateDir);
  const lock = acquireStateLock(files.lock, options.stateDir);
  const fileSink = new JsonFileSink(files.log);
  const stderrSink = options.stderrLevel ? new LevelFilterSink(new HumanSink(), options.stderrLevel) : new HumanSink();
  const log = new Logger([fileSink, stderrSink], options.logLevel, {});
  const checker = new SystemChecker({ scratchRoot: files.tmp, cacheFile: files.checkCache, nativeDir: options.nativeDir, readiness: (checks) => runtimes.readiness(checks) });

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
  // Every choice the overrides may force, decided once (runtime/readiness.ts).
  const overrides = overridesFromEnv(process.env, options.ociRuntime);
  const changeset = chooseChangeset(checker.cachedChecks(), uid === 0, overrides);
  log.info("changesets", { using: changeset, ...(overrides.changeset === changeset ? { forcedBy: "PADDOCK_CHANGESET" } : {}) });
  if (overrides.changeset !== undefined && overrides.changeset !== changeset) log.warn("PADDOCK_CHANGESET is not fuse-overlayfs, the one changeset it can force: ignored", { value: overrides.changeset });
  const changesets = makeChangesets(changeset, enterHelper);
  const vms = new Vms(new GuestImages(files.cache, path.join(options.nativeDir, "guest-agent")), enterHelper, vmPoolDir(files.sandboxes), log);
  cleanups.push(() => vms.stopAll());
  const images: Images = new Images(files.images, (progress) => agent.broadcastToAll("image/progress", progress), {
    usersOf: (digest: string): string[] => sandboxes.imageUsers(digest),
    layersInUse: (): Set<string> => sandboxes.layersInUse(),
  });
  const runtimes: Runtimes = makeRuntimes({
    root: uid === 0,
    overrides,
    checks: (names) => checker.some(names, log),
    changesets,
    images,
    vms,
    stateDir: options.stateDir,
    nativeDir: options.nativeDir,
    log,
  });
  const sandboxes: SandboxManager = new SandboxManager({
    store: new SandboxStore(files.sandboxes),
    stateDir: options.stateDir,
    bootId: readBootId(),
    cgroups,
    processes,
    log,
    changesets,
    runtimes,
    broadcast: (ownerUid, method, params, whenBehind) => agent.broadcast(ownerUid, method, params, whenBehind),
  });
  const agent: Agent = new Agent({
    stateDir: options.stateDir,
    log,
    checker,
    sandboxes,
    review: sandboxes.review,
    processes,
    images,
    vmPool: () => vms.poolStats(),
    runtimes: runtimes.supported(),
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
