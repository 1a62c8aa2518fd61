/**
 * Which cgroup hierarchy the machine has (v1, v2 or hybrid) and which controllers, read
 * from the mount table; then a real test: create and remove a cgroup where limits would go.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { ProbeContext, ProbeVerdict } from "./context";

export interface CgroupLayout {
  mode: "v1" | "v2" | "hybrid" | "none";
  v1: Map<string, string>; // controller -> mount point
  v2Mount?: string;
  v2Controllers: string[];
}

/** Parses /proc/self/mountinfo text (pure, for tests). */
export function parseCgroupMounts(mountinfo: string, readControllers: (mount: string) => string[]): CgroupLayout {
  const v1 = new Map<string, string>();
  let v2Mount: string | undefined;
  for (const line of mountinfo.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const mountPoint = left.split(" ")[4];
    const [fsType, , superOptions = ""] = right.split(" ");
    if (!mountPoint) continue;
    if (fsType === "cgroup2") v2Mount ??= mountPoint;
    if (fsType === "cgroup") {
      for (const opt of superOptions.split(",")) {
        if (["cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "io", "devices", "freezer", "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"].includes(opt)) {
          v1.set(opt, mountPoint);
        }
      }
    }
  }
  const v2Controllers = v2Mount ? readControllers(v2Mount) : [];
  const mode = v1.size > 0 ? (v2Mount ? "hybrid" : "v1") : v2Mount ? "v2" : "none";
  return { mode, v1, v2Mount, v2Controllers };
}

/** This machine's cgroup layout, as the kernel reports it now. */
export function readCgroupLayout(): CgroupLayout {
  return parseCgroupMounts(fs.readFileSync("/proc/self/mountinfo", "utf8"), readV2Controllers);
}

function readV2Controllers(mount: string): string[] {
  try {
    return fs.readFileSync(path.join(mount, "cgroup.controllers"), "utf8").trim().split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

export async function checkCgroups(ctx: ProbeContext): Promise<ProbeVerdict> {
  const layout = readCgroupLayout();
  const v1 = [...layout.v1.keys()].sort().join(", ");
  const v2 = layout.v2Controllers.join(", ");
  const description =
    layout.mode === "hybrid"
      ? `hybrid: v1 controllers ${v1 || "none"}; v2 at ${layout.v2Mount} with ${v2 ? `controllers ${v2}` : "no controllers"}`
      : layout.mode === "v1"
        ? `v1 with controllers ${v1}`
        : layout.mode === "v2"
          ? `v2 with controllers ${v2 || "none"}`
          : "no cgroup file system mounted";
  if (layout.mode === "none") return { ok: false, detail: description, hint: "mount cgroup2 on /sys/fs/cgroup" };

  // Where would a sandbox's limits go? The v2 tree when it has controllers, else v1 pids.
  const v2Limits = layout.v2Controllers.includes("pids") || layout.v2Controllers.includes("memory");
  const parent = layout.v2Mount && v2Limits ? layout.v2Mount : (layout.v1.get("pids") ?? layout.v1.get("memory"));
  if (!parent) return { ok: false, detail: `${description}; no hierarchy with the pids or memory controller`, hint: "enable the pids and memory controllers" };
  const probe = path.join(parent, `paddock-check-${process.pid}-${path.basename(ctx.scratchDir)}`);
  try {
    fs.mkdirSync(probe);
    fs.rmdirSync(probe);
    return { ok: true, detail: `${description}; created and removed a cgroup under ${parent}` };
  } catch (err) {
    return {
      ok: false,
      detail: `${description}; cannot create a cgroup under ${parent}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      hint: ctx.uid === 0 ? "check that the cgroup file system is mounted read-write" : "rootless limits need cgroup v2 delegation (systemd user slice); sandboxes run without limits otherwise",
    };
  }
}
