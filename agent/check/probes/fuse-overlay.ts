/**
 * fuse-overlayfs, the fallback where kernel overlayfs cannot be mounted: mount it for real,
 * write and delete through it, check the upper dir, unmount.
 */
import { describeFailure, runProbe } from "../run-probe";
import type { ProbeContext, ProbeVerdict } from "./context";

export async function checkFuseOverlay(ctx: ProbeContext): Promise<ProbeVerdict> {
  const script = [
    "set -e",
    'd="$1"',
    'mkdir "$d/lower" "$d/upper" "$d/work" "$d/merged"',
    'echo lower > "$d/lower/keep"',
    'fuse-overlayfs -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged"',
    'trap \'fusermount3 -u -z "$d/merged" 2>/dev/null || umount -l "$d/merged"\' EXIT',
    'echo probe > "$d/merged/probe"',
    'rm "$d/merged/keep"',
    'test -f "$d/upper/probe"',
    'test ! -e "$d/lower/probe"',
    'test -f "$d/lower/keep"',
    "echo paddock-fuse-ok",
  ].join("\n");
  const out = await runProbe("sh", ["-c", script, "probe", ctx.scratchDir], { timeoutMs: 10_000 });
  if (out.stdout.includes("paddock-fuse-ok")) {
    return { ok: true, detail: "mounted fuse-overlayfs, wrote and deleted through it; the upper dir got the file" };
  }
  return { ok: false, detail: describeFailure(out, "fuse-overlayfs"), hint: "install fuse-overlayfs and fuse3 (apt-get install fuse-overlayfs fuse3); it is only needed where overlayfs itself cannot be mounted" };
}
