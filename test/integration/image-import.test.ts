/**
 * The image store: an OCI image layout and a `docker save` archive, made here by hand, are
 * imported with every digest checked; their layers, stacked as overlay lower layers, give the
 * image's file system, whiteouts and opaque directories included; images share layers; a
 * corrupt archive is refused and leaves the store as it was.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli, tempDir } from "../helpers/agent-process";
import { ImageStore } from "../../agent/image/oci-import";
import { refused, startFixture, waitFor } from "../helpers/sandbox-fixture";
import { descendants } from "../../agent/process/process-tree";
import type { PaddockError } from "../../protocol/errors";
import { layerTar, ociLayoutOf } from "../helpers/images";

const readComm = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
};
/** The parent of a process (field 4 of /proc/PID/stat, after the command's name in parentheses). */
const parentPid = (pid: number) => {
  try {
    return Number(fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ")[1]);
  } catch {
    return undefined;
  }
};
const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Two layers: the second deletes a file (.wh.) and makes a folder opaque (.wh..wh..opq). */
function layers(base: string): { bottom: Buffer; top: Buffer; topGz: Buffer } {
  const bottom = layerTar(base, "bottom", { "etc/os-release": "ID=paddock-test\n", "data/a.txt": "a\n", "gone.txt": "gone\n", "opq/old.txt": "old\n" });
  const topFiles = { "data/c.txt": "c\n", ".wh.gone.txt": "", "opq/.wh..wh..opq": "", "opq/new.txt": "new\n" };
  return { bottom, top: layerTar(base, "top", topFiles), topGz: layerTar(base, "top-gz", topFiles, true) };
}

function ociLayout(base: string): string {
  const { bottom, topGz } = layers(base);
  return ociLayoutOf(path.join(base, "oci"), [{ tar: bottom }, { tar: topGz, gzip: true }]);
}

function dockerSave(base: string): string {
  const { bottom, top } = layers(base);
  const dir = path.join(base, "docker");
  fs.mkdirSync(path.join(dir, "l1"), { recursive: true });
  fs.mkdirSync(path.join(dir, "l2"));
  fs.writeFileSync(path.join(dir, "l1", "layer.tar"), bottom);
  fs.writeFileSync(path.join(dir, "l2", "layer.tar"), top);
  const config = JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [`sha256:${sha(bottom)}`, `sha256:${sha(top)}`] } });
  fs.writeFileSync(path.join(dir, "config.json"), config);
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify([{ Config: "config.json", RepoTags: ["demo:latest"], Layers: ["l1/layer.tar", "l2/layer.tar"] }]));
  const archive = path.join(base, "docker-save.tar");
  execFileSync("tar", ["-cf", archive, "-C", dir, "."]);
  return archive;
}

/** The image's file system: its layers as overlay lower layers (read-only), as a container will see it. */
function imageTree(store: ImageStore, layersOf: string[], mountAt: string): string[] {
  fs.mkdirSync(mountAt, { recursive: true });
  const lower = [...layersOf].reverse().map((d) => store.layerDir(d)).join(":");
  execFileSync("mount", ["-t", "overlay", "image", "-o", `lowerdir=${lower}`, mountAt]);
  try {
    const out: string[] = [];
    const walk = (rel: string) => {
      for (const name of fs.readdirSync(path.join(mountAt, rel)).sort()) {
        const child = rel ? `${rel}/${name}` : name;
        if (fs.lstatSync(path.join(mountAt, child)).isDirectory()) walk(child);
        else out.push(`${child}=${fs.readFileSync(path.join(mountAt, child), "utf8").trim()}`);
      }
    };
    walk("");
    return out;
  } finally {
    execFileSync("umount", [mountAt]);
  }
}

const EXPECTED = ["data/a.txt=a", "data/c.txt=c", "etc/os-release=ID=paddock-test", "opq/new.txt=new"];

test("an OCI layout and a docker save archive import into the same file system, sharing what they can", async () => {
  const base = tempDir("paddock-image-");
  const store = new ImageStore(path.join(base, "store"));
  const oci = await store.import(ociLayout(base), "oci-demo");
  assert.equal(oci.layers.length, 2);
  assert.deepEqual(imageTree(store, oci.layers, path.join(base, "m1")), EXPECTED);
  const docker = await store.import(dockerSave(base), "docker-demo");
  assert.deepEqual(imageTree(store, docker.layers, path.join(base, "m2")), EXPECTED);
  // The uncompressed bottom layer is the same blob in both: unpacked once.
  assert.equal(oci.layers[0], docker.layers[0]);
  assert.equal(fs.readdirSync(store.layers).length, 3);
  assert.deepEqual(store.list().map((i) => i.name), ["oci-demo", "docker-demo"]);
});

