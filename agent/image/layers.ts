/**
 * OCI image layers made ready to be overlay lower layers: a layer tarball unpacked once, its
 * OCI whiteouts (`.wh.NAME` deletes NAME, `.wh..wh..opq` hides what lower layers have in that
 * directory) turned into overlayfs's own (a 0/0 character device; the `trusted.overlay.opaque`
 * attribute). Stacked as `lowerdir=top:...:bottom`, they give the image's file system.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import { lsetxattr, errnoName } from "../sys/libc";
import { DEFAULT_PATH } from "../sys/default-path";
import { whyItFailed } from "../log/logfmt";

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

/**
 * Unpacks `blob` (a tar, gzip'd or not) into `target`, which must not exist yet: first into a
 * temporary sibling, renamed into place only when whole, so a crash leaves nothing half-made.
 * Owners, modes and device nodes are kept (as root); tar runs confined (untarConfined).
 */
export async function unpackLayer(blob: string, target: string): Promise<void> {
  const temp = `${target}.tmp`;
  fs.rmSync(temp, { recursive: true, force: true });
  fs.mkdirSync(temp, { recursive: true, mode: 0o755 });
  try {
    const tar = await untarConfined(blob, temp, ["-p", "--numeric-owner"], TAR_CAPABILITIES);
    if (tar.status !== 0) throw new PaddockError("E_IMAGE", `a layer of the image cannot be unpacked: ${whyItFailed(tar)}`, "the image archive is damaged; pull or import it again");
    await convertWhiteouts(temp);
    fs.renameSync(temp, target);
  } catch (err) {
    fs.rmSync(temp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * What tar needs to give a layer's files their owners, modes and device nodes, and nothing
 * more (no CAP_SYS_ADMIN: it could not even remount what it sees).
 */
export const TAR_CAPABILITIES: readonly string[] = ["CAP_CHOWN", "CAP_FOWNER", "CAP_FSETID", "CAP_MKNOD", "CAP_DAC_OVERRIDE"];

/**
 * `tar -x` of `archive` into `into`, under bubblewrap: it sees the archive (read-only), the
 * folder it fills and /usr (read-only), and no /proc, so a hostile archive's symlinks and `..`
 * names cannot make it write anywhere else. As root, no user namespace: in one, only uid 0
 * would be mapped and the owners of an image's files (a group `shadow`, a user 1000) could
 * not be given.
 */
export async function untarConfined(archive: string, into: string, options: string[], capabilities: readonly string[]): Promise<{ status: number | null; stderr: string; error?: Error }> {
  const isRoot = process.getuid?.() === 0;
  const confined = [
    ...(isRoot ? ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"] : ["--unshare-all"]),
    "--die-with-parent", "--new-session",
    ...(isRoot ? ["--cap-drop", "ALL", ...capabilities.flatMap((cap) => ["--cap-add", cap])] : []),
    "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
    "--dev", "/dev", "--ro-bind", archive, "/archive", "--bind", into, "/out",
    "tar", "-x", ...options, "-f", "/archive", "-C", "/out",
  ];
  // Not spawnSync: a big layer takes seconds, and the agent serves everyone meanwhile.
  const result = await new Promise<{ status: number | null; stderr: string; error?: Error }>((resolve) => {
    const child = spawn("bwrap", confined, { stdio: ["ignore", "ignore", "pipe"], env: { PATH: DEFAULT_PATH } });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr = (stderr + text).slice(-8192)));
    child.once("error", (error) => resolve({ status: null, stderr, error }));
    child.once("close", (status) => resolve({ status, stderr }));
  });
  if (result.error && (result.error as NodeJS.ErrnoException).code === "ENOENT") {
    throw new PaddockError("E_RUNTIME_UNAVAILABLE", "cannot unpack images: bubblewrap (bwrap) is not installed", "apt-get install bubblewrap (npm run setup does)");
  }
  return result;
}

/** OCI whiteouts below `root` become overlayfs whiteouts (walked without blocking the agent: a layer can hold 100,000 files). */
export async function convertWhiteouts(root: string): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fs.promises.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.name === OPAQUE) {
        fs.rmSync(full, { recursive: true, force: true });
        const errno = lsetxattr(dir, "trusted.overlay.opaque", Buffer.from("y"));
        if (errno !== 0) throw new PaddockError("E_IMAGE", `cannot mark ${path.relative(root, dir) || "/"} opaque: ${errnoName(errno)}`, "unpacking image layers needs root (trusted.* attributes)");
      } else if (entry.name.startsWith(WHITEOUT)) {
        const name = entry.name.slice(WHITEOUT.length);
        // `.wh.` and `.wh..` would name the layer's own folder or the one above it.
        if (name === "" || name === "." || name === "..") throw new PaddockError("E_IMAGE", `a layer has a whiteout named ${JSON.stringify(entry.name)} in ${path.relative(root, dir) || "/"}, which names no file`, "the image is damaged or hostile; use another image");
        fs.rmSync(full, { recursive: true, force: true });
        const hidden = path.join(dir, name);
        fs.rmSync(hidden, { recursive: true, force: true });
        const mknod = spawnSync("mknod", [hidden, "c", "0", "0"], { encoding: "utf8", env: { PATH: DEFAULT_PATH } });
        if (mknod.status !== 0) throw new PaddockError("E_IMAGE", `cannot make a whiteout for ${path.relative(root, hidden)}: ${whyItFailed(mknod)}`, "unpacking image layers needs root (device nodes)");
      } else if (entry.isDirectory()) {
        await walk(full);
      }
    }
  };
  await walk(root);
}
