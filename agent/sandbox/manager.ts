/**
 * Sandboxes: create, list, stop, start, delete, run commands in them, expire them, and after
 * a crash or a reboot put everything back in order. The one place that changes a sandbox's
 * state; each change is recorded durably before the resources it describes are made or
 * removed. What differs between runtimes is asked of the sandbox's runtime; the review
 * methods are in sandbox-review.ts.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import type { AgentNotificationMethod, AgentNotifications, ExecResult, GcResult, Sandbox, SandboxState } from "../../protocol/methods";
import { unmountAllBelow } from "../changeset/overlay";
import type { Caller, Session } from "../session";
import type { Logger } from "../log/logger";
import { mayAccess, ownerIds } from "./owner";
import { SandboxReview } from "./sandbox-review";
import { SandboxStore, type SandboxRecord } from "./store";
import { shownSandbox } from "../state/sandbox-record";
import { openWorkspace, type OpenWorkspace } from "./workspace";
import type { Changesets } from "../changeset/changesets";
import type { Cgroups, SandboxCgroup } from "../runtime/cgroup";
import type { LaunchSpec } from "../runtime/launch-spec";
import type { Runtimes } from "../runtimes";
import type { CreateRequest, SandboxRuntime } from "../runtime/runtime";
import { runToCompletion, OUTPUT_CAP_BYTES } from "../process/run-to-completion";
import type { ProcessTable } from "../process/process-table";
import { UpperWatcher } from "../changeset/upper-watcher";

export type { CreateRequest } from "../runtime/runtime";

export interface CommandRequest {
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
}

export interface ManagerOptions {
  store: SandboxStore;
  stateDir: string;
  bootId: string;
  cgroups: Cgroups | undefined;
  processes: ProcessTable;
  log: Logger;
  changesets: Changesets;
  /** What sandboxes run on: each record's runtime does what differs between them. */
  runtimes: Runtimes;
  /** Tells every client allowed to see a sandbox of `ownerUid` about a change (a client that is behind gets only the latest, as `whenBehind`). */
  broadcast: <M extends AgentNotificationMethod>(ownerUid: number, method: M, params: AgentNotifications[M], whenBehind?: AgentNotifications[M]) => void;
}

const TTL_SWEEP_MS = 15_000;

export class SandboxManager {
  private readonly records = new Map<string, SandboxRecord>();
  /** Lifecycle changes of one sandbox run one at a time. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private ttlTimer: NodeJS.Timeout | undefined;
  /** Sandboxes being started again in the background after an agent restart (booting VMs). */
  private readonly booting = new Map<string, Promise<void>>();
  /** Sandboxes whose processes are being ended: nothing new may start in them meanwhile. */
  private readonly stopping = new Set<string>();
  /** Each running `sandbox/exec`, per sandbox: how to kill it and when it is over. */
  private readonly execs = new Map<string, Set<{ kill: () => void; done: Promise<void> }>>();

  /** Live updates and base capture, while a sandbox is mounted. */
  private readonly watcher: UpperWatcher;
  /** The review methods: they work on these records, in these queues. */
  readonly review: SandboxReview;

  constructor(private readonly options: ManagerOptions) {
    this.review = new SandboxReview(
      {
        find: (caller, id) => this.find(caller, id),
        current: (id) => this.records.get(id),
        stillThere: (record) => this.stillThere(record),
        serialized: (key, work) => this.serialized(key, work),
        ofWorkspace: (workspaceId) => [...this.records.values()].filter((r) => r.workspaceId === workspaceId),
      },
      options,
    );
    this.watcher = new UpperWatcher(options.changesets.upperFormat, (id, paths) => void this.serialized(id, () => this.review.upperChanged(id, paths)));
  }

  // ---- queries ---------------------------------------------------------------------------

  list(caller: Caller, workspace?: string): Sandbox[] {
    const wanted = workspace === undefined ? undefined : path.resolve(workspace);
    return [...this.records.values()]
      .filter((r) => mayAccess(caller, r) && (wanted === undefined || r.workspace === wanted || r.workspace === safeRealpath(wanted)))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .map(shownSandbox);
  }

  get(caller: Caller, id: string): Sandbox {
    return shownSandbox(this.find(caller, id));
  }

