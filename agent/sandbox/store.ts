/**
 * Durable sandbox records: one directory per sandbox under STATE_DIR/sandboxes, holding its
 * record and its overlay directories. A record is written (temp file, fsync, rename, fsync of
 * the directory) before the resources it describes are made, so after a crash the agent
 * knows about everything that might exist.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Sandbox } from "../protocol/methods";

export interface SandboxRecord extends Sandbox {
  /** The boot during which the overlay was last mounted. */
  bootId: string;
  idempotencyKey?: string;
}

export interface SandboxPaths {
  dir: string;
  record: string;
  upper: string;
  work: string;
  merged: string;
}

const RECORD = "record.json";

export class SandboxStore {
  constructor(readonly root: string) {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  }

  paths(id: string): SandboxPaths {
    const dir = path.join(this.root, id);
    return { dir, record: path.join(dir, RECORD), upper: path.join(dir, "upper"), work: path.join(dir, "work"), merged: path.join(dir, "merged") };
  }

  /** Writes a record durably; creates the sandbox's directory on first write. */
  save(record: SandboxRecord): void {
    const { dir, record: file } = this.paths(record.id);
    if (!fs.existsSync(dir)) {
      fs.mkdirSync(dir, { mode: 0o700 });
      fsyncDir(this.root);
    }
    const tmp = `${file}.tmp`;
    const fd = fs.openSync(tmp, "w", 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(record, null, 2) + "\n");
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    fsyncDir(dir);
  }

  /** Removes a sandbox's directory, record last, so a crash half-way leaves a record to finish from. */
  removeAll(id: string): void {
    const { dir, record } = this.paths(id);
    for (const entry of safeReaddir(dir)) {
      if (entry !== RECORD) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    }
    fs.rmSync(record, { force: true });
    fs.rmSync(dir, { recursive: true, force: true });
    fsyncDir(this.root);
  }

  /** Every record on disk, plus the ids of directories whose record is missing or unreadable. */
  loadAll(): { records: SandboxRecord[]; orphans: string[] } {
    const records: SandboxRecord[] = [];
    const orphans: string[] = [];
    for (const id of safeReaddir(this.root)) {
      try {
        records.push(JSON.parse(fs.readFileSync(this.paths(id).record, "utf8")) as SandboxRecord);
      } catch {
        orphans.push(id);
      }
    }
    return { records, orphans };
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
