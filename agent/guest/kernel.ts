/**
 * The guest kernel: PADDOCK_KERNEL, a configured download (PADDOCK_KERNEL_URL with its
 * PADDOCK_KERNEL_SHA256), or the newest /boot/vmlinuz-* (Debian's linux-image-amd64); and its
 * release, read from the bzImage itself.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError, stateDirFailure } from "../../protocol/errors";
import { tryExclusiveLock } from "../state/lock";
import { sha256OfFileAsync, sha256OfFileCached } from "../sys/digest";

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

/**
 * The release a bzImage says it is (`uname -r` in its guest): the boot protocol's header has
 * "HdrS" at 0x202 and, at 0x20E, where its version string starts (less 0x200).
 */
export function kernelReleaseOf(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const head = Buffer.alloc(0x210);
    if (fs.readSync(fd, head, 0, head.length, 0) < head.length || head.toString("latin1", 0x202, 0x206) !== "HdrS") return undefined;
    const text = Buffer.alloc(256);
    const n = fs.readSync(fd, text, 0, text.length, head.readUInt16LE(0x20e) + 0x200);
    const release = text.toString("latin1", 0, n).split("\0")[0]?.split(" ")[0];
    return release && /^[\w.+~-]+$/.test(release) ? release : undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** Where configured kernel downloads are kept, under the state dir's cache. */
export function kernelDownloads(cacheDir: string): string {
  return path.join(cacheDir, "vm", "kernels");
}

/** The kernel to boot: the configured download (fetched and verified if need be), else findGuestKernel's. */
export async function guestKernel(cacheDir: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  return (await downloadedKernel(kernelDownloads(cacheDir), env)) ?? findGuestKernel(env);
}

const MAX_KERNEL_BYTES = 512 << 20;
const DOWNLOAD_TIMEOUT_MS = 10 * 60_000;
const LOCK_POLL_MS = 100;
/** A waiter outlasts a download that uses all of its own time. */
const LOCK_WAIT_MS = 2 * DOWNLOAD_TIMEOUT_MS + 60_000;

function refused(message: string, hint: string): PaddockError {
  return new PaddockError("E_RUNTIME_UNAVAILABLE", message, hint);
}

/**
 * The configured kernel download, in `dir` under its digest: fetched once, kept only when its
 * sha256 is the configured one (a temp file renamed into place after an fsync), under a file
 * lock so that two agents or two boots never write it at once. Undefined when none is set.
 */
export async function downloadedKernel(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const url = env.PADDOCK_KERNEL_URL;
  if (!url) return undefined;
  const digest = env.PADDOCK_KERNEL_SHA256?.toLowerCase();
  if (!digest || !/^[0-9a-f]{64}$/.test(digest)) {
    throw refused("PADDOCK_KERNEL_URL is set without a PADDOCK_KERNEL_SHA256 (64 hex digits)", "give the kernel's sha256 too: a download is never booted unverified");
  }
  if (!/^https?:\/\//.test(url)) throw refused(`PADDOCK_KERNEL_URL ${url} is not an http(s) URL`, "give an http:// or https:// URL");
  try {
    return await fetchVerified(dir, url, digest);
  } catch (err) {
    throw stateDirFailure(err, `cannot keep the guest kernel downloaded from ${url}`);
  }
}

async function fetchVerified(dir: string, url: string, digest: string): Promise<string> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const target = path.join(dir, digest);
  // Checked before each boot; hashed again only if the file changed since (a damaged copy is fetched again).
  const verified = () => fs.existsSync(target) && sha256OfFileCached(target) === digest;
  if (verified()) return target;
  const lock = await waitForLock(path.join(dir, `${digest}.lock`));
  try {
    if (verified()) return target; // another agent or boot fetched it meanwhile
    // What a download killed half-way left (the lock is ours: nobody is writing them).
    for (const name of fs.readdirSync(dir)) if (name.startsWith(`${digest}.`) && name.endsWith(".tmp")) fs.rmSync(path.join(dir, name), { force: true });
    const temp = `${target}.${process.pid}.tmp`;
    try {
      await fetchTo(url, temp);
      const got = await sha256OfFileAsync(temp);
      if (got !== digest) throw refused(`the kernel downloaded from ${url} has sha256 ${got}, not the configured ${digest}`, "check PADDOCK_KERNEL_URL and PADDOCK_KERNEL_SHA256; nothing was kept");
      fs.renameSync(temp, target);
      const folder = fs.openSync(dir, "r");
      fs.fsyncSync(folder);
      fs.closeSync(folder);
      return target;
    } finally {
      fs.rmSync(temp, { force: true });
    }
  } finally {
    fs.closeSync(lock);
  }
}

/** The lock without blocking the agent: polled, since flock(2) would hold the event loop. */
async function waitForLock(file: string): Promise<number> {
  for (const deadline = Date.now() + LOCK_WAIT_MS; ; ) {
    const fd = tryExclusiveLock(file);
    if (fd !== "busy") return fd;
    if (Date.now() > deadline) throw refused(`another process has held ${file} for ${Math.round(LOCK_WAIT_MS / 60_000)} minutes`, "is a download stuck? see the agent log");
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
}

async function fetchTo(url: string, file: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS), redirect: "follow" });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw refused(`cannot download the guest kernel from ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, "check that the URL can be reached from this machine");
  }
  if (!response.ok || !response.body) throw refused(`cannot download the guest kernel from ${url}: HTTP ${response.status}`, "check the URL");
  // Readable by QEMU, which runs as the sandbox's owner and gets it by descriptor (its folder stays closed).
  const out = fs.openSync(file, "w", 0o644);
  let size = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > MAX_KERNEL_BYTES) throw refused(`the guest kernel at ${url} is over ${MAX_KERNEL_BYTES >> 20} MiB`, "is the URL a kernel (a bzImage)?");
      fs.writeSync(out, chunk);
    }
    fs.fchmodSync(out, 0o644);
    fs.fsyncSync(out);
  } catch (err) {
    throw stateDirFailure(err, `the download of the guest kernel from ${url} failed`, "E_RUNTIME_UNAVAILABLE", "try again; check that the URL can be reached");
  } finally {
    fs.closeSync(out);
  }
}