  /** A sandbox's console log, for a runtime that has one (a VM's). */
  console(caller: Caller, id: string): string {
    const record = this.find(caller, id);
    const runtime = this.runtime(record);
    if (!runtime.console) throw new PaddockError("E_INVALID_STATE", `sandbox ${id} has no console`, "only VM sandboxes have one");
    return runtime.console(record, this.options.store.paths(id));
  }

  /** Sandboxes whose containers are made from the image of this digest. */
  imageUsers(digest: string): string[] {
    return [...this.records.values()].filter((r) => this.runtime(r).imageOf(r)?.digest === digest).map((r) => r.id);
  }

  /** Layers that containers of sandboxes stand on (kept in the image store whatever happens to their image). */
  layersInUse(): Set<string> {
    return new Set([...this.records.values()].flatMap((r) => this.runtime(r).imageOf(r)?.layers ?? []));
  }

  // ---- lifecycle -------------------------------------------------------------------------

  async create(caller: Caller, request: CreateRequest): Promise<Sandbox> {
    if (request.idempotencyKey !== undefined) {
      const existing = [...this.records.values()].find((r) => r.ownerUid === caller.uid && r.idempotencyKey === request.idempotencyKey);
      if (existing) {
        if (existing.workspace !== safeRealpath(request.workspace)) {
          throw new PaddockError("E_IDEMPOTENCY_CONFLICT", `idempotency key ${JSON.stringify(request.idempotencyKey)} already names sandbox ${existing.id} of ${existing.workspace}`, "use a new key for a different workspace");
        }
        return this.serialized(existing.id, async () => shownSandbox(this.find(caller, existing.id)));
      }
    }
    const runtime = this.options.runtimes.get(request.runtime ?? "process");
    const { limits, unavailable } = runtime.validate(request, this.options.cgroups?.controllers);
    // Before anything is recorded: no runtime or no image is a plain refusal.
    const part = await runtime.prepare(request);
    const workspace = openWorkspace(request.workspace, caller, this.options.stateDir);
    const id = `sbx-${randomBytes(6).toString("hex")}`;
    const now = new Date();
    const record: SandboxRecord = {
      id,
      name: request.name ?? `${path.basename(workspace.path)}-${id.slice(4, 8)}`,
      workspace: workspace.path,
      ...part,
      state: "creating",
      network: request.network ?? "none",
      limits,
      ...(unavailable.length > 0 ? { limitsUnavailable: unavailable } : {}),
      createdAt: now.toISOString(),
      ...(request.ttlSeconds ? { expiresAt: new Date(now.getTime() + request.ttlSeconds * 1000).toISOString() } : {}),
      ownerUid: caller.uid,
      bootId: this.options.bootId,
      workspaceId: workspace.id,
      ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
    };
    const log = this.options.log.child({ sandboxId: id });
    this.records.set(id, record);
    return this.serialized(id, async () => {
      try {
        this.options.store.save(record); // before anything is made
        await this.makeResources(record, workspace);
        await this.watcher.watch(id, this.options.store.paths(id).upper);
        this.setState(record, "running");
        log.info("sandbox created", { workspace: record.workspace, name: record.name, network: record.network, limits });
        return shownSandbox(record);
      } catch (err) {
        log.warn("sandbox creation failed; cleaning up", { error: (err as Error).message });
        // If even the cleanup fails (a full disk, say), the next start's reconcile finds what is left.
        await this.destroy(record).catch(() => this.records.delete(id));
        throw err;
      } finally {
        workspace.close();
      }
    });
  }

  async stop(caller: Caller, id: string): Promise<Sandbox> {
    const record = this.find(caller, id);
    return this.serialized(id, async () => {
      this.stillThere(record);
      if (record.state === "stopped") return shownSandbox(record);
      await this.stopRecord(record);
      this.options.log.info("sandbox stopped", { sandboxId: id });
      return shownSandbox(record);
    });
  }

  private async stopRecord(record: SandboxRecord): Promise<void> {
    this.stopping.add(record.id);
    try {
      await this.killProcesses(record);
      await this.watcher.unwatch(record.id);
      await this.stopRuntime(record);
      await this.options.changesets.unmount(record.id, this.options.store.paths(record.id));
      this.setState(record, "stopped");
    } finally {
      this.stopping.delete(record.id);
    }
  }

