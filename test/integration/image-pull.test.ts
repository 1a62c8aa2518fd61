/**
 * image/pull against a real registry (Debian's docker-registry) on 127.0.0.1: an image pushed
 * there with skopeo is pulled with progress, verified, and runs as a container; a missing
 * image and a registry spoken to with TLS are clear errors that leave the store unchanged.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { fixtureForFile, makeWorkspace, refused } from "../helpers/sandbox-fixture";
import { busyboxFiles, layerTar, ociLayoutOf } from "../helpers/images";
import { freePort } from "../vscode/harness";

const ctx = fixtureForFile();
let registry: ChildProcess;
let address = "";

before(async () => {
  const base = fs.mkdtempSync("/tmp/paddock-registry-");
  const port = await freePort();
  address = `127.0.0.1:${port}`;
  const config = path.join(base, "config.yml");
  fs.writeFileSync(config, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${base}/data\nhttp:\n  addr: ${address}\n`);
  registry = spawn("docker-registry", ["serve", config], { stdio: "ignore" });
  for (let tries = 0; !(await listening(port)); tries++) {
    if (tries > 100) throw new Error("docker-registry did not listen within 10 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  const layout = ociLayoutOf(path.join(base, "image"), [{ tar: layerTar(base, "os", { ...busyboxFiles(), "etc/os-release": "ID=pulled-os\n" }), gzip: false }], { Env: ["PATH=/bin"] });
  execFileSync("skopeo", ["copy", "--quiet", "--dest-tls-verify=false", `oci:${layout}`, `docker://${address}/paddock-test/pulled:1`]);
});

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.end(), resolve(true))).once("error", () => resolve(false));
  });
}

after(() => {
  registry.kill("SIGKILL");
});

test("an image pulled from a registry (with progress) runs as a container sandbox", async () => {
  const { fx, client } = ctx;
  const steps: string[] = [];
  client.onNotification((method, params) => {
    if (method === "image/progress") steps.push((params as { step: string }).step);
  });
  const image = await client.request("image/pull", { reference: `${address}/paddock-test/pulled:1`, name: "pulled:1", insecure: true });
  assert.equal(image.name, "pulled:1");
  assert.equal(image.layers, 1);
  assert.ok(steps.some((s) => /Copying blob/.test(s)), `skopeo's steps come as progress: ${JSON.stringify(steps)}`);
  assert.ok(steps.includes("finished"));
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-pulled"), runtime: "container", image: "pulled:1" });
  const os = await client.request("sandbox/exec", { id, argv: ["cat", "/etc/os-release"] });
  assert.equal(os.stdout, "ID=pulled-os\n");
  await client.request("sandbox/delete", { id });
});

test("a missing image, or TLS to a plain-HTTP registry: E_PULL with a hint, the store unchanged", async () => {
  const { fx, client } = ctx;
  const snapshot = () => JSON.stringify([fs.readdirSync(path.join(fx.stateDir, "images", "blobs", "sha256")).sort(), fs.readdirSync(path.join(fx.stateDir, "images", "layers")).sort()]);
  await client.request("image/list");
  fs.mkdirSync(path.join(fx.stateDir, "images", "layers"), { recursive: true });
  const before = snapshot();
  const missing = await refused(client.request("image/pull", { reference: `${address}/paddock-test/nothing:1`, insecure: true }), "E_PULL");
  assert.match(missing.hint ?? "", /name and tag|reference/);
  const tls = await refused(client.request("image/pull", { reference: `${address}/paddock-test/pulled:1` }), "E_PULL");
  assert.match(tls.hint ?? "", /insecure/);
  assert.equal(snapshot(), before);
  assert.ok(!(await client.request("image/list")).images.some((i) => i.name.includes("nothing")));
});
