/**
 * OCI image layers made ready to be overlay lower layers: a layer tarball unpacked once, its
 * OCI whiteouts (`.wh.NAME` deletes NAME, `.wh..wh..opq` hides what lower layers have in that
 * directory) turned into overlayfs's own (a 0/0 character device; the `trusted.overlay.opaque`
 * attribute). Stacked as `lowerdir=top:...:bottom`, they give the image's file system.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../protocol/errors";
import { lsetxattr, errnoName } from "../sys/libc";
import { DEFAULT_PATH } from "../runtime/process-runtime";

const WHITEOUT = ".wh.";
const OPAQUE = ".wh..wh..opq";

/**
 * Unpacks `blob` (a tar, gzip'd or not) into `target`, which must not exist yet: first into a
 * temporary sibling, renamed into place only when whole, so a crash leaves nothing half-made.
 * Owners, modes and device nodes are kept (as root); tar runs confined (untarConfined).
 */
export function unpackLayer(blob: string, target: string): void {
  const temp = `${target}.tmp`;
  fs.rmSync(temp, { recursive: true, force: true });
  fs.mkdirSync(temp, { recursive: true, mode: 0o755 });
  const tar = untarConfined(blob, temp, ["-p", "--numeric-owner"]);
  if (tar.status !== 0) {
    fs.rmSync(temp, { recursive: true, force: true });
    throw new PaddockError("E_IMAGE", `a layer of the image cannot be unpacked: ${tar.stderr.trim().split("\n").pop() || tar.error?.message || `tar exit code ${tar.status}`}`, "the image archive is damaged; pull or import it again");
  }
  convertWhiteouts(temp);
  fs.renameSync(temp, target);
}

/**
 * `tar -x` of `archive` into `into`, under bubblewrap: it sees the archive (read-only), the
 * folder it fills and /usr (read-only), so a hostile archive's symlinks and `..` names cannot
 * make it write anywhere else.
 */
export function untarConfined(archive: string, into: string, options: string[]): ReturnType<typeof spawnSync> & { stderr: string } {
  const confined = [
    "--unshare-all", "--die-with-parent", "--cap-add", "ALL",
    "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
    "--proc", "/proc", "--dev", "/dev", "--ro-bind", archive, "/archive", "--bind", into, "/out",
    "tar", "-x", ...options, "-f", "/archive", "-C", "/out",
  ];
  return spawnSync("bwrap", confined, { encoding: "utf8", env: { PATH: DEFAULT_PATH } });
}

/** OCI whiteouts below `root` become overlayfs whiteouts. */
export function convertWhiteouts(root: string): void {
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.name === OPAQUE) {
        fs.rmSync(full, { force: true });
        const errno = lsetxattr(dir, "trusted.overlay.opaque", Buffer.from("y"));
        if (errno !== 0) throw new PaddockError("E_IMAGE", `cannot mark ${path.relative(root, dir) || "/"} opaque: ${errnoName(errno)}`, "unpacking image layers needs root (trusted.* attributes)");
      } else if (entry.name.startsWith(WHITEOUT)) {
        fs.rmSync(full, { recursive: true, force: true });
        const hidden = path.join(dir, entry.name.slice(WHITEOUT.length));
        fs.rmSync(hidden, { recursive: true, force: true });
        const mknod = spawnSync("mknod", [hidden, "c", "0", "0"], { encoding: "utf8", env: { PATH: DEFAULT_PATH } });
        if (mknod.status !== 0) throw new PaddockError("E_IMAGE", `cannot make a whiteout for ${path.relative(root, hidden)}: ${mknod.stderr.trim()}`, "unpacking image layers needs root (device nodes)");
      } else if (entry.isDirectory()) {
        walk(full);
      }
    }
  };
  walk(root);
}