  async start(caller: Caller, id: string): Promise<Sandbox> {
    const record = this.find(caller, id);
    return this.serialized(id, async () => {
      this.stillThere(record);
      if (record.state === "running") return shownSandbox(record);
      await this.makeResources(record);
      await this.watcher.watch(id, this.options.store.paths(id).upper);
      this.setState(record, "running");
      this.options.log.info("sandbox started", { sandboxId: id });
      return shownSandbox(record);
    });
  }

  /** Deleting a sandbox that is already gone is not an error. */
  async delete(caller: Caller, id: string): Promise<{ id: string; deleted: boolean }> {
    const record = this.records.get(id);
    if (!record || !mayAccess(caller, record)) return { id, deleted: false };
    return this.serialized(id, async () => {
      if (!this.records.has(id)) return { id, deleted: false };
      await this.destroy(record);
      return { id, deleted: true };
    });
  }

  // ---- commands --------------------------------------------------------------------------

  async exec(caller: Caller, id: string, request: CommandRequest & { stdin?: string; timeoutMs?: number }, session?: Session): Promise<ExecResult> {
    this.find(caller, id);
    await this.bootedFirst(id);
    const record = this.runnable(caller, id);
    const cgroup = this.cgroupOf(record);
    const before = cgroup?.counters();
    let kill = () => undefined as void;
    const options = { stdin: request.stdin, timeoutMs: request.timeoutMs, onStart: (killer: () => void) => (kill = killer) };
    const runtime = this.runtime(record);
    const running = runToCompletion(runtime.launch(record, this.launchSpec(record, request, false)), options);
    // Tracked from the moment it starts, so that stop and delete end it and wait for it.
    const execs = this.execs.get(id) ?? new Set();
    const entry = { kill: () => kill(), done: running.then(() => undefined, () => undefined) };
    this.execs.set(id, execs.add(entry));
    // A client that goes away takes its command with it.
    const stopListening = session?.onClose(() => kill());
    const done = await running.finally(() => {
      execs.delete(entry);
      stopListening?.();
    });
    await runtime.checkExec(record, done, done.timedOut || this.stopping.has(id) || record.state !== "running");
    const after = cgroup?.counters();
    const limitsHit: ExecResult["limitsHit"] = [];
    if (before && after && after.oomKills > before.oomKills) limitsHit.push("memory");
    if (before && after && after.pidsMaxHits > before.pidsMaxHits) limitsHit.push("pids");
    if (limitsHit.length > 0) this.options.log.warn("sandbox hit its limits", { sandboxId: id, limitsHit });
    return { ...done, outputCap: OUTPUT_CAP_BYTES, limitsHit };
  }

  async spawn(caller: Caller, id: string, request: CommandRequest & { pty?: { cols: number; rows: number } }, session: Session): Promise<number> {
    this.find(caller, id);
    await this.bootedFirst(id);
    const nodePty = await this.options.processes.prepare(request.pty !== undefined);
    // From the check to the start nothing awaits, so a stop cannot slip in between.
    const record = this.runnable(caller, id);
    const spec = { ...this.launchSpec(record, request, request.pty !== undefined), ...(request.pty ? { ptySize: request.pty } : {}) };
    const launch = this.runtime(record).launch(record, spec);
    return this.options.processes.spawn({ sandboxId: id, ownerUid: record.ownerUid, argv: request.argv, launch, pty: request.pty, session }, nodePty);
  }

  // ---- expiry, gc, recovery --------------------------------------------------------------

  startTtlSweeper(): void {
    this.ttlTimer = setInterval(() => void this.expire(), TTL_SWEEP_MS);
    this.ttlTimer.unref();
  }

  stopTtlSweeper(): void {
    clearInterval(this.ttlTimer);
  }

  /** At shutdown: no more live updates. */
  async closeWatchers(): Promise<void> {
    await this.watcher.closeAll();
  }

  /** Deletes expired sandboxes; returns them. */
  async expire(now = Date.now()): Promise<SandboxRecord[]> {
    const expired = [...this.records.values()].filter((r) => r.expiresAt !== undefined && Date.parse(r.expiresAt) <= now && r.state !== "deleting");
    for (const record of expired) {
      this.options.log.info("sandbox expired", { sandboxId: record.id, expiresAt: record.expiresAt });
      await this.serialized(record.id, () => this.destroy(record)).catch((err: Error) =>
        this.options.log.error("cannot delete expired sandbox", { sandboxId: record.id, error: err.message }),
      );
    }
    return expired;
  }

