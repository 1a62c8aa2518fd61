/**
 * The review methods of sandboxes: list, diff and read what a sandbox changed, write into it,
 * approve into the workspace, reject, undo; and what the upper directory's watcher sees (bases
 * captured, clients told). Each works on one sandbox, in that sandbox's queue (and its
 * workspace's, where it writes there), with the owner's rights.
 */
import * as fs from "node:fs";
import { PaddockError } from "../../protocol/errors";
import type { AgentNotificationMethod, AgentNotifications, ApproveResult, Change, DiffResult, ReadFileResult, RejectResult, Undoable, UndoOffer, UndoResult } from "../../protocol/methods";
import { listChanges } from "../changeset/changes";
import type { Changesets } from "../changeset/changesets";
import type { Logger } from "../log/logger";
import type { Caller } from "../session";
import { markAgainstBase, readBase } from "../review/against-base";
import type { ApproveRequest } from "../review/approve";
import { BaseStore } from "../review/bases";
import { shownUndoOffer } from "../review/client-paths";
import { changedAfter, changedSince } from "../review/conflicts";
import { readEntry } from "../review/entries";
import { recoverJournal } from "../review/journal";
import { diffChanges, readSandboxFile } from "../review/read";
import { writeSandboxFile, type RejectRequest } from "../review/reject";
import { approveListed, rejectListed, undoList, undoRequested } from "../review/requests";
import { openWorkspaceTree, withTrees, withTreesAsync, type ReviewTarget } from "../review/target";
import { UndoRecorder } from "../review/undo-record";
import { BeneathError, parentOf, type Beneath } from "../sys/beneath";
import type { UserRights } from "../sys/credentials";
import { Pacer } from "../sys/pacer";
import { ownerIds } from "./owner";
import type { SandboxRecord, SandboxStore } from "./store";
import { openWorkspace } from "./workspace";

/** More paths than this in one sandbox/didChange are sent as [""]: clients list again. */
const MAX_CHANGE_PATHS = 1000;

/** What the review methods ask of the sandbox manager: its records and its queues. */
export interface SandboxAccess {
  /** The caller's sandbox (another user's is missing, not forbidden). */
  find(caller: Caller, id: string): SandboxRecord;
  /** The sandbox's record now, if it exists. */
  current(id: string): SandboxRecord | undefined;
  /** Refuses a record deleted while the work waited in its queue. */
  stillThere(record: SandboxRecord): void;
  /** Runs `work` after everything queued under `key` (a sandbox's id, or "workspace ID"). */
  serialized<T>(key: string, work: () => Promise<T>): Promise<T>;
  /** The sandboxes of a workspace folder. */
  ofWorkspace(workspaceId: string): SandboxRecord[];
}

export interface ReviewOptions {
  store: SandboxStore;
  stateDir: string;
  log: Logger;
  changesets: Changesets;
  broadcast: <M extends AgentNotificationMethod>(ownerUid: number, method: M, params: AgentNotifications[M], whenBehind?: AgentNotifications[M]) => void;
}

export class SandboxReview {
  constructor(
    private readonly sandboxes: SandboxAccess,
    private readonly options: ReviewOptions,
  ) {}

  /** What the sandbox changed, from its upper directory (running or stopped alike); listed in slices, so others are served meanwhile. */
  async changes(caller: Caller, id: string): Promise<Change[]> {
    const record = this.sandboxes.find(caller, id);
    const paths = this.options.store.paths(record.id);
    // The workspace must still be the folder the sandbox was made from, and within the owner's reach.
    const ws = openWorkspaceTree({ ...record, rights: this.reviewRights(record) });
    try {
      const changes = await listChanges(paths.upper, record.workspace, this.options.changesets.upperFormat, this.reviewRights(record));
      markAgainstBase(changes, ws, new BaseStore(paths.bases));
      return changes;
    } finally {
      ws.close();
    }
  }

