/**
 * Runs a real container with an OCI runtime: a bundle whose root is an empty directory with
 * the host's /usr bound read-only (Debian's merged /usr holds every program), printing a
 * marker. No image is needed, so the probe says whether the runtime works, not whether an
 * image is present.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { describeFailure, runProbe } from "../run-probe";
import type { ProbeContext, ProbeVerdict } from "./context";

export type OciRuntimeName = "runc" | "crun";

function writeBundle(bundle: string): void {
  const rootfs = path.join(bundle, "rootfs");
  for (const dir of ["usr", "proc", "dev", "tmp", "etc"]) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
  for (const link of ["bin", "lib", "lib64", "sbin"]) fs.symlinkSync(`usr/${link}`, path.join(rootfs, link));
  const config = {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["/bin/sh", "-c", "echo paddock-oci-ok"],
      env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
      cwd: "/",
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: true },
    hostname: "paddock-check",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro"] },
    ],
    linux: {
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
    },
  };
  fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(config));
}

export async function checkOciRuntime(ctx: ProbeContext, runtime: OciRuntimeName): Promise<ProbeVerdict> {
  const bundle = path.join(ctx.scratchDir, "bundle");
  writeBundle(bundle);
  const id = `paddock-check-${randomBytes(4).toString("hex")}`;
  const root = path.join(ctx.scratchDir, "state");
  const out = await runProbe(runtime, ["--root", root, "run", "--bundle", bundle, id], { timeoutMs: 15_000 });
  if (out.stdout.includes("paddock-oci-ok")) {
    return { ok: true, detail: `ran a container with ${runtime} (${out.durationMs} ms)` };
  }
  // A runtime that failed half-way may leave its state behind: clean it.
  await runProbe(runtime, ["--root", root, "delete", "--force", id], { timeoutMs: 5_000 });
  return { ok: false, detail: describeFailure(out, `${runtime} run`), hint: hintFor(runtime, out.stderr) };
}

function hintFor(runtime: OciRuntimeName, stderr: string): string {
  const other = runtime === "runc" ? "crun" : "runc";
  if (/cgroup/i.test(stderr)) {
    return `${runtime} cannot manage this machine's cgroups (hybrid v1/v2 hierarchies are a known problem for crun); containers will use ${other} if its check passes`;
  }
  return `install ${runtime} (apt-get install ${runtime}); containers use ${other} if its check passes`;
}