  /** Expired sandboxes go (the caller hears only of their own); orphans are cleaned for root only. */
  async gc(caller: Caller): Promise<GcResult> {
    const deleted = (await this.expire()).filter((r) => mayAccess(caller, r)).map((r) => r.id);
    const cleaned = caller.uid === 0 ? await this.cleanOrphans() : [];
    return { deleted, cleaned };
  }

  /**
   * Startup: loads every record and brings the machine in line with it: re-adopts healthy
   * sandboxes, re-mounts after a reboot, finishes interrupted creations and deletions, and
   * removes whatever no record owns.
   */
  async reconcile(): Promise<void> {
    const log = this.options.log;
    const { records, orphans, unreadable } = this.options.store.loadAll();
    for (const id of unreadable) {
      // Its changes may be precious: never removed on a guess.
      log.error("cannot read this sandbox's record; leaving it alone", { sandboxId: id });
    }
    for (const id of orphans) {
      log.warn("removing a sandbox directory without a record", { sandboxId: id });
      await this.removeLeftovers(id).catch((err: Error) => log.error("cannot remove it", { sandboxId: id, error: err.message }));
    }
    for (const record of records) {
      this.records.set(record.id, record);
      // One sandbox that cannot be put in order must not keep the agent from starting.
      await this.reconcileOne(record).catch((err: Error) =>
        log.error("cannot reconcile sandbox; left as it is", { sandboxId: record.id, error: err.message }),
      );
    }
    const cleaned = await this.cleanOrphans();
    if (cleaned.length > 0) log.info("cleaned orphaned resources", { cleaned });
    await this.expire();
  }

  // ---- internals -------------------------------------------------------------------------

  private async reconcileOne(record: SandboxRecord): Promise<void> {
    const rlog = this.options.log.child({ sandboxId: record.id });
    if (record.state === "creating" || record.state === "deleting") {
      rlog.info(`finishing an interrupted ${record.state === "creating" ? "creation" : "deletion"}`);
      await this.destroy(record).catch((err: Error) => rlog.error("cleanup failed", { error: err.message }));
      return;
    }
    // Whatever ran in it died with the previous agent (bwrap --die-with-parent); make sure.
    await this.cgroupOf(record)?.killAll().catch(() => undefined);
    try {
      await this.review.recoverApprove(record);
    } catch (err) {
      rlog.error("cannot recover an interrupted approve; its journal is kept", { error: (err as Error).message });
    }
    const paths = this.options.store.paths(record.id);
    if (record.state === "stopped") {
      await this.runtime(record).stop(record, paths);
      await this.options.changesets.unmount(record.id, paths);
      rlog.info("adopted stopped sandbox");
      return;
    }
    const mounted = this.options.changesets.isMounted(record.id, paths);
    const rebooted = record.bootId !== this.options.bootId;
    // A container's processes and a VM died with the cgroup above: they are made again, below.
    if (mounted && !rebooted && this.runtime(record).survivesAgentRestart) {
      if (this.options.cgroups && !this.cgroupOf(record)) this.options.cgroups.create(record.id, this.runtime(record).cgroupLimits(record));
      void this.watcher.watch(record.id, paths.upper);
      rlog.info("adopted running sandbox");
      return;
    }
    const remount = async () => {
      try {
        await this.makeResources(record);
        void this.watcher.watch(record.id, paths.upper);
        record.bootId = this.options.bootId;
        this.options.store.save(record);
        rlog.info(rebooted ? "re-mounted after a reboot" : "re-mounted a sandbox whose mount was gone");
      } catch (err) {
        this.setState(record, "stopped");
        rlog.warn("cannot re-mount; the sandbox is stopped, its changes kept", { error: (err as Error).message });
      }
    };
    if (!this.runtime(record).startsSlowly) return remount();
    // A boot takes seconds (a minute under TCG): it goes on once the agent serves; commands wait for it.
    const booting = this.serialized(record.id, remount).finally(() => this.booting.delete(record.id));
    this.booting.set(record.id, booting);
  }

  /** A VM sandbox whose boot the restart left running in the background: done (or failed) first. */
  private async bootedFirst(id: string): Promise<void> {
    await this.booting.get(id);
  }

