/**
 * QEMU: present, and can it really boot a Linux guest with KVM, and with TCG? Opening
 * /dev/kvm proves little (nested KVM can accept KVM_CREATE_VM and then hang the guest), so
 * the probe boots the guest kernel with a tiny static /init that prints a marker, under a
 * deadline.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { buildInitramfs } from "../../guest/initramfs";
import { guestKernel, missingKernel } from "../../guest/kernel";
import type { PaddockError } from "../../../protocol/errors";
import { describeFailure, runProbe } from "../run-probe";
import type { ProbeContext, ProbeVerdict } from "./context";

export const QEMU_BINARY = "qemu-system-x86_64";
export const PROBE_MARKER = "PADDOCK-PROBE-OK";
export const KVM_DEADLINE_MS = 6_000;
export const TCG_DEADLINE_MS = 30_000;

export async function checkQemu(_ctx: ProbeContext): Promise<ProbeVerdict> {
  const out = await runProbe(QEMU_BINARY, ["--version"], { timeoutMs: 10_000 });
  const version = /version (\S+)/.exec(out.stdout)?.[1];
  if (out.exitCode === 0 && version) return { ok: true, detail: `${QEMU_BINARY} ${version}` };
  return { ok: false, detail: describeFailure(out, QEMU_BINARY), hint: "install qemu-system-x86 (apt-get install qemu-system-x86)" };
}

/** Writes the probe initramfs (a few hundred KiB, built in memory) from the static probe /init. */
export function probeInitramfs(ctx: ProbeContext): string | { missing: string } {
  const initPath = path.join(ctx.nativeDir, "probe-init");
  if (!fs.existsSync(initPath)) return { missing: initPath };
  const image = buildInitramfs([
    { type: "dir", path: "dev" },
    { type: "chardev", path: "dev/console", major: 5, minor: 1 },
    { type: "file", path: "init", data: fs.readFileSync(initPath), mode: 0o755 },
  ]);
  const file = path.join(ctx.cacheDir, "probe-initramfs.cpio");
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, image);
  fs.renameSync(tmp, file);
  return file;
}

export type Accelerator = "kvm" | "tcg";

export function probeBootArgs(accel: Accelerator, kernel: string, initramfs: string): string[] {
  return [
    "-accel", accel,
    "-M", "pc",
    "-m", "128",
    "-smp", "1",
    "-nodefaults",
    "-no-user-config",
    "-display", "none",
    "-serial", "stdio",
    "-no-reboot",
    "-kernel", kernel,
    "-initrd", initramfs,
    "-append", "console=ttyS0 panic=-1 quiet loglevel=1 rdinit=/init",
  ];
}

export async function checkAccelerator(ctx: ProbeContext, accel: Accelerator): Promise<ProbeVerdict> {
  if (accel === "kvm") {
    try {
      fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK);
    } catch (err) {
      return { ok: false, detail: `/dev/kvm is not usable: ${(err as NodeJS.ErrnoException).code}`, hint: "VMs will use TCG (software emulation), which is slower" };
    }
  }
  let kernel: string | undefined;
  try {
    kernel = await guestKernel(ctx.cacheDir);
  } catch (err) {
    return { ok: false, detail: (err as Error).message, hint: (err as PaddockError).hint ?? "see the agent log" };
  }
  if (!kernel || !fs.existsSync(kernel)) {
    const { message, hint } = missingKernel(kernel);
    return { ok: false, detail: message, hint };
  }
  const initramfs = probeInitramfs(ctx);
  if (typeof initramfs !== "string") {
    return { ok: false, detail: `probe guest ${initramfs.missing} is missing`, hint: "run npm run build (it compiles native/ with gcc)" };
  }
  const deadline = accel === "kvm" ? KVM_DEADLINE_MS : TCG_DEADLINE_MS;
  const out = await runProbe(QEMU_BINARY, probeBootArgs(accel, kernel, initramfs), { timeoutMs: deadline, until: PROBE_MARKER, dieWithAgent: true });
  const release = new RegExp(`${PROBE_MARKER} (\\S+)`).exec(out.stdout)?.[1];
  if (out.stdout.includes(PROBE_MARKER)) {
    return { ok: true, detail: `booted ${path.basename(kernel)} to /init under ${accel.toUpperCase()} in ${out.durationMs} ms (guest kernel ${release ?? "?"})` };
  }
  if (out.timedOut) {
    return {
      ok: false,
      detail: `a guest did not reach /init within ${deadline / 1000} s under ${accel.toUpperCase()}`,
      hint: accel === "kvm" ? "KVM is present but does not run a guest (nested virtualisation is often broken); VMs will use TCG" : "TCG is too slow or broken here; VM sandboxes are unavailable",
    };
  }
  return {
    ok: false,
    detail: describeFailure(out, `${QEMU_BINARY} -accel ${accel}`),
    hint: accel === "kvm" ? "VMs will use TCG (software emulation)" : "VM sandboxes are unavailable",
  };
}
