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