  private find(caller: Caller, id: string): SandboxRecord {
    const record = this.records.get(id);
    // Another user's sandbox is reported as missing, not as forbidden: its existence is not theirs to know.
    if (!record || !mayAccess(caller, record) || record.state === "deleting") {
      throw new PaddockError("E_NOT_FOUND", `no sandbox ${id}`, "sandbox/list shows your sandboxes");
    }
    return record;
  }

  /** Queued work runs after whatever came before it: a sandbox deleted meanwhile is gone. */
  private stillThere(record: SandboxRecord): void {
    if (this.records.get(record.id) !== record || record.state === "deleting") {
      throw new PaddockError("E_NOT_FOUND", `sandbox ${record.id} was deleted`, "sandbox/list shows your sandboxes");
    }
  }

  private runnable(caller: Caller, id: string): SandboxRecord {
    const record = this.find(caller, id);
    if (record.state !== "running" || this.stopping.has(id)) {
      throw new PaddockError("E_INVALID_STATE", `sandbox ${id} is ${this.stopping.has(id) ? "stopping" : record.state}`, record.state === "stopped" ? "start it first (sandbox/start)" : "wait until it is running");
    }
    return record;
  }

  private launchSpec(record: SandboxRecord, request: CommandRequest, pty: boolean): LaunchSpec {
    const cgroup = this.cgroupOf(record);
    const ids = ownerIds(record.ownerUid);
    return {
      sandboxId: record.id,
      merged: this.options.store.paths(record.id).merged,
      workspace: record.workspace,
      workspaceId: record.workspaceId,
      network: record.network,
      argv: request.argv,
      cwd: request.cwd,
      env: request.env,
      pty,
      uid: ids.uid,
      gid: ids.gid,
      cgroupProcs: cgroup?.procsFiles ?? [],
      tmpMiB: record.limits.tmpMiB,
    };
  }

  private cgroupOf(record: SandboxRecord): SandboxCgroup | undefined {
    return this.options.cgroups?.open(record.id);
  }

  /** Mounts the overlay and makes the cgroup; opens (and checks) the workspace unless given. */
  private async makeResources(record: SandboxRecord, opened?: OpenWorkspace): Promise<void> {
    const workspace = opened ?? openWorkspace(record.workspace, { uid: record.ownerUid }, this.options.stateDir);
    try {
      if (workspace.id !== record.workspaceId) {
        throw new PaddockError("E_INVALID_WORKSPACE", `${record.workspace} is no longer the directory this sandbox was made from`, "delete the sandbox; its changes are in its upper directory");
      }
      const paths = this.options.store.paths(record.id);
      for (const dir of [paths.upper, paths.work, paths.merged]) fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
      // The merged view's root takes the upper dir's owner and mode: make them the workspace's.
      const ws = fs.fstatSync(workspace.fd);
      if (fs.statSync(paths.upper).uid !== ws.uid) fs.chownSync(paths.upper, ws.uid, ws.gid);
      fs.chmodSync(paths.upper, ws.mode & 0o7777);
      await this.options.changesets.mount(record.id, paths, workspace);
      try {
        const runtime = this.runtime(record);
        const cgroup = this.options.cgroups?.create(record.id, runtime.cgroupLimits(record));
        await runtime.start(record, {
          paths,
          view: this.options.changesets.viewPath(record.id, paths),
          cgroupProcs: cgroup?.procsFiles ?? [],
          ...(this.options.cgroups ? { cgroupsPath: this.options.cgroups.pathOf(record.id) } : {}),
          owner: ownerIds(record.ownerUid),
          onProgress: (step) => this.options.broadcast(record.ownerUid, "sandbox/progress", { id: record.id, step }),
          // What it runs on ended by itself (QEMU killed by its owner, a guest that crashed): the sandbox is stopped, its changes kept.
          onEnded: (why) =>
            void this.serialized(record.id, async () => {
              if (this.records.get(record.id) !== record || record.state !== "running") return;
              this.options.log.warn("what the sandbox runs on ended by itself; the sandbox is stopped", { sandboxId: record.id, why });
              await this.stopRecord(record);
            }).catch((err: Error) => this.options.log.error("cannot stop a sandbox whose runtime ended", { sandboxId: record.id, error: err.message })),
        });
      } catch (err) {
        await this.options.changesets.unmount(record.id, paths);
        throw err;
      }
    } finally {
      if (!opened) workspace.close();
    }
  }

