/**
 * Images as the agent's methods and sandboxes see them: the store (made on first use, so a
 * rootless agent that never sees an image never gets one), the default image (built on the
 * first container that needs it), pulls from registries with skopeo, and the rule that an
 * image a sandbox uses cannot be removed.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import { ImageName, type ImageSummary } from "../../protocol/methods";
import { DEFAULT_PATH } from "../sys/default-path";
import { buildDefaultImage, DEFAULT_IMAGE } from "./default-image";
import { ImageStore, type ImageRecord } from "./oci-import";
import { lastMessage } from "../log/logfmt";
import { NOT_INSTALLED_EXIT, dieWithAgent } from "../process/die-with-agent";

export type ImageProgress = (params: { name: string; step: string; done?: boolean }) => void;

export function summary(image: ImageRecord): ImageSummary {
  return { name: image.name, digest: image.digest, layers: image.layers.length, importedAt: image.importedAt };
}

const PULL_TIMEOUT_MS = 30 * 60_000;

export class Images {
  private opened: ImageStore | undefined;
  /** One pull or build per name at a time; a second caller waits for the first. */
  private readonly jobs = new Map<string, Promise<ImageRecord>>();

  constructor(
    private readonly root: string,
    private readonly progress: ImageProgress,
    private readonly sandboxes: {
      /** Sandboxes made from the image of this digest (its removal is refused). */
      usersOf(digest: string): string[];
      /** Layer digests that sandboxes' containers stand on: never removed under them. */
      layersInUse(): Set<string>;
    },
  ) {}

  get store(): ImageStore {
    this.opened ??= new ImageStore(this.root);
    return this.opened;
  }

  list(): ImageRecord[] {
    return this.store.list();
  }

  /** Imports as `name`; an image that had the name before loses it (its layers go if nothing uses them). */
  async import(source: string, name: string): Promise<ImageRecord> {
    const image = await this.store.import(source, name);
    this.store.collect(this.sandboxes.layersInUse());
    return image;
  }

  /** After a container sandbox is deleted: layers only it still held go. */
  collect(): void {
    if (this.opened) this.store.collect(this.sandboxes.layersInUse());
  }

  remove(name: string): boolean {
    const image = this.list().find((i) => i.name === name);
    if (!image) return false;
    // Another name for the same image keeps the layers: only the last name is guarded.
    const sameDigest = this.list().filter((i) => i.digest === image.digest);
    const users = sameDigest.length === 1 ? this.sandboxes.usersOf(image.digest) : [];
    if (users.length > 0) {
      throw new PaddockError("E_IMAGE_IN_USE", `image ${name} is used by sandbox${users.length > 1 ? "es" : ""} ${users.join(", ")}`, "delete those sandboxes first");
    }
    return this.store.remove(name, this.sandboxes.layersInUse());
  }

  /** The image a new container sandbox gets: the named one, or the default image (built if missing). */
  async resolve(name: string | undefined): Promise<ImageRecord> {
    if (name === undefined) return this.defaultImage();
    const image = this.list().find((i) => i.name === name);
    if (!image) {
      throw new PaddockError("E_NOT_FOUND", `no image ${name}`, "image/list shows the images; image/pull or image/import adds one (paddock image pull|import)");
    }
    return image;
  }

  layerDirs(layers: string[]): string[] {
    return layers.map((digest) => this.store.layerDir(digest));
  }

  /** Builds (or finds) the default image; the first build is reported as progress. */
  defaultImage(): Promise<ImageRecord> {
    const existing = this.list().find((i) => i.name === DEFAULT_IMAGE);
    if (existing) return Promise.resolve(existing);
    return this.once(DEFAULT_IMAGE, async () => {
      this.progress({ name: DEFAULT_IMAGE, step: "building the default image from Debian's busybox-static" });
      try {
        return await this.rebuildDefault();
      } finally {
        this.progress({ name: DEFAULT_IMAGE, step: "built", done: true });
      }
    });
  }

  /** The default image as it is now: rebuilt from this machine's busybox when that changed. */
  async rebuildDefault(): Promise<ImageRecord> {
    const work = this.store.scratch("default-");
    try {
      return await buildDefaultImage(this.store, work);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  /** Copies an image from a registry with skopeo into an OCI layout, then imports it (digests checked). */
  pull(reference: string, name: string, insecure: boolean): Promise<ImageRecord> {
    if (!ImageName.safeParse(name).success) {
      return Promise.reject(new PaddockError("E_INVALID_PARAMS", `${JSON.stringify(name)} cannot be an image's name`, "give a name: lower-case letters, digits and . _ / : @ - (e.g. tools:1)", { field: "name" }));
    }
    return this.once(`pull ${reference} as ${name}`, async () => {
      const work = this.store.scratch("pull-");
      try {
        const policy = path.join(work, "policy.json");
        // The digests are what Paddock checks; signatures are a registry's own business.
        fs.writeFileSync(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
        const layout = path.join(work, "layout");
        const args = ["copy", "--policy", policy, "--retry-times", "2", ...(insecure ? ["--src-tls-verify=false"] : []), `docker://${reference}`, `oci:${layout}:image`];
        await this.runSkopeo(args, name);
        this.progress({ name, step: "unpacking layers" });
        return await this.import(layout, name);
      } finally {
        fs.rmSync(work, { recursive: true, force: true });
        this.progress({ name, step: "finished", done: true });
      }
    });
  }

  private runSkopeo(args: string[], name: string): Promise<void> {
    return new Promise((resolve, reject) => {
      // It ends with the agent (a pull is never left running for nobody).
      const child = spawn(...dieWithAgent("skopeo", args), { stdio: ["ignore", "pipe", "pipe"], env: { PATH: DEFAULT_PATH, HOME: "/nonexistent" } });
      let stderr = "";
      const timer = setTimeout(() => child.kill("SIGKILL"), PULL_TIMEOUT_MS);
      child.stdout.setEncoding("utf8").on("data", (text: string) => {
        for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) this.progress({ name, step: line });
      });
      child.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(new PaddockError("E_PULL", `cannot run skopeo: ${err.message}`, "install skopeo (apt-get install skopeo; npm run setup does)"));
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (code === 0) return resolve();
        if (code === NOT_INSTALLED_EXIT && /failed to execute skopeo/.test(stderr)) return reject(new PaddockError("E_PULL", "cannot run skopeo: it is not installed", "install skopeo (apt-get install skopeo; npm run setup does)"));
        const why = lastMessage(stderr) || `skopeo ended with ${signal ?? `code ${code}`}`;
        reject(new PaddockError("E_PULL", `cannot pull the image: ${why}`, pullHint(why)));
      });
    });
  }

  private once(name: string, job: () => Promise<ImageRecord>): Promise<ImageRecord> {
    const running = this.jobs.get(name);
    if (running) return running;
    const started = job().finally(() => this.jobs.delete(name));
    this.jobs.set(name, started);
    return started;
  }
}

function pullHint(why: string): string {
  if (/http response to HTTPS client|certificate|x509/i.test(why)) return "a registry on this machine or a trusted network without TLS: pull with insecure (paddock image pull --insecure)";
  if (/manifest unknown|not found|name unknown/i.test(why)) return "check the image's name and tag";
  if (/unauthorized|denied|authentication/i.test(why)) return "the registry refuses anonymous pulls of this image";
  return "check the reference and that the registry can be reached from this machine";
}