  async diff(caller: Caller, id: string, paths: string[] | undefined, context: number | undefined): Promise<DiffResult> {
    const changes = await reviewing(() => this.changes(caller, id));
    const target = this.reviewTarget(this.sandboxes.find(caller, id));
    return reviewing(() => withTrees(target, (ws, upper) => diffChanges(upper, ws, target.bases, changes, paths, context ?? 3)));
  }

  readFile(caller: Caller, id: string, rel: string, base = false): ReadFileResult {
    const record = this.sandboxes.find(caller, id);
    const target = this.reviewTarget(record);
    if (base) return readBase(target.bases, rel);
    return reviewing(() => withTrees(target, (ws, upper) => readSandboxFile(this.options.changesets.upperFormat, upper, ws, rel)));
  }

  async writeFile(caller: Caller, id: string, rel: string, base64: string): Promise<null> {
    const record = this.sandboxes.find(caller, id);
    const bytes = Buffer.from(base64, "base64");
    return this.sandboxes.serialized(id, () =>
      this.withView(record, (view) => {
        reviewing(() => writeSandboxFile(view, rel, bytes, this.reviewRights(record)));
        return null;
      }),
    );
  }

  async approve(caller: Caller, id: string, request: ApproveRequest): Promise<ApproveResult> {
    const record = this.sandboxes.find(caller, id);
    // One approve at a time per sandbox, and per workspace (two sandboxes of one folder).
    return this.sandboxes.serialized(id, () =>
      this.sandboxes.serialized(`workspace ${record.workspaceId}`, async () => {
        this.sandboxes.stillThere(record);
        // An interrupted approve of this workspace, by this sandbox or another, finishes first.
        for (const other of this.sandboxes.ofWorkspace(record.workspaceId)) await this.recoverApprove(other);
        const changes = await reviewing(() => this.changes(caller, id));
        return this.recordingUndo(record, "approve", async (undo) => {
          const rebased = new Map<string, Buffer>();
          const result = await reviewing(() => approveListed({ ...this.reviewTarget(record), undo, rebased }, changes, request));
          if (result.merged.length > 0) await this.takeMerged(caller, record, result, undo, rebased);
          this.options.log.info("approved", { sandboxId: id, applied: result.applied.length, merged: result.merged.length, conflicts: result.conflicts.length, skipped: result.skipped.length });
          return { result, done: result.applied };
        });
      }),
    );
  }

  /** Runs an approve or reject that keeps what it changes, and says in its result how to undo it. */
  private async recordingUndo<R extends UndoOffer>(record: SandboxRecord, kind: "approve" | "reject", work: (undo: UndoRecorder) => Promise<{ result: R; done: string[] }>): Promise<R> {
    const undo = new UndoRecorder(this.options.store.paths(record.id).undo, kind);
    let outcome: { result: R; done: string[] };
    try {
      outcome = await work(undo);
    } catch (err) {
      undo.discard();
      throw err;
    }
    try {
      return { ...outcome.result, ...shownUndoOffer(undo.commit(outcome.done)) };
    } catch (err) {
      // The operation is done; only its undo is lost (a full disk, say).
      undo.discard();
      this.options.log.warn("cannot keep what an approve or reject changed for undo", { sandboxId: record.id, error: (err as Error).message });
      return { ...outcome.result, undoUnavailable: `what it changed could not be kept: ${(err as Error).message}` };
    }
  }

  /** Undoes an approve or reject of the sandbox (the latest, without `undoId`). */
  async undo(caller: Caller, id: string, undoId: string | undefined): Promise<UndoResult> {
    const record = this.sandboxes.find(caller, id);
    // It writes where approve does (the workspace) and where reject does (the sandbox).
    return this.sandboxes.serialized(id, () =>
      this.sandboxes.serialized(`workspace ${record.workspaceId}`, async () => {
        this.sandboxes.stillThere(record);
        for (const other of this.sandboxes.ofWorkspace(record.workspaceId)) await this.recoverApprove(other);
        const result = await reviewing(() => undoRequested(this.reviewTarget(record), this.options.store.paths(id).undo, undoId, (work) => this.withView(record, work)));
        this.options.log.info("undid", { sandboxId: id, undo: result.undone, kind: result.kind, restored: result.restored.length, skipped: result.skipped.length });
        return result;
      }),
    );
  }

