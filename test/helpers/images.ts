/** OCI image layouts made here from folders of files, for tests of the image store and containers. */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";

const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** A file's contents, or a symlink's target. */
export type LayerEntry = string | Buffer | { symlink: string };

/**
 * A layer's tar (gzip'd if asked) from a map of paths to contents; ".wh." names are whiteouts.
 * The same files give the same bytes at any time (sorted names, times at the epoch), so two
 * images made of one layer share its digest.
 */
export function layerTar(base: string, name: string, files: Record<string, LayerEntry>, gzip = false): Buffer {
  const dir = path.join(base, `${name}-tree`);
  fs.mkdirSync(dir, { recursive: true });
  for (const [rel, entry] of Object.entries(files)) {
    const target = path.join(dir, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (typeof entry === "string" || Buffer.isBuffer(entry)) fs.writeFileSync(target, entry, { mode: 0o755 });
    else fs.symlinkSync(entry.symlink, target);
  }
  const tar = execFileSync("tar", ["-cf", "-", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C", dir, "."], { maxBuffer: 1 << 30 });
  return gzip ? gzipSync(tar) : tar;
}

/** An OCI image layout in `dir` with these layers, bottom first. */
export function ociLayoutOf(dir: string, layers: { tar: Buffer; gzip?: boolean }[], config: Record<string, unknown> = {}): string {
  const blobs = path.join(dir, "blobs", "sha256");
  fs.mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer) => {
    fs.writeFileSync(path.join(blobs, sha(data)), data);
    return { digest: `sha256:${sha(data)}`, size: data.length };
  };
  const configBlob = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config, rootfs: { type: "layers", diff_ids: [] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...put(configBlob) },
      layers: layers.map((l) => ({ mediaType: `application/vnd.oci.image.layer.v1.tar${l.gzip ? "+gzip" : ""}`, ...put(l.tar) })),
    }),
  );
  fs.writeFileSync(path.join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...put(manifest) }] }));
  fs.writeFileSync(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  return dir;
}

/** Debian's static busybox and the applets a test uses, as files of a layer. */
export function busyboxFiles(applets = ["sh", "cat", "ls", "echo", "sleep", "stty", "ip", "id", "pwd", "rm", "seq", "ps", "wc", "grep", "test", "true"]): Record<string, LayerEntry> {
  const files: Record<string, LayerEntry> = { "bin/busybox": fs.readFileSync("/bin/busybox") };
  for (const applet of applets) files[`bin/${applet}`] = { symlink: "busybox" };
  return files;
}
