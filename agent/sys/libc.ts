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
export const MS_BIND = 4096;
export const MS_REC = 16384;
export const MS_PRIVATE = 1 << 18;

export interface Ucred {
  pid: number;
  uid: number;
  gid: number;
}

/** A path for a system call: a string (passed as UTF-8), or bytes ending with a NUL (a name that is not UTF-8). */
export type CPath = string | Buffer;

interface Libc {
  flock(fd: number, operation: number): number;
  mount(source: string, target: string, fstype: string, flags: number, data: string): number;
  lgetxattr(path: string, name: string, value: Buffer | null, size: number): number;
  llistxattr(path: string, list: Buffer, size: number): number;
  umount2(target: string, flags: number): number;
  getsockopt(fd: number, level: number, name: number, value: Ucred, length: number[]): number;
  syscall(number: number, ...args: unknown[]): number | bigint;
  renameat(olddirfd: number, oldpath: CPath, newdirfd: number, newpath: CPath): number;
  unlinkat(dirfd: number, path: CPath, flags: number): number;
  mkdirat(dirfd: number, path: CPath, mode: number): number;
  symlinkat(target: CPath, dirfd: number, path: CPath): number;
  readlinkat(dirfd: number, path: CPath, buffer: Buffer, size: number): number;
  flistxattr(fd: number, list: Buffer, size: number): number;
  fchownat(dirfd: number, path: CPath, uid: number, gid: number, flags: number): number;
  fgetxattr(fd: number, name: string, value: Buffer, size: number): number;
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
  socketpair(domain: number, type: number, protocol: number, sv: Buffer): number;
  syscall1(number: number, a: number): number;
  syscallBuffer(number: number, a: number, b: Buffer): number;
  syscallOpenat2(number: number, dirfd: number, path: CPath, how: Buffer, size: number): number;
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
    syscall: lib.func("long syscall(long number, ...)"),
    renameat: lib.func("int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)"),
    unlinkat: lib.func("int unlinkat(int dirfd, const char *path, int flags)"),
    mkdirat: lib.func("int mkdirat(int dirfd, const char *path, uint32_t mode)"),
    symlinkat: lib.func("int symlinkat(const char *target, int dirfd, const char *path)"),
    readlinkat: lib.func("long readlinkat(int dirfd, const char *path, _Out_ uint8_t *buffer, size_t size)"),
    flistxattr: lib.func("long flistxattr(int fd, _Out_ uint8_t *list, size_t size)"),
    fgetxattr: lib.func("long fgetxattr(int fd, const char *name, _Out_ uint8_t *value, size_t size)"),
    lsetxattr: lib.func("int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)"),
    fchownat: lib.func("int fchownat(int dirfd, const char *path, uint32_t uid, uint32_t gid, int flags)"),
    socketpair: lib.func("int socketpair(int domain, int type, int protocol, _Out_ uint8_t *sv)"),
    // Fixed prototypes of syscall(2) for the calls made around every file operation done
    // with a user's rights (a variadic call costs several times as much).
    syscall1: lib.func("syscall", "long", ["long", "unsigned long"]),
    syscallBuffer: lib.func("syscall", "long", ["long", "unsigned long", "const uint8_t *"]),
    // openat2 is the call every confined file operation starts with: a fixed prototype too.
    syscallOpenat2: lib.func("syscall", "long", ["long", "int", "const char *", "const uint8_t *", "size_t"]),
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

let errnoNames: Map<number, string> | undefined;

/** A short name for an errno, for messages (os.constants.errno has the map; the first name of a number wins). */
export function errnoName(code: number): string {
  errnoNames ??= new Map((Object.entries(os.constants.errno) as [string, number][]).reverse().map(([name, value]) => [value, name]));
  return errnoNames.get(code) ?? `errno ${code}`;
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

// ---- calls relative to a directory descriptor (see sys/beneath.ts) ----------------------

const SYS_OPENAT2 = 437;
export const RESOLVE_NO_XDEV = 0x01;
export const RESOLVE_NO_MAGICLINKS = 0x02;
export const RESOLVE_NO_SYMLINKS = 0x04;
export const RESOLVE_BENEATH = 0x08;
export const AT_REMOVEDIR = 0x200;

/** openat2(2) (no glibc wrapper in Debian 12); returns the fd, or minus the errno. */
export function openat2(dirfd: number, path: CPath, flags: number, mode: number, resolve: number): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags >>> 0), 0);
  how.writeBigUInt64LE(BigInt(mode), 8);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  const fd = Number(load().syscallOpenat2(SYS_OPENAT2, dirfd, path, how, how.length));
  return fd < 0 ? -errno() : fd;
}