  undoList(caller: Caller, id: string): { undo: Undoable[] } {
    const record = this.sandboxes.find(caller, id);
    return { undo: undoList(this.options.store.paths(record.id).undo) };
  }

  /**
   * A merged file is in the workspace with both sides' edits; the sandbox gets it too (its own
   * copy goes, as on reject), or its older copy would read as undoing the workspace's edit.
   * After an approve of some hunks, the sandbox's copy keeps its other changes (`rebased`).
   */
  private async takeMerged(caller: Caller, record: SandboxRecord, result: ApproveResult, undo: UndoRecorder, rebased: Map<string, Buffer>): Promise<void> {
    const changes = await reviewing(() => this.changes(caller, record.id));
    const taken = await this.withView(record, (view) => reviewing(() => rejectListed({ ...this.reviewTarget(record), undo, rebased }, view, changes, { paths: result.merged })));
    for (const s of taken.skipped) result.skipped.push({ path: s.path, reason: `merged into the workspace, but the sandbox keeps its own copy: ${s.reason}` });
  }

  async reject(caller: Caller, id: string, request: RejectRequest): Promise<RejectResult> {
    const record = this.sandboxes.find(caller, id);
    return this.sandboxes.serialized(id, async () => {
      const changes = await reviewing(() => this.changes(caller, id));
      return this.withView(record, (view) =>
        this.recordingUndo(record, "reject", async (undo) => {
          const result = await reviewing(() => rejectListed({ ...this.reviewTarget(record), undo }, view, changes, request));
          this.options.log.info("rejected", { sandboxId: id, rejected: result.rejected.length, skipped: result.skipped.length });
          return { result, done: result.rejected };
        }),
      );
    });
  }

  /**
   * Whose rights the review methods read and write with: the sandbox owner's (root's own
   * sandboxes, and a rootless agent, keep the agent's). The sandbox's contents are the
   * owner's work, whoever asks to approve them.
   */
  private reviewRights(record: SandboxRecord): UserRights | undefined {
    return record.ownerUid === 0 ? undefined : ownerIds(record.ownerUid);
  }

  private reviewTarget(record: SandboxRecord): ReviewTarget {
    const paths = this.options.store.paths(record.id);
    const rights = this.reviewRights(record);
    return {
      sandboxId: record.id,
      workspace: record.workspace,
      workspaceId: record.workspaceId,
      upper: paths.upper,
      upperFormat: this.options.changesets.upperFormat,
      journal: paths.journal,
      bases: new BaseStore(paths.bases),
      rights,
      chown: process.getuid?.() === 0 && rights === undefined,
      log: this.options.log,
    };
  }

  /** Finishes or rolls back an approve that a crash interrupted. */
  async recoverApprove(record: SandboxRecord): Promise<void> {
    const paths = this.options.store.paths(record.id);
    if (!fs.existsSync(paths.journal)) return;
    const ws = openWorkspaceTree({ ...record, rights: this.reviewRights(record) });
    try {
      const recovered = await recoverJournal(ws, paths.journal, new BaseStore(paths.bases));
      if (recovered) this.options.log.warn(recovered.state === "committed" ? "finished an interrupted approve" : "rolled back an interrupted approve", { sandboxId: record.id, failures: recovered.failures });
    } finally {
      ws.close();
    }
  }

  /**
   * Runs `work` against the sandbox's merged view; a stopped sandbox is mounted just for it.
   * Runs in the sandbox's queue, so that nothing starts or stops it meanwhile.
   */
  private async withView<T>(record: SandboxRecord, work: (view: string) => T | Promise<T>): Promise<T> {
    this.sandboxes.stillThere(record);
    const paths = this.options.store.paths(record.id);
    const changesets = this.options.changesets;
    if (changesets.isMounted(record.id, paths)) return await work(changesets.viewPath(record.id, paths));
    const workspace = openWorkspace(record.workspace, { uid: record.ownerUid }, this.options.stateDir);
    try {
      if (workspace.id !== record.workspaceId) throw new PaddockError("E_INVALID_WORKSPACE", `${record.workspace} is no longer the directory this sandbox was made from`, "its changes are kept in the sandbox");
      await changesets.mount(record.id, paths, workspace);
    } finally {
      workspace.close();
    }
    try {
      // Awaited here: the view stays mounted until the work is done.
      return await work(changesets.viewPath(record.id, paths));
    } finally {
      await changesets.unmount(record.id, paths);
    }
  }

