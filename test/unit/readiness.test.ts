import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCgroupMounts } from "../../agent/check/probes/cgroups";
import { acceleratorChoice, chooseChangeset, containerReadiness, ociRuntimeChoice, processReadiness, vmReadiness } from "../../agent/runtime/readiness";
import type { CheckName, CheckResult } from "../../protocol/methods";

/** What system/check reports for these checks, without overrides. */
function runtimeReadiness(checks: CheckResult[], root: boolean) {
  const changeset = chooseChangeset(checks, root);
  return { process: processReadiness(checks, changeset), container: containerReadiness(checks, root, {}, changeset), vm: vmReadiness(checks, root, {}, changeset) };
}

const HYBRID = `
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,xattr,name=systemd`;

test("a hybrid mount table is recognised with its v1 controllers", () => {
  const layout = parseCgroupMounts(HYBRID, () => []);
  assert.equal(layout.mode, "hybrid");
  assert.deepEqual([...layout.v1.keys()].sort(), ["cpu", "cpuacct", "memory", "pids"]);
  assert.equal(layout.v1.get("pids"), "/sys/fs/cgroup/pids");
  assert.equal(layout.v2Mount, "/sys/fs/cgroup/unified");
});

test("pure v2 and pure v1 are told apart", () => {
  const v2 = parseCgroupMounts("29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", () => ["cpu", "memory", "pids"]);
  assert.equal(v2.mode, "v2");
  assert.deepEqual(v2.v2Controllers, ["cpu", "memory", "pids"]);
  const v1 = parseCgroupMounts(HYBRID.split("\n").filter((l) => !l.includes("cgroup2")).join("\n"), () => []);
  assert.equal(v1.mode, "v1");
  assert.equal(parseCgroupMounts("", () => []).mode, "none");
});

function checks(ok: Partial<Record<CheckName, boolean>>): CheckResult[] {
  return (Object.keys(ok) as CheckName[]).map((name) => ({ name, ok: ok[name] ?? false, detail: "", durationMs: 0 }));
}

test("readiness: runc stands in for a failed crun, TCG for a failed KVM", () => {
  const r = runtimeReadiness(checks({ overlayfs: true, bwrap: true, runc: true, crun: false, cgroups: true, qemu: true, kvm: false, tcg: true }), true);
  assert.deepEqual(r.process, { available: true, missing: [], using: "kernel overlayfs" });
  assert.deepEqual(r.container, { available: true, missing: [], using: "runc" });
  assert.deepEqual(r.vm, { available: true, missing: [], using: "tcg" });
});

test("readiness: a missing piece is named; rootless needs the rootless overlay", () => {
  const r = runtimeReadiness(checks({ overlayfs: true, "overlayfs-rootless": false, bwrap: true, runc: false, crun: false, qemu: true, kvm: true, tcg: false }), false);
  assert.deepEqual(r.process, { available: false, missing: ["overlayfs-rootless"] });
  assert.equal(r.container.available, false);
  assert.match(r.container.reason ?? "", /need the agent as root/, "rootless: says why, not which check");
  assert.match(r.vm.reason ?? "", /need the agent as root/, "rootless VMs: says why");
  assert.equal(runtimeReadiness(checks({ overlayfs: true, qemu: true, kvm: true, tcg: false }), true).vm.using, "kvm", "KVM where it boots a guest");
});

test("changesets: overlayfs where it mounts; fuse-overlayfs only where it does not and fuse does", () => {
  assert.equal(chooseChangeset(checks({ overlayfs: true, "fuse-overlayfs": true }), true), "kernel overlayfs");
  assert.equal(chooseChangeset(checks({ overlayfs: false, "fuse-overlayfs": true }), true), "fuse-overlayfs");
  assert.equal(chooseChangeset(checks({ overlayfs: false, "fuse-overlayfs": false }), true), "kernel overlayfs");
  assert.equal(chooseChangeset(checks({ "overlayfs-rootless": false, "fuse-overlayfs": true }), false), "fuse-overlayfs");
  assert.equal(chooseChangeset(undefined, false), "overlayfs in a user namespace", "before any check has run");
  const r = runtimeReadiness(checks({ overlayfs: false, "fuse-overlayfs": true, bwrap: true }), true);
  assert.deepEqual(r.process, { available: true, missing: [], using: "fuse-overlayfs" });
});

test("readiness with overrides: what is forced is what system/check names, and what cannot be forced says why and what to do", () => {
  const all = checks({ overlayfs: true, bwrap: true, runc: true, crun: false, cgroups: true, qemu: true, kvm: false, tcg: true, "fuse-overlayfs": true });
  const kernel = "kernel overlayfs";
  assert.equal(containerReadiness(all, true, { ociRuntime: "crun" }, kernel).using, "crun", "forced, even where its check failed: the create's error then names it");
  assert.equal(vmReadiness(all, true, { accelerator: "kvm" }, kernel).using, "kvm");
  assert.equal(chooseChangeset(all, true, { changeset: "fuse-overlayfs" }), "fuse-overlayfs");
  assert.equal(processReadiness(all, "fuse-overlayfs").using, "fuse-overlayfs");
  const podman = containerReadiness(all, true, { ociRuntime: "podman" }, kernel);
  assert.equal(podman.available, false);
  assert.match(podman.reason ?? "", /"podman", which is not one Paddock runs/);
  assert.match(podman.hint ?? "", /runc or crun/);
  const warp = vmReadiness(all, true, { accelerator: "warp" }, kernel);
  assert.equal(warp.available, false);
  assert.match(warp.reason ?? "", /PADDOCK_ACCELERATOR is "warp"/);
  assert.match(containerReadiness(all, false, {}, "overlayfs in a user namespace").hint ?? "", /run the agent as root/, "rootless: the reason comes with what to do");
});

test("the choices sandboxes are made with are the ones readiness reports", () => {
  const all = checks({ overlayfs: true, bwrap: true, runc: false, crun: true, cgroups: true, qemu: true, kvm: false, tcg: true });
  for (const overrides of [{}, { ociRuntime: "runc" }, { accelerator: "kvm" }]) {
    const oci = ociRuntimeChoice(all, true, overrides);
    const accelerator = acceleratorChoice(all, true, overrides);
    assert.equal("using" in oci && oci.using, containerReadiness(all, true, overrides, "kernel overlayfs").using);
    assert.equal("using" in accelerator && accelerator.using, vmReadiness(all, true, overrides, "kernel overlayfs").using);
  }
});

test("readiness names the changeset the agent mounts with; a VM without QEMU names every check it lacks", () => {
  const fuseOnly = checks({ overlayfs: false, "fuse-overlayfs": true, bwrap: true });
  assert.deepEqual(processReadiness(fuseOnly, "kernel overlayfs"), { available: false, missing: ["overlayfs"] }, "the agent mounts kernel overlayfs: that is what must work");
  assert.deepEqual(processReadiness(fuseOnly, "fuse-overlayfs"), { available: true, missing: [], using: "fuse-overlayfs" });
  const noQemu = checks({ overlayfs: true, qemu: false, kvm: false, tcg: false });
  assert.deepEqual(vmReadiness(noQemu, true, {}, "kernel overlayfs"), { available: false, missing: ["qemu", "kvm", "tcg"] });
  const choice = acceleratorChoice(noQemu, true, {});
  assert.ok("refused" in choice && /QEMU is not installed/.test(choice.refused.message), "a create says QEMU first");
});
