/**
 * Importing an image from an OCI image layout (a folder, or a tar of one) or a `docker save`
 * tarball: every blob's digest is checked before it is kept, layers are unpacked once per
 * digest (images share them), and the image is recorded only when all of it is in place.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError, stateDirFailure } from "../../protocol/errors";
import { writeDurably } from "../state/durable";
import { sha256OfFileAsync } from "../sys/digest";
import { unpackLayer, untarConfined } from "./layers";
import { whyItFailed } from "../log/logfmt";

export interface ImageRecord {
  name: string;
  /** sha256:… of the manifest (OCI) or of the config (docker save). */
  digest: string;
  /** Layer digests, bottom first; each unpacked under layers/<hex>. */
  layers: string[];
  config: unknown;
  importedAt: string;
}

interface Descriptor {
  digest: string;
  mediaType?: string;
  platform?: { os?: string; architecture?: string };
}

/** This machine's architecture as OCI names it. */
const ARCHITECTURE = ({ x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le", s390x: "s390x" } as Record<string, string>)[process.arch] ?? process.arch;

/**
 * The manifest for this machine among an index's: linux on this architecture, else the first
 * that names no platform (a plain image's index, or an index of such). Attestations and other
 * platforms are not images to run here.
 */
export function pickManifest(manifests: Descriptor[]): Descriptor | undefined {
  const ours = manifests.find((m) => m.platform?.os === "linux" && m.platform.architecture === ARCHITECTURE);
  if (ours) return ours;
  return manifests.find((m) => !m.platform);
}

async function sha256File(file: string): Promise<string> {
  return `sha256:${await sha256OfFileAsync(file)}`;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const MAX_JSON_BYTES = 16 << 20;

function bad(message: string): PaddockError {
  return new PaddockError("E_IMAGE", message, "check the archive (an OCI image layout, or `docker save` output) and import it again");
}

export class ImageStore {
  readonly blobs: string;
  readonly layers: string;
  private readonly index: string;
  private readonly tmp: string;
  /** What the import under way has added to the store so far (removed again if it fails). */
  private added: string[] = [];
  /** Layer digests (hex) the import under way stands on, new or not: collect leaves them alone. */
  private readonly pinned = new Set<string>();
  /** Imports run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly root: string) {
    this.blobs = path.join(root, "blobs", "sha256");
    this.layers = path.join(root, "layers");
    this.index = path.join(root, "images.json");
    this.tmp = path.join(root, "tmp");
    // Scratch and half-made entries an agent killed during an import or a pull left behind.
    fs.rmSync(this.tmp, { recursive: true, force: true });
    for (const dir of [this.blobs, this.layers, this.tmp]) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const dir of [this.blobs, this.layers]) {
      for (const name of fs.readdirSync(dir)) if (name.endsWith(".tmp")) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    }
  }

  /** A fresh scratch folder inside the store (same file system), for the caller to remove. */
  scratch(prefix: string): string {
    return fs.mkdtempSync(path.join(this.tmp, prefix));
  }

  list(): ImageRecord[] {
    try {
      return JSON.parse(fs.readFileSync(this.index, "utf8")) as ImageRecord[];
    } catch {
      return [];
    }
  }

  /**
   * Forgets an image; layers and blobs that no other image, and nothing in `keep` (layer
   * digests sandboxes still use), needs go too. Returns whether it was there.
   */
  remove(name: string, keep: Set<string> = new Set()): boolean {
    const images = this.list();
    const kept = images.filter((i) => i.name !== name);
    if (kept.length === images.length) return false;
    writeDurably(this.index, JSON.stringify(kept, null, 2));
    this.collect(keep);
    return true;
  }

  /** Removes layers and blobs that no image and nothing in `keep` uses. */
  collect(keep: Set<string> = new Set()): void {
    const used = new Set([...this.list().flatMap((i) => i.layers), ...keep].map((d) => d.slice("sha256:".length)));
    const keepIt = (name: string) => used.has(name) || this.pinned.has(name.replace(/\.tmp$/, ""));
    for (const name of fs.readdirSync(this.layers)) if (!keepIt(name)) fs.rmSync(path.join(this.layers, name), { recursive: true, force: true });
    for (const name of fs.readdirSync(this.blobs)) if (!keepIt(name)) fs.rmSync(path.join(this.blobs, name), { force: true });
  }

  /** Where a layer's unpacked tree is (for overlay's lowerdir). */
  layerDir(digest: string): string {
    return path.join(this.layers, digest.slice("sha256:".length));
  }

  /** Imports `source` (a folder or a tar file) as `name`; the store is unchanged if anything is wrong. */
  import(source: string, name: string): Promise<ImageRecord> {
    const run = this.queue.then(() => this.importNow(source, name));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async importNow(source: string, name: string): Promise<ImageRecord> {
    const st = fs.statSync(source, { throwIfNoEntry: false });
    if (!st) throw bad(`${source} does not exist`);
    const work = fs.mkdtempSync(path.join(this.tmp, "import-"));
    try {
      let dir = source;
      if (!st.isDirectory()) {
        dir = path.join(work, "archive");
        fs.mkdirSync(dir);
        // No capabilities: an archive's own files need no owners, modes or device nodes.
        const tar = await untarConfined(source, dir, ["--no-same-owner", "--no-same-permissions"], []);
        if (tar.status !== 0) throw bad(`${source} is not a readable tar archive: ${whyItFailed(tar)}`);
      }
      const record = fs.existsSync(path.join(dir, "index.json")) ? await this.fromOciLayout(dir, name) : fs.existsSync(path.join(dir, "manifest.json")) ? await this.fromDockerSave(dir, name) : undefined;
      if (!record) throw bad(`${source} is neither an OCI image layout (index.json) nor a docker save archive (manifest.json)`);
      const images = this.list().filter((i) => i.name !== name);
      writeDurably(this.index, JSON.stringify([...images, record], null, 2));
      return record;
    } catch (err) {
      // Blobs and layers this import brought in go with it: the store is as it was.
      for (const made of this.added.reverse()) fs.rmSync(made, { recursive: true, force: true });
      throw stateDirFailure(err, `cannot import ${source} (nothing of it was kept)`);
    } finally {
      this.added = [];
      this.pinned.clear();
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  private async fromOciLayout(dir: string, name: string): Promise<ImageRecord> {
    let index = this.readJson(this.inside(dir, "index.json")) as { manifests?: Descriptor[] };
    let manifestDesc: Descriptor | undefined;
    let manifest: { config?: Descriptor; layers?: Descriptor[]; manifests?: Descriptor[] } = {};
    // An index may point at another (a multi-platform image, `docker save` of Docker 25+): three reads at most.
    for (let depth = 0; depth < 3; depth++) {
      const platforms = (index.manifests ?? []).map((m) => `${m.platform?.os ?? "?"}/${m.platform?.architecture ?? "?"}`);
      manifestDesc = pickManifest(index.manifests ?? []);
      if (!manifestDesc || !DIGEST.test(manifestDesc.digest)) throw bad(platforms.length ? `the image has no manifest for linux/${ARCHITECTURE} (it has ${platforms.join(", ")})` : "index.json names no manifest");
      manifest = this.readJson(await this.verifiedBlob(dir, manifestDesc.digest)) as typeof manifest;
      if (!Array.isArray(manifest.manifests)) break;
      index = manifest;
    }
    if (!manifestDesc) throw bad("index.json names no manifest");
    if (!manifest.config || !Array.isArray(manifest.layers)) throw bad("the manifest has no config or layers");
    const config = this.readJson(await this.verifiedBlob(dir, manifest.config.digest));
    for (const layer of manifest.layers) if (DIGEST.test(layer.digest)) this.pinned.add(layer.digest.slice("sha256:".length));
    // Every blob is checked before any is kept: a corrupt archive leaves the store as it was.
    const verified: { file: string; digest: string }[] = [];
    for (const layer of manifest.layers) verified.push({ file: await this.verifiedBlob(dir, layer.digest), digest: layer.digest });
    const layers: string[] = [];
    for (const { file, digest } of verified) layers.push(await this.keepLayer(file, digest));
    return { name, digest: manifestDesc.digest, layers, config, importedAt: new Date().toISOString() };
  }

  private async fromDockerSave(dir: string, name: string): Promise<ImageRecord> {
    const manifest = (this.readJson(this.inside(dir, "manifest.json")) as { Config?: string; Layers?: string[] }[])[0];
    if (!manifest?.Config || !Array.isArray(manifest.Layers)) throw bad("manifest.json names no config or layers");
    const configFile = this.inside(dir, manifest.Config);
    const config = this.readJson(configFile) as { rootfs?: { diff_ids?: string[] } };
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.Layers.length) throw bad("the config's diff_ids do not match the layers");
    for (const id of diffIds) if (DIGEST.test(id)) this.pinned.add(id.slice("sha256:".length));
    // docker save's layers are uncompressed: their digests are the config's diff_ids.
    const verified: { file: string; digest: string }[] = [];
    for (const [i, layer] of manifest.Layers.entries()) {
      const file = this.inside(dir, layer);
      const digest = await sha256File(file);
      if (digest !== diffIds[i]) throw bad(`layer ${layer} has digest ${digest}, not ${diffIds[i]}: the archive is corrupt`);
      verified.push({ file, digest });
    }
    const layers: string[] = [];
    for (const { file, digest } of verified) layers.push(await this.keepLayer(file, digest));
    return { name, digest: await sha256File(configFile), layers, config, importedAt: new Date().toISOString() };
  }

  /** A blob of the layout, checked against its digest. */
  private async verifiedBlob(dir: string, digest: string): Promise<string> {
    if (!DIGEST.test(digest)) throw bad(`${digest} is not a sha256 digest`);
    const file = this.inside(dir, path.join("blobs", "sha256", digest.slice("sha256:".length)));
    const actual = await sha256File(file);
    if (actual !== digest) throw bad(`blob ${digest} has digest ${actual}: the archive is corrupt`);
    return file;
  }

  /** Keeps a verified layer blob and unpacks it, once per digest. */
  private async keepLayer(file: string, digest: string): Promise<string> {
    const blob = path.join(this.blobs, digest.slice("sha256:".length));
    if (!fs.existsSync(blob)) {
      this.added.push(blob, `${blob}.tmp`);
      await fs.promises.copyFile(file, `${blob}.tmp`);
      fs.renameSync(`${blob}.tmp`, blob);
    }
    const dir = this.layerDir(digest);
    if (!fs.existsSync(dir)) {
      this.added.push(dir, `${dir}.tmp`);
      await unpackLayer(blob, dir);
    }
    return digest;
  }

  /** A file of the archive, which must really be inside it (a symlink out of it is refused). */
  private inside(dir: string, rel: string): string {
    const file = path.resolve(dir, rel);
    let real: string;
    try {
      real = fs.realpathSync(file);
    } catch {
      throw bad(`${rel} is missing from the archive`);
    }
    if (!real.startsWith(`${fs.realpathSync(dir)}${path.sep}`) || !fs.statSync(real).isFile()) throw bad(`${rel} is not a file inside the archive`);
    return real;
  }

  /** A JSON file of the archive (a regular file, `inside` checked it), of a sane size. */
  private readJson(file: string): unknown {
    if (fs.statSync(file).size > MAX_JSON_BYTES) throw bad(`${path.basename(file)} is over ${MAX_JSON_BYTES >> 20} MiB: not an image's JSON`);
    try {
      return JSON.parse(fs.readFileSync(file, "utf8"));
    } catch {
      throw bad(`${path.basename(file)} is not valid JSON`);
    }
  }
}