/** Per-architecture numbers of the calls that must change the calling thread alone. */
const THREAD_CREDENTIAL_CALLS: Record<string, { setgroups: number; setfsuid: number; setfsgid: number }> = {
  x64: { setgroups: 116, setfsuid: 122, setfsgid: 123 },
  arm64: { setgroups: 159, setfsuid: 151, setfsgid: 152 },
};

function threadCall(name: "setgroups" | "setfsuid" | "setfsgid"): number {
  const numbers = THREAD_CREDENTIAL_CALLS[process.arch];
  if (!numbers) throw new Error(`acting with a user's rights is not supported on ${process.arch}`);
  return numbers[name];
}

/** setgroups(2) for the calling thread only (the raw call; glibc's changes every thread). */
export function setThreadGroups(groups: readonly number[]): void {
  const list = Buffer.alloc(Math.max(groups.length, 1) * 4);
  groups.forEach((gid, i) => list.writeUInt32LE(gid, i * 4));
  if (load().syscallBuffer(threadCall("setgroups"), groups.length, list) !== 0) throw new Error(`setgroups failed: ${errnoName(errno())}`);
}

/**
 * setfsuid(2) and setfsgid(2) return the previous value, never an error: with `check`, the
 * value is read back (-1 changes nothing) and compared.
 */
function setFsId(name: "setfsuid" | "setfsgid", id: number, check: boolean): void {
  load().syscall1(threadCall(name), id);
  if (!check) return;
  const now = load().syscall1(threadCall(name), 0xffffffff);
  if (now !== id) throw new Error(`${name}(${id}) did not take effect (it is ${now}): the agent lacks CAP_SETUID or CAP_SETGID`);
}

export const setFsUid = (uid: number, check = true): void => setFsId("setfsuid", uid, check);
export const setFsGid = (gid: number, check = true): void => setFsId("setfsgid", gid, check);

const orErrno = (result: number): number => (result === 0 ? 0 : errno());

/** renameat(2); returns 0 or the errno. */
export function renameat(fromDir: number, from: CPath, toDir: number, to: CPath): number {
  return orErrno(load().renameat(fromDir, from, toDir, to));
}

/** unlinkat(2); returns 0 or the errno. */
export function unlinkat(dirfd: number, name: CPath, flags: number): number {
  return orErrno(load().unlinkat(dirfd, name, flags));
}

/** mkdirat(2); returns 0 or the errno. */
export function mkdirat(dirfd: number, name: CPath, mode: number): number {
  return orErrno(load().mkdirat(dirfd, name, mode));
}

/** symlinkat(2); returns 0 or the errno. */
export function symlinkat(target: CPath, dirfd: number, name: CPath): number {
  return orErrno(load().symlinkat(target, dirfd, name));
}

/** readlinkat(2) of a name in a directory (an empty name reads an O_PATH descriptor of the link itself): the target's bytes. */
export function readlinkat(dirfd: number, name: CPath): Buffer | number {
  const buffer = Buffer.alloc(4096);
  const length = Number(load().readlinkat(dirfd, name, buffer, buffer.length));
  return length < 0 ? errno() : buffer.subarray(0, length);
}

/** The names of an open file's extended attributes. */
export function flistxattr(fd: number): string[] {
  const length = Number(load().flistxattr(fd, xattrNames, xattrNames.length));
  if (length <= 0) return [];
  return xattrNames.subarray(0, length).toString("utf8").split("\0").filter(Boolean);
}

const AT_SYMLINK_NOFOLLOW = 0x100;

/** Changes the owner of a name in a directory, never following a symlink; returns 0 or the errno. */
export function fchownat(dirfd: number, name: CPath, uid: number, gid: number): number {
  return orErrno(load().fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW));
}

/** An extended attribute of an open file; undefined when it has none. */
export function fgetxattr(fd: number, name: string): Buffer | undefined {
  const buffer = Buffer.alloc(4096);
  const length = Number(load().fgetxattr(fd, name, buffer, buffer.length));
  return length < 0 ? undefined : buffer.subarray(0, length);
}

/** Sets an extended attribute of a path (not following a final symlink); returns 0 or the errno. */
export function lsetxattr(path: string, name: string, value: Buffer): number {
  return orErrno(load().lsetxattr(path, name, value, value.length, 0));
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;

/** socketpair(AF_UNIX, SOCK_STREAM): two connected descriptors (close-on-exec; a child gets one through its stdio). */
export function socketPair(): [number, number] {
  const sv = Buffer.alloc(8);
  if (load().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) !== 0) throw new Error(`socketpair failed: ${errnoName(errno())}`);
  return [sv.readInt32LE(0), sv.readInt32LE(4)];
}
