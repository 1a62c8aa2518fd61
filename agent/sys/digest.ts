/** sha256 of a file, read in 1 MiB pieces (layers and kernels are too big to read whole). */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { pipeline } from "node:stream/promises";

export function sha256OfFile(file: string): string {
  const hash = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0; ) hash.update(buffer.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}

/** The same without blocking the agent while it reads (an image's layers can be gigabytes). */
export async function sha256OfFileAsync(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  return hash.digest("hex");
}

/**
 * A file's sha256, computed again only when its inode, size or times changed: every boot
 * checks the kernel, the initramfs and their inputs, and hashing them each time would hold
 * the agent for no news.
 */
const digests = new Map<string, { stamp: string; digest: string }>();
export function sha256OfFileCached(file: string): string {
  const st = fs.statSync(file);
  const stamp = `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  const known = digests.get(file);
  if (known?.stamp === stamp) return known.digest;
  const digest = sha256OfFile(file);
  digests.set(file, { stamp, digest });
  return digest;
}
