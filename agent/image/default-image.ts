/**
 * The default image, made here without a network: Debian's static busybox and its applets as
 * one layer, written as an OCI image layout and imported. The tarball is reproducible (sorted
 * names, fixed times and owners), so the same busybox always gives the same digest, and a
 * build whose digest is already in the store is not imported again.
 */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import { DEFAULT_PATH } from "../sys/default-path";
import type { ImageRecord, ImageStore } from "./oci-import";
import { whyItFailed } from "../log/logfmt";

export const DEFAULT_IMAGE = "paddock/busybox:latest";
const BUSYBOX = "/bin/busybox";
/** Reproducible: any fixed time will do. */
const EPOCH = "2000-01-01 00:00:00Z";

function run(command: string, args: string[], what: string): string {
  const result = spawnSync(command, args, { encoding: "utf8", env: { PATH: DEFAULT_PATH } });
  if (result.status !== 0) throw new PaddockError("E_IMAGE", `cannot build the default image: ${what} failed: ${whyItFailed(result)}`, "install Debian's busybox-static (npm run setup does)");
  return result.stdout;
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Builds the default image into `work` (an OCI layout) and imports it; returns the image. */
export function buildDefaultImage(store: ImageStore, work: string): Promise<ImageRecord> {
  if (!fs.existsSync(BUSYBOX)) throw new PaddockError("E_IMAGE", `the default image is made from ${BUSYBOX}, which is missing`, "install Debian's busybox-static (npm run setup does)");
  const root = path.join(work, "rootfs");
  for (const dir of ["bin", "etc", "tmp", "workspace", "proc", "dev", "sys", "root"]) fs.mkdirSync(path.join(root, dir), { recursive: true, mode: dir === "tmp" ? 0o1777 : 0o755 });
  fs.chmodSync(path.join(root, "tmp"), 0o1777);
  fs.copyFileSync(BUSYBOX, path.join(root, "bin", "busybox"));
  fs.chmodSync(path.join(root, "bin", "busybox"), 0o755);
  for (const applet of run(BUSYBOX, ["--list"], "busybox --list").split("\n").filter(Boolean)) {
    if (applet !== "busybox") fs.symlinkSync("busybox", path.join(root, "bin", applet));
  }
  fs.writeFileSync(path.join(root, "etc", "os-release"), 'NAME="Paddock busybox"\nID=paddock-busybox\nPRETTY_NAME="Paddock default image (Debian busybox-static)"\n');
  fs.writeFileSync(path.join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  fs.writeFileSync(path.join(root, "etc", "group"), "root:x:0:\n");
  // Modes of their own, not the agent's umask's: the same busybox must give the same digest anywhere.
  for (const dir of ["", "bin", "etc", "workspace", "proc", "dev", "sys", "root"]) fs.chmodSync(path.join(root, dir), 0o755);
  for (const file of ["os-release", "passwd", "group"]) fs.chmodSync(path.join(root, "etc", file), 0o644);

  const layerFile = path.join(work, "layer.tar");
  run("tar", ["-cf", layerFile, "--sort=name", `--mtime=${EPOCH}`, "--owner=0", "--group=0", "--numeric-owner", "--format=posix", "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "-C", root, "."], "tar");
  const layer = fs.readFileSync(layerFile);
  const layout = path.join(work, "layout");
  const blobs = path.join(layout, "blobs", "sha256");
  fs.mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer) => {
    fs.writeFileSync(path.join(blobs, sha256(data)), data);
    return { digest: `sha256:${sha256(data)}`, size: data.length };
  };
  const layerDigest = put(layer);
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", config: { Env: ["PATH=/bin"], WorkingDir: "/workspace", Cmd: ["/bin/sh"] }, rootfs: { type: "layers", diff_ids: [layerDigest.digest] } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: "application/vnd.oci.image.config.v1+json", ...put(config) }, layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layerDigest }] }));
  const manifestDescriptor = put(manifest);
  fs.writeFileSync(path.join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifestDescriptor }] }));
  fs.writeFileSync(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const existing = store.list().find((i) => i.name === DEFAULT_IMAGE);
  if (existing?.digest === manifestDescriptor.digest) return Promise.resolve(existing);
  return store.import(layout, DEFAULT_IMAGE);
}