  /** Stops what a sandbox runs on (its VM, its container), if it has it. */
  private async stopRuntime(record: SandboxRecord): Promise<void> {
    await this.runtime(record).stop(record, this.options.store.paths(record.id));
  }

  /** Ends every process of a sandbox and waits until they are gone: only then may files be removed. */
  private async killProcesses(record: SandboxRecord): Promise<void> {
    await this.runtime(record).halt(record);
    const execs = [...(this.execs.get(record.id) ?? [])];
    for (const exec of execs) exec.kill();
    await Promise.all([this.options.processes.killSandbox(record.id), ...execs.map((e) => e.done)]);
    await this.cgroupOf(record)?.killAll();
  }

  /** Removes everything of a sandbox; the record goes last. Safe to repeat after a crash. */
  private async destroy(record: SandboxRecord): Promise<void> {
    this.setState(record, "deleting");
    await this.killProcesses(record);
    await this.watcher.unwatch(record.id);
    try {
      // An approve the sandbox's journal says was committed is finished before the journal goes,
      // in the workspace's queue: a sibling sandbox's approve may be recovering it too.
      await this.serialized(`workspace ${record.workspaceId}`, () => this.review.recoverApprove(record));
    } catch (err) {
      this.options.log.error("cannot finish an interrupted approve before deleting the sandbox", { sandboxId: record.id, error: (err as Error).message });
    }
    await this.stopRuntime(record);
    await this.cgroupOf(record)?.remove();
    await this.removeFolder(record.id);
    this.records.delete(record.id);
    this.runtime(record).deleted(record);
    this.options.log.info("sandbox deleted", { sandboxId: record.id });
    this.options.broadcast(record.ownerUid, "sandbox/didChangeState", { id: record.id, state: "deleted" });
  }

  /** A folder without a record: whatever any runtime may hold of it, then its mounts and itself. */
  private async removeLeftovers(id: string): Promise<void> {
    for (const runtime of this.options.runtimes.all()) await runtime.removeLeftovers(id, this.options.store.paths(id));
    await this.removeFolder(id);
  }

  /** A sandbox's view and folder, once what it ran on is stopped. */
  private async removeFolder(id: string): Promise<void> {
    await this.options.changesets.unmount(id, this.options.store.paths(id));
    this.options.store.removeAll(id);
  }

  /** Mounts and cgroups under Paddock's names that no record owns. */
  private async cleanOrphans(): Promise<string[]> {
    const cleaned: string[] = [];
    const attempt = async (what: string, work: () => Promise<unknown>) => {
      try {
        await work();
        cleaned.push(what);
      } catch (err) {
        this.options.log.error(`cannot clean the ${what}`, { error: (err as Error).message });
      }
    };
    for (const id of this.options.changesets.mountedIds(this.options.store.root)) {
      // Only what no record knows: a sandbox being created or started is not an orphan.
      if (!this.records.has(id)) {
        await attempt(`mount of ${id}`, async () => {
          await this.options.changesets.unmount(id, this.options.store.paths(id));
          // A container's root and a VM's share are mounts of their own below the sandbox's folder.
          unmountAllBelow(this.options.store.paths(id).dir);
        });
      }
    }
    for (const runtime of this.options.runtimes.all()) {
      for (const leftover of await runtime.orphans((id) => this.records.has(id), (id) => this.options.store.paths(id))) await attempt(leftover.what, leftover.remove);
    }
    for (const id of this.options.cgroups?.list() ?? []) {
      if (!this.records.has(id)) await attempt(`cgroup ${id}`, async () => this.options.cgroups?.open(id)?.remove());
    }
    return cleaned;
  }

  private runtime(record: SandboxRecord): SandboxRuntime {
    return this.options.runtimes.of(record);
  }

  private setState(record: SandboxRecord, state: SandboxState): void {
    record.state = state;
    this.options.store.save(record);
    this.options.broadcast(record.ownerUid, "sandbox/didChangeState", { id: record.id, state });
  }

  private serialized<T>(id: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(id) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.queues.set(id, settled);
    void settled.then(() => {
      if (this.queues.get(id) === settled) this.queues.delete(id);
    });
    return next;
  }
}


function safeRealpath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

