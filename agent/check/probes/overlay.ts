/**
 * Mounts a real overlay in a private mount namespace (so nothing outlives the probe), writes
 * through it and deletes through it, then checks the upper dir got the file and the whiteout
 * and the lower dir was not touched.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describeFailure, runProbe } from "../run-probe";
import type { ProbeContext, ProbeVerdict } from "./context";

const NOBODY = 65534;
// "nofollow" rather than "off": with the overlay module's redirect_always_follow=Y, "off" still
// follows redirects, and "off" conflicts with userxattr. nofollow neither creates nor follows.
export const OVERLAY_OPTIONS = "redirect_dir=nofollow,metacopy=off,index=off";

function layout(base: string) {
  const dirs = { lower: path.join(base, "lower"), upper: path.join(base, "upper"), work: path.join(base, "work"), merged: path.join(base, "merged") };
  for (const dir of Object.values(dirs)) fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dirs.lower, "keep"), "lower\n");
  return dirs;
}

function script(d: ReturnType<typeof layout>, extraOptions: string): string {
  const opts = `lowerdir=${d.lower},upperdir=${d.upper},workdir=${d.work},${OVERLAY_OPTIONS}${extraOptions}`;
  return [
    `mount -t overlay paddock-check -o ${opts} ${d.merged}`,
    `echo probe > ${d.merged}/probe`,
    `rm ${d.merged}/keep`,
    `test -f ${d.upper}/probe`,
    `test -c ${d.upper}/keep`,
    `test ! -e ${d.lower}/probe`,
    `test -f ${d.lower}/keep`,
    "echo paddock-overlay-ok",
  ].join(" && ");
}

export async function checkKernelOverlay(ctx: ProbeContext): Promise<ProbeVerdict> {
  const dirs = layout(ctx.scratchDir);
  const out = await runProbe("unshare", ["-m", "--propagation", "private", "sh", "-c", script(dirs, "")], { timeoutMs: 10_000 });
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
 * Rootless: the same inside a user namespace with `userxattr`. When the agent is root it
 * drops to nobody for the probe, so the result says what an unprivileged user would get.
 */
export async function checkRootlessOverlay(ctx: ProbeContext): Promise<ProbeVerdict> {
  const asNobody = ctx.uid === 0;
  // A scratch dir nobody can reach: the state dir is private to root.
  const base = asNobody ? fs.mkdtempSync(path.join(os.tmpdir(), "paddock-check-")) : ctx.scratchDir;
  try {
    const dirs = layout(base);
    if (asNobody) for (const p of [base, ...Object.values(dirs), path.join(dirs.lower, "keep")]) fs.chownSync(p, NOBODY, NOBODY);
    const out = await runProbe("unshare", ["-U", "-m", "--map-root-user", "sh", "-c", script(dirs, ",userxattr")], {
      timeoutMs: 10_000,
      ...(asNobody ? { uid: NOBODY, gid: NOBODY } : {}),
    });
    const who = asNobody ? "as uid 65534 " : "";
    if (out.stdout.includes("paddock-overlay-ok")) {
      return { ok: true, detail: `${who}in a user namespace: mounted overlayfs with userxattr, wrote and deleted through it` };
    }
    return {
      ok: false,
      detail: describeFailure(out, `${who}rootless overlayfs mount`),
      hint: "needs Linux ≥ 5.11 and unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1); fuse-overlayfs is the fallback",
    };
  } finally {
    if (asNobody) fs.rmSync(base, { recursive: true, force: true });
  }
}