test("a corrupt blob, a file that is not an archive, a missing path: clear errors, the store unchanged", async () => {
  const base = tempDir("paddock-image-bad-");
  const store = new ImageStore(path.join(base, "store"));
  const layout = ociLayout(base);
  const blobs = path.join(layout, "blobs", "sha256");
  // The top layer (the gzip'd one): the bottom one is checked, and would be kept, first.
  const manifest = JSON.parse(fs.readFileSync(path.join(blobs, (JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] }).manifests[0]!.digest.slice(7)), "utf8")) as { layers: { digest: string }[] };
  fs.appendFileSync(path.join(blobs, manifest.layers[1]!.digest.slice(7)), "tampered");
  const snapshot = () => [fs.readdirSync(store.layers).join(","), fs.readdirSync(store.blobs).join(","), JSON.stringify(store.list())];
  const before = snapshot();
  await refused(store.import(layout, "x"), "E_IMAGE", /the archive is corrupt/);
  fs.writeFileSync(path.join(base, "not.tar"), "this is not a tar archive");
  await refused(store.import(path.join(base, "not.tar"), "y"), "E_IMAGE", /not a readable tar archive/);
  await refused(store.import(path.join(base, "nowhere"), "z"), "E_IMAGE", /does not exist/);
  assert.deepEqual(snapshot(), before);
});

/** A docker save folder of raw layer tars (made by Python's tarfile, which sets owners and types freely). */
function dockerSaveOf(dir: string, script: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const layers: string[] = [];
  for (const [i, body] of script.split("\n---\n").entries()) {
    const file = path.join(dir, `layer${i}.tar`);
    execFileSync("python3", ["-c", `import io, sys, tarfile\nwith tarfile.open(sys.argv[1], "w") as t:\n${body.split("\n").map((l) => `    ${l}`).join("\n")}`, file]);
    layers.push(`layer${i}.tar`);
  }
  const diffIds = layers.map((l) => `sha256:${sha(fs.readFileSync(path.join(dir, l)))}`);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ rootfs: { type: "layers", diff_ids: diffIds } }));
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify([{ Config: "config.json", Layers: layers }]));
  return dir;
}

const addFile = (name: string, extra?: string) => `i = tarfile.TarInfo(${JSON.stringify(name)}); i.size = 1; ${extra ? `${extra}; ` : ""}t.addfile(i, io.BytesIO(b"x"))`;

test("a multi-platform image (an index of indexes, as Docker 25's docker save writes): this machine's platform is imported, an image without it is refused", async () => {
  const base = tempDir("paddock-image-index-");
  const layout = path.join(base, "layout");
  const blobs = path.join(layout, "blobs", "sha256");
  const descriptorOf = (arch: string) => {
    ociLayoutOf(layout, [{ tar: layerTar(base, arch, { "etc/os-release": `ID=${arch}\n` }) }]);
    return (JSON.parse(fs.readFileSync(path.join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] }).manifests[0]!;
  };
  const put = (value: unknown) => {
    const data = Buffer.from(JSON.stringify(value));
    fs.writeFileSync(path.join(blobs, sha(data)), data);
    return { mediaType: "application/vnd.oci.image.index.v1+json", digest: `sha256:${sha(data)}`, size: data.length };
  };
  const platforms = (entries: [string, string][]) => put({ schemaVersion: 2, manifests: entries.map(([arch, name]) => ({ ...descriptorOf(name), platform: { os: "linux", architecture: arch } })) });
  const writeIndex = (inner: ReturnType<typeof put>) => fs.writeFileSync(path.join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [inner] }));
  const store = new ImageStore(path.join(base, "store"));
  writeIndex(platforms([["arm64", "arm"], ["amd64", "amd"]]));
  const image = await store.import(layout, "multi");
  assert.equal(fs.readFileSync(path.join(store.layerDir(image.layers[0]!), "etc", "os-release"), "utf8"), "ID=amd\n");
  writeIndex(platforms([["arm64", "arm"], ["riscv64", "riscv"]]));
  await refused(store.import(layout, "foreign"), "E_IMAGE", /no manifest for linux\/amd64 \(it has linux\/arm64, linux\/riscv64\)/);
});

