/**
 * Mounts a real overlay in a private mount namespace (so nothing outlives the probe), writes
 * through it and deletes through it, then checks the upper dir got the file and the whiteout
 * and the lower dir was not touched.
 */
import { describeFailure, runProbe } from "../run-probe";
import { OVERLAY_OPTIONS } from "../../changeset/overlay";
import type { ProbeContext, ProbeVerdict } from "./context";

const NOBODY = 65534;


/**
 * A shell script that builds the layers under "$d", then, in the namespaces `unshare` makes,
 * mounts, writes, deletes and verifies. The inner shell gets the directory as "$1".
 */
function probeScript(unshare: string, extraOptions: string): string {
  const opts = `lowerdir=$1/lower,upperdir=$1/upper,workdir=$1/work,${OVERLAY_OPTIONS}${extraOptions}`;
  const inside = [
    `mount -t overlay paddock-check -o "${opts}" "$1/merged"`,
    'echo probe > "$1/merged/probe"',
    'rm "$1/merged/keep"',
    'test -f "$1/upper/probe"',
    'test -c "$1/upper/keep"',
    'test ! -e "$1/lower/probe"',
    'test -f "$1/lower/keep"',
    "echo paddock-overlay-ok",
  ].join(" && ");
  return [
    "set -e",
    'mkdir "$d/lower" "$d/upper" "$d/work" "$d/merged"',
    'echo lower > "$d/lower/keep"',
    `${unshare} sh -c '${inside}' probe "$d"`,
  ].join("\n");
}

export async function checkKernelOverlay(ctx: ProbeContext): Promise<ProbeVerdict> {
  const script = `d="$1"\n${probeScript("unshare -m --propagation private", "")}`;
  const out = await runProbe("sh", ["-c", script, "probe", ctx.scratchDir], { timeoutMs: 10_000 });
  if (out.stdout.includes("paddock-overlay-ok")) {
    return { ok: true, detail: "mounted kernel overlayfs, wrote and deleted through it; upper dir got the file and the whiteout" };
  }
  return {
    ok: false,
    detail: describeFailure(out, "kernel overlayfs mount"),
    hint: ctx.uid === 0 ? "load the overlay module (modprobe overlay)" : "kernel overlayfs needs root; rootless mode uses overlayfs-rootless",
  };
}

/**
 * Rootless: the same inside a user namespace with `userxattr`. When the agent is root the
 * whole probe, its files included, runs as nobody: the result says what an unprivileged user
 * would get, and root never touches a file that nobody controls.
 */
export async function checkRootlessOverlay(ctx: ProbeContext): Promise<ProbeVerdict> {
  const asNobody = ctx.uid === 0;
  const script = [
    'd=$(mktemp -d /tmp/paddock-check-XXXXXX)',
    `trap 'chmod -R u+rwx "$d" 2>/dev/null; rm -rf "$d"' EXIT`,
    probeScript("unshare -U -m --map-root-user", ",userxattr"),
  ].join("\n");
  const out = await runProbe("sh", ["-c", script], { timeoutMs: 10_000, ...(asNobody ? { uid: NOBODY, gid: NOBODY } : {}) });
  const who = asNobody ? "as uid 65534 " : "";
  if (out.stdout.includes("paddock-overlay-ok")) {
    return { ok: true, detail: `${who}in a user namespace: mounted overlayfs with userxattr, wrote and deleted through it` };
  }
  return {
    ok: false,
    detail: describeFailure(out, `${who}rootless overlayfs mount`),
    hint: "needs Linux ≥ 5.11 and unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1); fuse-overlayfs is the fallback",
  };
}
