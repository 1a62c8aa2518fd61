/**
 * The changeset's file system: kernel overlayfs with the workspace as the read-only lower
 * layer and the sandbox's private upper and work directories.
 *
 * The workspace is opened first and handed to the kernel as /proc/self/fd/N, so the layer
 * mounted is exactly the directory that was checked, even if someone renames or replaces
 * the path in between.
 */
import * as fs from "node:fs";
import { PaddockError } from "../../protocol/errors";
import { MNT_DETACH, MS_BIND, MS_NODEV, MS_PRIVATE, MS_REC, errnoName, mount, umount2 } from "../sys/libc";

export interface OverlayLayers {
  /** An open descriptor of the workspace directory (the lower layer). */
  lowerFd: number;
  upper: string;
  work: string;
  merged: string;
}

// "nofollow" rather than "off": with the overlay module's redirect_always_follow=Y, "off" still
// follows redirects, and "off" conflicts with userxattr. nofollow neither creates nor follows.
export const OVERLAY_OPTIONS = "redirect_dir=nofollow,metacopy=off,index=off";

/** Paths go into a comma-separated option string: characters its parser treats specially are refused. */
export function refuseUnsafeOptionPaths(paths: string[]): void {
  for (const p of paths) {
    if (/[,:\\\n]/.test(p)) {
      throw new PaddockError("E_MOUNT", `path ${JSON.stringify(p)} has a character overlay options cannot carry (, : \\ or a newline)`, "rename it, or use a --state-dir without those characters");
    }
  }
}

export function mountOverlay(layers: OverlayLayers, label: string): void {
  refuseUnsafeOptionPaths([layers.upper, layers.work]);
  const options = `lowerdir=/proc/self/fd/${layers.lowerFd},upperdir=${layers.upper},workdir=${layers.work},${OVERLAY_OPTIONS}`;
  const err = mount(label, layers.merged, "overlay", MS_NODEV, options);
  if (err !== 0) {
    throw new PaddockError("E_MOUNT", `cannot mount the sandbox's overlay on ${layers.merged}: ${errnoName(err)}`, "run `paddock check`: overlayfs must work on this machine");
  }
}

/** Unmounts (lazily, so a process still inside cannot block it); true if something was mounted. */
export function unmountOverlay(merged: string): boolean {
  let unmounted = false;
  // Stacked mounts on the same point come off one by one.
  while (isMountPoint(merged)) {
    const err = umount2(merged, MNT_DETACH);
    if (err !== 0) throw new PaddockError("E_MOUNT", `cannot unmount ${merged}: ${errnoName(err)}`, "see the agent log");
    unmounted = true;
  }
  return unmounted;
}

/** Mount points in this mount namespace, decoded from /proc/self/mountinfo. */
export function mountPoints(): string[] {
  return fs
    .readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
}

/** Detaches every mount below `dir`, deepest first (before a tree is removed). */
export function unmountAllBelow(dir: string): void {
  for (const point of mountPoints().filter((p) => p.startsWith(dir + "/")).reverse()) umount2(point, MNT_DETACH);
}

export function isMountPoint(dir: string): boolean {
  return mountPoints().includes(dir);
}

/**
 * Makes `dir` (the sandboxes folder) a mount of its own, bound onto itself, so that a
 * command's mount namespace can detach it whole (native/paddock-enter does): then no
 * namespace but the host's holds a copy of a sandbox's overlay, which would keep its upper
 * dir mounted after the host unmounts it (an upper dir mounted twice is undefined
 * behaviour). Returns what undoes it at the agent's exit, if no sandbox is mounted below.
 */
export function bindOntoItself(dir: string): () => void {
  if (isMountPoint(dir)) return () => undefined;
  // Sandboxes mounted by an agent from before this one would end up hidden under the bind:
  // they are left as they are, and the bind waits for a start with none mounted.
  if (mountPoints().some((p) => p.startsWith(dir + "/"))) return () => undefined;
  let err = mount(dir, dir, "", MS_BIND | MS_REC, "");
  // Private: where / is shared (systemd), a bind would otherwise share its mounts with the folder beneath it.
  if (err === 0) err = mount("none", dir, "", MS_PRIVATE, "");
  if (err !== 0) throw new PaddockError("E_MOUNT", `cannot bind ${dir} onto itself: ${errnoName(err)}`, "the agent needs to mount as root");
  return () => {
    if (!mountPoints().some((p) => p.startsWith(dir + "/"))) umount2(dir, MNT_DETACH);
  };
}