test("layers keep their files' owners and device nodes, as distributions' images have them", async () => {
  const base = tempDir("paddock-image-owners-");
  const store = new ImageStore(path.join(base, "store"));
  const image = await store.import(
    dockerSaveOf(path.join(base, "owners"), [
      addFile("etc/shadow", "i.uid = 0; i.gid = 42; i.mode = 0o640"),
      addFile("home/user/notes", "i.uid = 1000; i.gid = 1000"),
      `d = tarfile.TarInfo("dev/null"); d.type = tarfile.CHRTYPE; d.devmajor = 1; d.devminor = 3; d.mode = 0o666; t.addfile(d)`,
    ].join("\n")),
    "owners",
  );
  const root = store.layerDir(image.layers[0]!);
  const shadow = fs.statSync(path.join(root, "etc", "shadow"));
  assert.deepEqual([shadow.uid, shadow.gid, shadow.mode & 0o777], [0, 42, 0o640]);
  const notes = fs.statSync(path.join(root, "home", "user", "notes"));
  assert.deepEqual([notes.uid, notes.gid], [1000, 1000]);
  const dev = fs.statSync(path.join(root, "dev", "null"));
  assert.ok(dev.isCharacterDevice());
  assert.equal(dev.rdev, (1 << 8) | 3);
});

test("a whiteout that names the layer's folder or the one above it is refused; the store is as it was", async () => {
  const base = tempDir("paddock-image-wh-");
  const store = new ImageStore(path.join(base, "store"));
  await store.import(ociLayout(base), "kept");
  const snapshot = () => [fs.readdirSync(store.layers).join(","), fs.readdirSync(store.blobs).join(","), JSON.stringify(store.list())];
  const before = snapshot();
  for (const [i, name] of [".wh...", ".wh..", ".wh.", "sub/.wh..."].entries()) {
    // A good new layer below the hostile one: it must not stay behind either.
    const archive = dockerSaveOf(path.join(base, `wh${i}`), `${addFile(`fresh-${i}.txt`)}\n---\n${addFile(name)}`);
    await refused(store.import(archive, `hostile-${i}`), "E_IMAGE", /names no file/);
    assert.deepEqual(snapshot(), before, `after ${name}`);
  }
  const kept = store.list()[0]!;
  assert.ok(kept.layers.every((digest) => fs.readdirSync(store.layerDir(digest)).length > 0), "the other image's layers are whole");
});

test("a hostile layer (a symlink out, then a file through it; a ../ name) writes nothing outside its folder", async () => {
  const base = tempDir("paddock-image-evil-");
  const outside = path.join(base, "outside");
  fs.mkdirSync(outside);
  const evil = path.join(base, "evil.tar");
  execFileSync("python3", ["-c", `
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    link = tarfile.TarInfo("escape"); link.type = tarfile.SYMTYPE; link.linkname = sys.argv[2]; t.addfile(link)
    for name in ("escape/pwned", "../pwned-too"):
        data = b"pwned"; info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
`, evil, outside]);
  const dir = path.join(base, "docker");
  fs.mkdirSync(dir);
  fs.copyFileSync(evil, path.join(dir, "layer.tar"));
  const digest = `sha256:${sha(fs.readFileSync(evil))}`;
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ rootfs: { type: "layers", diff_ids: [digest] } }));
  fs.writeFileSync(path.join(dir, "manifest.json"), JSON.stringify([{ Config: "config.json", Layers: ["layer.tar"] }]));
  const store = new ImageStore(path.join(base, "store"));
  try {
    await store.import(dir, "evil");
  } catch (err) {
    // Refusing it is fine too (as a damaged image, not as a bug); writing outside is not.
    assert.equal((err as PaddockError).code, "E_IMAGE", (err as Error).message);
  }
  assert.deepEqual(fs.readdirSync(outside), [], "nothing written through the symlink");
  // tar writes in store/layers/HEX.tmp: one level up, two, three.
  for (const above of [path.join(base, "store", "layers"), path.join(base, "store"), base]) assert.equal(fs.existsSync(path.join(above, "pwned-too")), false, above);
});

