/**
 * Exclusive flocks: one agent per state dir, one agent per socket path. The kernel drops a
 * flock when its holder dies however it dies, so a crashed agent never blocks the next.
 */
import * as fs from "node:fs";
import { PaddockError } from "../../protocol/errors";
import { EWOULDBLOCK, LOCK_EX, LOCK_NB, flock } from "../sys/libc";

/** Opens (creating, never following a symlink) and locks `file`; "busy" when another process holds it. */
export function tryExclusiveLock(file: string): number | "busy" {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  const err = flock(fd, LOCK_EX | LOCK_NB);
  if (err === 0) return fd;
  fs.closeSync(fd);
  if (err === EWOULDBLOCK) return "busy";
  throw new PaddockError("E_STATE_DIR", `cannot lock ${file}: errno ${err}`, "check the file system it is on");
}

/** Runs `work` holding an exclusive flock on `file` (waiting for it), for files several processes may build. */
export function withFileLock<T>(file: string, work: () => T): T {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  try {
    const err = flock(fd, LOCK_EX);
    if (err !== 0) throw new PaddockError("E_STATE_DIR", `cannot lock ${file}: errno ${err}`, "check the file system it is on");
    return work();
  } finally {
    fs.closeSync(fd); // releases the lock
  }
}

export interface StateLock {
  release(): void;
}

export function acquireStateLock(lockFile: string, stateDir: string): StateLock {
  const fd = tryExclusiveLock(lockFile);
  if (fd === "busy") {
    const holder = readHolder(lockFile);
    throw new PaddockError(
      "E_STATE_DIR_LOCKED",
      `another Paddock agent${holder ? ` (pid ${holder})` : ""} is already using the state dir ${stateDir}`,
      holder ? `stop it (kill ${holder}), connect to it with "paddock --socket", or pass another --state-dir` : "pass another --state-dir",
      holder ? { holderPid: holder } : {},
    );
  }
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, `${process.pid}\n`, 0);
  return {
    release() {
      try {
        fs.ftruncateSync(fd, 0);
        fs.closeSync(fd);
      } catch {
        // already closed
      }
    },
  };
}

function readHolder(lockFile: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockFile, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
