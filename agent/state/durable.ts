/** Writing a small file so that after a crash it is wholly old or wholly new, and still there. */
import * as fs from "node:fs";
import * as path from "node:path";

/** Temp file, fsync, rename over the target, fsync of the directory. */
export function writeDurably(file: string, text: string, mode = 0o600): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, "w", mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** Removes a file and makes its absence durable. */
export function removeDurably(file: string): void {
  fs.rmSync(file, { force: true });
  fsyncDir(path.dirname(file));
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
