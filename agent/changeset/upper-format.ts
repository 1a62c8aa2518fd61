/**
 * How an upper directory marks what the sandbox deleted and which folders hide the workspace's
 * entries below them. Each overlay writes its own marks, and only those count: on a kernel
 * overlay a sandbox can make a file named `.wh.x` or set a `user.overlay.opaque` attribute,
 * and there they are ordinary content, not a deletion to approve or a folder to hide.
 *
 * - A 0/0 character device is a whiteout everywhere (the overlay itself reads it so).
 * - Kernel overlayfs keeps its attributes under `trusted.overlay.`, or `user.overlay.` when
 *   mounted with `userxattr` (rootless); a program in the sandbox cannot set either through it.
 * - fuse-overlayfs also writes `.wh.NAME` files and `.wh..wh..opq` markers (where it cannot make
 *   devices) and `user.fuseoverlayfs.` attributes, and hides those names from the sandbox.
 */
import type * as fs from "node:fs";
import { fgetxattr, flistxattr } from "../sys/libc";

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";

export class UpperFormat {
  private constructor(
    /** `.wh.NAME` files delete NAME, and `.wh..wh..opq` makes its folder opaque. */
    private readonly markFiles: boolean,
    /** Where the overlay keeps its attributes (opaque, redirect, metacopy). */
    private readonly attributePrefixes: readonly string[],
  ) {}

  static readonly kernel = new UpperFormat(false, ["trusted.overlay."]);
  static readonly userxattr = new UpperFormat(false, ["user.overlay."]);
  static readonly fuse = new UpperFormat(true, ["trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."]);

  /** The name a whiteout file deletes (undefined: `name` is an entry of its own). */
  deletedBy(name: string): string | undefined {
    return this.markFiles && name.startsWith(WHITEOUT_PREFIX) && name !== OPAQUE_MARKER ? name.slice(WHITEOUT_PREFIX.length) : undefined;
  }

  /** The whiteout file that would delete `name`, in a format that has them. */
  whiteoutFileFor(name: string): string | undefined {
    return this.markFiles ? `${WHITEOUT_PREFIX}${name}` : undefined;
  }

  /** A mark rather than an entry: a whiteout file or an opaque marker (never content of the sandbox). */
  isMark(name: string): boolean {
    return this.isOpaqueMarker(name) || this.deletedBy(name) !== undefined;
  }

  isOpaqueMarker(name: string): boolean {
    return this.markFiles && name === OPAQUE_MARKER;
  }

  isWhiteoutDevice(st: fs.Stats): boolean {
    return st.isCharacterDevice() && st.rdev === 0;
  }

  /** The overlay's attributes of an open entry, prefix removed (most entries have none). */
  attributes(fd: number): Map<string, string> {
    const attributes = new Map<string, string>();
    for (const name of flistxattr(fd)) {
      const prefix = this.attributePrefixes.find((p) => name.startsWith(p));
      if (prefix) attributes.set(name.slice(prefix.length), fgetxattr(fd, name)?.toString() ?? "");
    }
    return attributes;
  }
}
