/**
 * The few libc calls Node does not offer, through koffi (no compiler, no shelling out).
 * Loaded lazily so that code paths that never need them never load the native module.
 */
import koffi from "koffi";

export const SOL_SOCKET = 1;
export const SO_PEERCRED = 17;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const EWOULDBLOCK = 11;

export interface Ucred {
  pid: number;
  uid: number;
  gid: number;
}

interface Libc {
  flock(fd: number, operation: number): number;
  getsockopt(fd: number, level: number, name: number, value: Ucred, length: number[]): number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  const lib = koffi.load("libc.so.6");
  const ucred = koffi.struct("paddock_ucred", { pid: "int32_t", uid: "uint32_t", gid: "uint32_t" });
  libc = {
    flock: lib.func("int flock(int fd, int operation)"),
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
