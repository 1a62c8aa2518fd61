/**
 * Writes a Linux initramfs: a cpio archive in the "newc" format the kernel unpacks at boot.
 * Written here rather than by the cpio program so that device nodes (dev/console) can be
 * included without root and without a staging directory.
 */

export type InitramfsEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; data: Buffer; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "chardev"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function record(ino: number, mode: number, name: string, data: Buffer, rdev: [number, number] = [0, 0]): Buffer[] {
  const nameBytes = Buffer.from(name + "\0", "utf8");
  const header =
    "070701" +
    [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0].map(hex8).join("");
  const head = Buffer.concat([Buffer.from(header, "ascii"), nameBytes]);
  return [head, pad4(head.length), data, pad4(data.length)];
}

export function buildInitramfs(entries: InitramfsEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const entry of entries) {
    const name = entry.path.replace(/^\/+/, "");
    if (!name || name.split("/").includes("..")) throw new Error(`invalid initramfs path ${JSON.stringify(entry.path)}`);
    switch (entry.type) {
      case "dir":
        parts.push(...record(ino++, S_IFDIR | (entry.mode ?? 0o755), name, Buffer.alloc(0)));
        break;
      case "file":
        parts.push(...record(ino++, S_IFREG | (entry.mode ?? 0o644), name, entry.data));
        break;
      case "symlink":
        parts.push(...record(ino++, S_IFLNK | 0o777, name, Buffer.from(entry.target, "utf8")));
        break;
      case "chardev":
        parts.push(...record(ino++, S_IFCHR | (entry.mode ?? 0o600), name, Buffer.alloc(0), [entry.major, entry.minor]));
        break;
    }
  }
  parts.push(...record(0, 0, "TRAILER!!!", Buffer.alloc(0)));
  return Buffer.concat(parts);
}