test("paddock image import, ls and rm through the agent; what no image uses goes with the last one", async () => {
  const base = tempDir("paddock-image-cli-");
  const stateDir = path.join(base, "state");
  const cli = (...args: string[]) => runCli([...args, "--state-dir", stateDir], { env: { PADDOCK_SOCKET: "" } });
  const imported = await cli("image", "import", ociLayout(base), "demo:1");
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^imported demo:1 \(sha256:[0-9a-f]{64}, 2 layers\)\n$/);
  assert.match((await cli("image", "ls")).stdout, /^demo:1\s+sha256:[0-9a-f]{12}\s+2\s+/m);
  const bad = await cli("image", "import", path.join(base, "nowhere"), "x");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /does not exist\n {2}hint: /);
  assert.match((await cli("image", "rm", "demo:1")).stdout, /removed demo:1/);
  assert.deepEqual(fs.readdirSync(path.join(stateDir, "images", "layers")), []);
  assert.match((await cli("image", "ls")).stdout, /No images/);
});

test("the agent answers others while it imports a big image (unpacking never blocks it); removing an image meanwhile keeps the layers the import stands on", async () => {
  const fx = await startFixture();
  const client = await fx.client();
  const base = layerTar(fx.base, "base", { "etc/os-release": "ID=base\n" });
  await client.request("image/import", { source: ociLayoutOf(path.join(fx.base, "small"), [{ tar: base }]), name: "base:1" });
  const files: Record<string, string> = {};
  for (let i = 0; i < 20_000; i++) files[`many/${i % 100}/file-${i}.txt`] = `file ${i}\n`;
  const layout = ociLayoutOf(path.join(fx.base, "big"), [{ tar: base }, { tar: layerTar(fx.base, "big", files, true), gzip: true }]);
  const order: string[] = [];
  const importing = client.request("image/import", { source: layout, name: "big:1" }).then(() => order.push("import"));
  // While tar unpacks the big layer, the agent answers: the answer comes with tar still running.
  // tar itself, not the child it forks to run gzip (named tar only until it execs).
  const isTar = (pid: number) => readComm(pid) === "tar" && readComm(parentPid(pid) ?? 0) !== "tar";
  const tar = await waitFor("tar to unpack the layer", () => descendants(fx.agent.child.pid!).find(isTar), 60_000);
  await client.request("sandbox/list").then(() => order.push("list"));
  assert.equal(readComm(tar), "tar", "answered while the layer was being unpacked");
  // The only other image with the base layer goes while the import still needs that layer.
  await client.request("image/remove", { name: "base:1" }).then(() => order.push("remove"));
  await importing;
  assert.deepEqual(order, ["list", "remove", "import"], "requests sent during the import were answered before it ended");
  const big = (await client.request("image/list")).images.find((i) => i.name === "big:1");
  assert.ok(big);
  const record = (JSON.parse(fs.readFileSync(path.join(fx.stateDir, "images", "images.json"), "utf8")) as { name: string; layers: string[] }[]).find((i) => i.name === "big:1")!;
  for (const digest of record.layers) assert.ok(fs.readdirSync(path.join(fx.stateDir, "images", "layers", digest.slice(7))).length > 0, `layer ${digest} is whole`);
  await fx.stop();
});

test("the default image is built offline from busybox, reproducibly, and its own OS is what runs in it", async () => {
  const base = tempDir("paddock-image-default-");
  const stateDir = path.join(base, "state");
  const cli = (...args: string[]) => runCli([...args, "--state-dir", stateDir, "--json"], { env: { PADDOCK_SOCKET: "" } });
  const first = await cli("image", "default");
  assert.equal(first.code, 0, first.stderr);
  const again = await cli("image", "default");
  const [a, b] = [JSON.parse(first.stdout), JSON.parse(again.stdout)] as { digest: string; importedAt: string; layers: number }[];
  assert.equal(b!.digest, a!.digest, "the same busybox gives the same image");
  assert.equal(b!.importedAt, a!.importedAt, "a build already in the store is not imported again");
  // Its layer as an overlay lower layer, and a program run in it: the image's OS, not the host's.
  const store = new ImageStore(path.join(stateDir, "images"));
  const image = store.list().find((i) => i.name === "paddock/busybox:latest")!;
  const root = path.join(base, "root");
  const empty = path.join(base, "empty");
  fs.mkdirSync(root);
  fs.mkdirSync(empty);
  // A read-only overlay needs two lower layers: the image's one over an empty one.
  execFileSync("mount", ["-t", "overlay", "image", "-o", `lowerdir=${store.layerDir(image.layers[0]!)}:${empty}`, root]);
  try {
    const osRelease = execFileSync("chroot", [root, "/bin/sh", "-c", "cat /etc/os-release; ls /bin/ls"], { encoding: "utf8" });
    assert.match(osRelease, /^ID=paddock-busybox$/m);
    assert.match(osRelease, /\/bin\/ls/);
  } finally {
    execFileSync("umount", [root]);
  }
});
