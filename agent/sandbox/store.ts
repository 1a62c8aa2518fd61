/**
 * Durable sandbox records: one directory per sandbox under STATE_DIR/sandboxes, holding its
 * record and its overlay directories. A record is written (temp file, fsync, rename, fsync of
 * the directory) before the resources it describes are made, so after a crash the agent
 * knows about everything that might exist.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import { fsyncDir, writeDurably } from "../state/durable";
import { RECORD_FILE, isAgentFolder, sandboxPaths, type SandboxPaths } from "../state/sandbox-layout";
import { isSandboxRecord, type SandboxRecord } from "../state/sandbox-record";

export type { SandboxRecord } from "../state/sandbox-record";

export class SandboxStore {
  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  paths(id: string): SandboxPaths {
    return sandboxPaths(this.root, id);
  }

  /** Writes a record durably; creates the sandbox's directory on first write. */
  save(record: SandboxRecord): void {
    try {
      this.write(record);
    } catch (err) {
      throw new PaddockError("E_STATE_DIR", `cannot record sandbox ${record.id}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, "check the state dir's file system (full disk?)");
    }
  }

  private write(record: SandboxRecord): void {
    const { dir, record: file } = this.paths(record.id);
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { mode: 0o700 });
      fsyncDir(this.root);
    }
    writeDurably(file, JSON.stringify(record, null, 2) + "\n");
  }

  /**
   * Removes a sandbox's directory, record last, so a crash half-way leaves a record to finish
   * from. GNU rm walks with directory descriptors: a tree deeper than PATH_MAX is removed too,
   * symlinks are never followed, and --one-file-system keeps it out of any mount left inside.
   */
  removeAll(id: string): void {
    const { dir, record } = this.paths(id);
    const victims = safeReaddir(dir).filter((e) => e !== RECORD_FILE).map((e) => path.join(dir, e));
    if (victims.length > 0) removeTree(victims);
    fs.rmSync(record, { force: true });
    removeTree([dir]);
    fsyncDir(this.root);
  }

  /**
   * Every record on disk; the ids of directories without a record (orphans, safe to remove);
   * and of those whose record exists but cannot be read, or is not a record this agent knows
   * (kept: their changes may matter).
   */
  loadAll(): { records: SandboxRecord[]; orphans: string[]; unreadable: string[] } {
    const records: SandboxRecord[] = [];
    const orphans: string[] = [];
    const unreadable: string[] = [];
    for (const id of safeReaddir(this.root).filter((name) => !isAgentFolder(name))) {
      try {
        const record: unknown = JSON.parse(fs.readFileSync(this.paths(id).record, "utf8"));
        if (isSandboxRecord(record) && record.id === id) records.push(record);
        else unreadable.push(id);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") orphans.push(id);
        else unreadable.push(id);
      }
    }
    return { records, orphans, unreadable };
  }
}

function removeTree(paths: string[]): void {
  const rm = spawnSync("rm", ["-rf", "--one-file-system", "--", ...paths], { encoding: "utf8" });
  if (rm.status !== 0) {
    throw new PaddockError("E_STATE_DIR", `cannot remove ${paths.join(", ")}: ${rm.stderr.trim() || rm.error?.message}`, "see the agent log; `paddock gc` tries again");
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
