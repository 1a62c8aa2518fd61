/** Finds the guest kernel: PADDOCK_KERNEL, or the newest /boot/vmlinuz-* (Debian's linux-image-amd64). */
import * as fs from "node:fs";
import * as path from "node:path";

export function findGuestKernel(env: NodeJS.ProcessEnv = process.env, bootDir = "/boot"): string | undefined {
  if (env.PADDOCK_KERNEL) return env.PADDOCK_KERNEL;
  let names: string[];
  try {
    names = fs.readdirSync(bootDir).filter((n) => n.startsWith("vmlinuz-"));
  } catch {
    return undefined;
  }
  names.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const newest = names[names.length - 1];
  return newest ? path.join(bootDir, newest) : undefined;
}

/** Why no kernel can be booted, with the fix: a configured path that is not there, or none in /boot. */
export function missingKernel(kernel: string | undefined, env: NodeJS.ProcessEnv = process.env): { message: string; hint: string } {
  if (env.PADDOCK_KERNEL) return { message: `the guest kernel ${env.PADDOCK_KERNEL} (PADDOCK_KERNEL) does not exist`, hint: "set PADDOCK_KERNEL to a bzImage that exists, or unset it to use /boot's" };
  return { message: kernel ? `the guest kernel ${kernel} cannot be read` : "no guest kernel found in /boot", hint: "install linux-image-amd64, or set PADDOCK_KERNEL to a bzImage" };
}