  /**
   * The watcher saw the upper directory change: capture bases, tell the clients. Runs in the
   * sandbox's queue, so that the bases an approve sets are never overwritten by older ones.
   */
  async upperChanged(id: string, paths: string[]): Promise<void> {
    const record = this.sandboxes.current(id);
    if (!record || record.state !== "running") return;
    const reported: string[] = [];
    // Thousands of paths at once (a reject, a checkout) are taken in slices: others are served between.
    const pacer = new Pacer();
    try {
      const target = this.reviewTarget(record);
      await withTreesAsync(target, async (ws, upper) => {
        for (const rel of paths) {
          await pacer.step();
          try {
            // A name seen through a symlink swapped in by the sandbox is not the sandbox's: dropped.
            if (rel !== "") upper.lstat(parentOf(rel));
            reported.push(rel);
            if (rel !== "" && !target.bases.has(rel)) captureBase(target, ws, upper, rel);
          } catch (err) {
            if (!(err instanceof BeneathError)) throw err;
          }
        }
        target.bases.save();
      });
    } catch (err) {
      this.options.log.debug("cannot capture bases", { sandboxId: id, error: (err as Error).message });
    }
    // A flood (a formatter, a checkout) is one "list everything again", and so is all that a
    // client that is behind missed.
    if (reported.length > 0) this.options.broadcast(record.ownerUid, "sandbox/didChange", { id, paths: reported.length > MAX_CHANGE_PATHS ? [""] : reported }, { id, paths: [""] });
  }
}

/** A failed file operation as the client hears it: a race with the sandbox, or plain I/O trouble. */
export function reviewError(err: BeneathError): PaddockError {
  if (["ELOOP", "EXDEV", "ENOENT", "ENOTDIR", "not a regular file"].includes(err.code)) {
    return new PaddockError("E_UNSAFE_PATH", `refused: ${err.message}`, "something in the sandbox changed while it was read (a symlink or a folder swapped in); list its changes again");
  }
  if (err.code === "EACCES" || err.code === "EPERM") {
    return new PaddockError("E_PERMISSION_DENIED", `${err.message}`, "Paddock reads and writes for you with your own rights, as a shell of yours would: ask the file's owner, or change it with sudo yourself");
  }
  return new PaddockError("E_IO", `cannot read or write ${err.where}: ${err.code}`, err.code === "ENOSPC" ? "the disk is full" : "check the file's permissions and the disk");
}

/**
 * Records the workspace's version of `rel` as its base, if it cannot have changed since the
 * sandbox changed it: the entry (or, for nothing there, its folder) is not newer than the
 * sandbox's change.
 */
function captureBase(target: Pick<ReviewTarget, "bases" | "upperFormat">, ws: Beneath, upper: Beneath, rel: string): void {
  const since = changedSince(target.upperFormat, upper, rel);
  if (since === undefined) return;
  const workspace = readEntry(ws, rel);
  const witness = workspace ?? readEntry(ws, parentOf(rel));
  if (witness && !changedAfter(witness, since)) target.bases.set(rel, ws, workspace);
}

/** A symlink swapped in by the sandbox while the agent works is a refusal, not a crash. */
function reviewing<T>(work: () => T): T {
  const refuse = (err: unknown): never => {
    throw err instanceof BeneathError ? reviewError(err) : err;
  };
  try {
    const result = work();
    return (result instanceof Promise ? result.catch(refuse) : result) as T;
  } catch (err) {
    return refuse(err);
  }
}
