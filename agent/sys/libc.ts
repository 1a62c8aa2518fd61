/**
 * The few libc calls Node does not offer, through koffi (no compiler, no shelling out).
 * Loaded lazily so that code paths that never need them never load the native module.
 */
import koffi from "koffi";
import * as os from "node:os";

export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const EWOULDBLOCK = 11;
export const EINVAL = 22;
export const ENOENT = 2;
export const MNT_DETACH = 2;
export const MS_NOSUID = 2;
export const MS_NODEV = 4;

export interface Ucred {
  pid: number;
  uid: number;
  gid: number;
}

interface Libc {
  flock(fd: number, operation: number): number;
  mount(source: string, target: string, fstype: string, flags: number, data: string): number;
  lgetxattr(path: string, name: string, value: Buffer | null, size: number): number;
  llistxattr(path: string, list: Buffer, size: number): number;
  umount2(target: string, flags: number): number;
  getsockopt(fd: number, level: number, name: number, value: Ucred, length: number[]): number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const lib = koffi.load("libc.so.6");
  const ucred = koffi.struct("paddock_ucred", { pid: "int32_t", uid: "uint32_t", gid: "uint32_t" });
  libc = {
    flock: lib.func("int flock(int fd, int operation)"),
    mount: lib.func("int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)"),
    umount2: lib.func("int umount2(const char *target, int flags)"),
    lgetxattr: lib.func("long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)"),
    llistxattr: lib.func("long llistxattr(const char *path, _Out_ uint8_t *list, size_t size)"),
    getsockopt: lib.func("getsockopt", "int", ["int", "int", "int", koffi.out(koffi.pointer(ucred)), koffi.inout(koffi.pointer("uint32_t"))]),
  };
  return libc;
}

export function errno(): number {
  return koffi.errno();
}

/** flock(2); returns 0 or the errno. */
export function flock(fd: number, operation: number): number {
  return load().flock(fd, operation) === 0 ? 0 : errno();
}

/** The credentials of the process at the other end of a connected Unix socket. */
export function peerCredentials(fd: number): Ucred {
  const cred: Ucred = { pid: 0, uid: 0, gid: 0 };
  const length = [12];
  if (load().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, length) !== 0) {
    throw new Error(`getsockopt(SO_PEERCRED) failed with errno ${errno()}`);
  }
  return cred;
}

/** mount(2); returns 0 or the errno. */
export function mount(source: string, target: string, fstype: string, flags: number, data: string): number {
  return load().mount(source, target, fstype, flags, data) === 0 ? 0 : errno();
}

/** umount2(2); returns 0 or the errno. */
export function umount2(target: string, flags: number): number {
  return load().umount2(target, flags) === 0 ? 0 : errno();
}

/** A short name for an errno, for messages (os.constants.errno has the map). */
export function errnoName(code: number): string {
  const names = Object.entries(os.constants.errno) as [string, number][];
  return names.find(([, value]) => value === code)?.[0] ?? `errno ${code}`;
}

/** An extended attribute of a path (not following a final symlink); undefined when it has none. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const buffer = Buffer.alloc(4096);
  const length = load().lgetxattr(path, name, buffer, buffer.length);
  return length < 0 ? undefined : buffer.subarray(0, length);
}

const xattrNames = Buffer.alloc(64 * 1024);

/** The names of a path's extended attributes (not following a final symlink). */
export function llistxattr(path: string): string[] {
  const length = load().llistxattr(path, xattrNames, xattrNames.length);
  if (length <= 0) return [];
  return xattrNames.subarray(0, length).toString("utf8").split("\0").filter(Boolean);
}
