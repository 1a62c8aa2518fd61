/**
 * Container sandboxes, with real runc and real images: the image's OS inside, the workspace
 * at /workspace, the same review flow as process sandboxes, whiteouts, a PTY, limits and
 * networks, lifecycle, kill -9 of the agent, and clear refusals.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AgentClient } from "../../protocol/client";
import { checkTerminal, fixtureForFile, makeWorkspace, mountsUnder, refused, sandboxCgroups, startFixture, treeHash, waitFor } from "../helpers/sandbox-fixture";
import { busyboxFiles, layerTar, ociLayoutOf } from "../helpers/images";

const ctx = fixtureForFile();

/**
 * Two layers: a busybox system, then one that deletes a file (.wh.) and makes a folder opaque
 * (.wh..wh..opq). Layers are reproducible: another `tag` gives an image that shares none of them.
 */
function testImage(base: string, tag = "os"): string {
  const bottom = layerTar(base, "os", {
    ...busyboxFiles(),
    "etc/paddock-image": tag,
    "etc/os-release": 'ID=paddock-test-os\nPRETTY_NAME="Paddock test OS"\n',
    "etc/gone.txt": "deleted by the top layer\n",
    "opt/tools/old.txt": "hidden by the opaque folder\n",
    "root/.keep": "",
  });
  const top = layerTar(base, "top", { "etc/.wh.gone.txt": "", "opt/tools/.wh..wh..opq": "", "opt/tools/new.txt": "new tool\n", "opt/tag": tag }, true);
  return ociLayoutOf(path.join(base, "image"), [{ tar: bottom }, { tar: top, gzip: true }], { Env: ["PATH=/bin", "IMAGE_VAR=from-image"] });
}

let imported: Promise<void> | undefined;
/** The test image, imported once for the file. */
function image(client: AgentClient, base: string): Promise<void> {
  imported ??= client.request("image/import", { source: testImage(base), name: "paddock-test/os:1" }).then(() => undefined);
  return imported;
}

async function run(client: AgentClient, id: string, script: string, extra: { cwd?: string } = {}) {
  return client.request("sandbox/exec", { id, argv: ["sh", "-c", script], ...extra });
}

const runcList = (stateDir: string) => spawnSync("runc", ["--root", path.join(stateDir, "runc"), "list", "--quiet"], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);

test("the image's OS, the workspace at /workspace, and changes reviewed as for any sandbox", async () => {
  const { fx, client } = ctx;
  await image(client, fx.base);
  const ws = makeWorkspace(fx.base, "ws-os");
  const before = treeHash(ws);
  const sandbox = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "paddock-test/os:1" });
  assert.equal(sandbox.runtime, "container");
  assert.equal(sandbox.image?.name, "paddock-test/os:1");
  assert.match(sandbox.image?.digest ?? "", /^sha256:[0-9a-f]{64}$/);
  const { id } = sandbox;

  const os = await run(client, id, "cat /etc/os-release; pwd; id -u; echo $IMAGE_VAR; ls /etc; ls /opt/tools");
  assert.equal(os.exitCode, 0, os.stderr);
  assert.match(os.stdout, /^ID=paddock-test-os$/m, "the image's os-release");
  assert.doesNotMatch(os.stdout, /debian/i, "not the host's");
  const lines = os.stdout.split("\n");
  assert.equal(lines[2], "/workspace", "commands start in /workspace");
  assert.equal(lines[3], "0", "as the sandbox's owner (root, here)");
  assert.equal(lines[4], "from-image", "with the image's environment");
  assert.ok(!lines.includes("gone.txt"), "the top layer's whiteout deleted it");
  assert.deepEqual(lines.slice(lines.indexOf("new.txt")), ["new.txt", ""], "the opaque folder hides the bottom layer's files");

  const edit = await run(client, id, "echo changed >> README.md && echo new > added.txt && rm delete-me.txt && echo x > /tmp/not-the-workspace");
  assert.equal(edit.exitCode, 0, edit.stderr);
  const { changes } = await client.request("sandbox/changes", { id });
  assert.deepEqual(changes.map((c) => `${c.kind} ${c.path}`).sort(), ["added added.txt", "deleted delete-me.txt", "modified README.md"]);
  assert.equal(treeHash(ws), before, "the workspace is untouched before approve");

  const approved = await client.request("sandbox/approve", { id, paths: ["README.md", "added.txt"] });
  assert.deepEqual(approved.applied.sort(), ["README.md", "added.txt"]);
  assert.equal(fs.readFileSync(path.join(ws, "README.md"), "utf8"), "# demo\nchanged\n");
  const rejected = await client.request("sandbox/reject", { id, paths: ["delete-me.txt"] });
  assert.deepEqual(rejected.rejected, ["delete-me.txt"]);
  const back = await run(client, id, "cat delete-me.txt");
  assert.equal(back.stdout, "bye\n", "the running container sees the rejected file back");
  assert.deepEqual((await client.request("sandbox/changes", { id })).changes, []);
  await client.request("sandbox/delete", { id });
});

test("a command's leftovers end with it; a terminal gets its size, ^C and its exit code", async () => {
  const { fx, client } = ctx;
  await image(client, fx.base);
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-pty"), runtime: "container", image: "paddock-test/os:1" });
  const marker = `sleep 4242${Math.floor(Math.random() * 10)}`;
  const detached = await run(client, id, `${marker} & ${marker} & echo started`);
  assert.equal(detached.stdout, "started\n");
  assert.equal(spawnSync("pgrep", ["-f", marker]).status, 1, "background processes of a finished command are gone");
  const timedOut = await client.request("sandbox/exec", { id, argv: ["sh", "-c", `${marker}; echo never`], timeoutMs: 300 });
  assert.equal(timedOut.timedOut, true);
  await waitFor("the timed-out command's processes to be gone", () => (spawnSync("pgrep", ["-f", marker]).status === 1 ? true : undefined));

  await checkTerminal(client, id, "/bin/sh");
  await client.request("sandbox/delete", { id });
});

test("commands killed at any instant (timeouts of 1 to 60 ms) leave nothing running; signals reach the program, not its wrapper", async () => {
  const { fx, client } = ctx;
  await image(client, fx.base);
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-race"), runtime: "container", image: "paddock-test/os:1" });
  const marker = "sleep 4545";
  for (let i = 0; i < 40; i++) {
    const done = await client.request("sandbox/exec", { id, argv: ["sh", "-c", `${marker}; echo never`], timeoutMs: 1 + ((i * 7) % 60) });
    assert.equal(done.timedOut, true);
  }
  await waitFor("every killed command's processes to be gone", () => (spawnSync("pgrep", ["-f", marker]).status === 1 ? true : undefined), 5_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${spawnSync("ps", ["-eo", "pid,ppid,stat,comm,args"], { encoding: "utf8" }).stdout.split("\n").filter((l) => /4545|paddock-init run|runc/.test(l)).join("\n")}`);
  });

  // SIGSTOP cannot be passed on by the wrapper: it must reach the program itself.
  let output = "";
  const early: { pid: number; data: string }[] = [];
  let pid = 0;
  client.onNotification((method, params) => {
    const p = params as { pid: number; data?: string };
    if (method !== "process/output") return;
    if (pid === 0) early.push({ pid: p.pid, data: p.data ?? "" });
    else if (p.pid === pid) output += p.data;
  });
  pid = (await client.request("process/spawn", { id, argv: ["sh", "-c", "while true; do echo tick; sleep 0.05; done"] })).pid;
  output += early.filter((e) => e.pid === pid).map((e) => e.data).join("");
  await waitFor("ticks", () => (output.includes("tick") ? true : undefined));
  await client.request("process/kill", { pid, signal: "SIGSTOP" });
  await new Promise((r) => setTimeout(r, 200));
  const stopped = output.length;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(output.length, stopped, "no output while stopped");
  await client.request("process/kill", { pid, signal: "SIGCONT" });
  await waitFor("ticks again", () => (output.length > stopped ? true : undefined));
  await client.request("process/kill", { pid, signal: "SIGKILL" });

  // A failure of runc exec itself is an error with a hint, not the program's exit code.
  await refused(client.request("sandbox/exec", { id, argv: ["true"], cwd: "no/such/folder" }), "E_SPAWN", /cannot run the command in the container/);
  await client.request("sandbox/delete", { id });
});

test("an image re-imported or removed under a running container: the container keeps its layers until it goes", async () => {
  const { fx, client } = ctx;
  const layersDir = path.join(fx.stateDir, "images", "layers");
  const before = new Set(fs.readdirSync(layersDir));
  await client.request("image/import", { source: testImage(path.join(fx.base, "again"), "again"), name: "paddock-test/again:1" });
  const own = fs.readdirSync(layersDir).filter((d) => !before.has(d));
  assert.equal(own.length, 2, "the image's two layers are its own");
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-reimport"), runtime: "container", image: "paddock-test/again:1" });
  // The same name, another image: the old one loses its name but not its layers.
  const other = ociLayoutOf(path.join(fx.base, "other-image"), [{ tar: layerTar(path.join(fx.base, "other-image-src"), "x", { ...busyboxFiles(), "etc/os-release": "ID=other\n" }) }]);
  await client.request("image/import", { source: other, name: "paddock-test/again:1" });
  await client.request("image/remove", { name: "paddock-test/again:1" });
  const present = () => own.filter((d) => fs.existsSync(path.join(layersDir, d)));
  assert.deepEqual(present(), own, "no image names the layers now; the container still holds them");
  assert.match((await run(client, id, "cat /etc/os-release")).stdout, /^ID=paddock-test-os$/m, "the running container still stands on its layers");
  await client.request("sandbox/stop", { id });
  await client.request("sandbox/start", { id });
  assert.match((await run(client, id, "cat /etc/paddock-image")).stdout, /^again$/, "and starts again from them");
  await client.request("sandbox/delete", { id });
  assert.deepEqual(present(), [], "the layers only it held went with it");
  assert.deepEqual(fs.readdirSync(layersDir).filter((d) => before.has(d)).sort(), [...before].sort(), "the other images keep theirs");
});

test("limits through the container's cgroup; network none has loopback only, nat a tap device", async () => {
  const { fx, client } = ctx;
  await image(client, fx.base);
  const ws = makeWorkspace(fx.base, "ws-limits");
  const limited = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "paddock-test/os:1", limits: { pids: 16 } });
  const forks = await run(client, limited.id, "for i in $(seq 40); do sleep 1 & done; wait");
  assert.deepEqual(forks.limitsHit, ["pids"], forks.stderr);
  const links = await run(client, limited.id, "ip -o link");
  assert.deepEqual(links.stdout.trim().split("\n").map((l) => l.split(":")[1]?.trim()), ["lo"]);
  await client.request("sandbox/delete", { id: limited.id });

  const nat = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "paddock-test/os:1", network: "nat" });
  const addr = await run(client, nat.id, "ip -o -4 addr show tap0; cat /etc/resolv.conf");
  assert.match(addr.stdout, /tap0\s+inet 10\.0\.2\.100\/24/, addr.stderr);
  assert.match(addr.stdout, /nameserver 10\.0\.2\.3/);
  await client.request("sandbox/delete", { id: nat.id });
  assert.equal(spawnSync("pgrep", ["-f", `slirp4netns.*tap0`]).status, 1, "slirp4netns goes with its sandbox");

  // An image whose /etc/resolv.conf is a symlink (to a resolver's file under /run, as many are):
  // the container gets a file of its own there; the image's layer keeps its symlink.
  const layer = layerTar(fx.base, "resolv", { ...busyboxFiles(["sh", "cat", "ls", "ip"]), "etc/resolv.conf": { symlink: "../run/systemd/resolve/stub-resolv.conf" } });
  const imported = await client.request("image/import", { source: ociLayoutOf(path.join(fx.base, "resolv-image"), [{ tar: layer }], { Env: ["PATH=/bin"] }), name: "paddock-test/resolv:1" });
  const linked = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "paddock-test/resolv:1", network: "nat" });
  assert.match((await run(client, linked.id, "cat /etc/resolv.conf")).stdout, /^nameserver 10\.0\.2\.3$/m);
  await client.request("sandbox/delete", { id: linked.id });
  const record = (JSON.parse(fs.readFileSync(path.join(fx.stateDir, "images", "images.json"), "utf8")) as { name: string; layers: string[] }[]).find((i) => i.name === imported.name)!;
  assert.equal(fs.readlinkSync(path.join(fx.stateDir, "images", "layers", record.layers[0]!.slice(7), "etc", "resolv.conf")), "../run/systemd/resolve/stub-resolv.conf");
  await client.request("image/remove", { name: imported.name });
});

test("stop, start and delete; two containers of one workspace at once; nothing left", async () => {
  const { fx, client } = ctx;
  await image(client, fx.base);
  const ws = makeWorkspace(fx.base, "ws-life");
  const a = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "paddock-test/os:1" });
  const b = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "paddock-test/os:1" });
  await run(client, a.id, "echo a > who.txt; echo kept > /root/container-own.txt");
  await run(client, b.id, "echo b > who.txt");
  assert.equal((await run(client, a.id, "cat who.txt")).stdout, "a\n");
  assert.equal((await run(client, b.id, "cat who.txt")).stdout, "b\n");
  assert.deepEqual(runcList(fx.stateDir).sort(), [`paddock-${a.id}`, `paddock-${b.id}`].sort());

  // A process sandbox's command holds no copy of another sandbox's mounts: A's root and
  // workspace overlays would stay mounted there after A stops (and twice when it starts again).
  const other = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-life-process") });
  const holder = await client.request("process/spawn", { id: other.id, argv: ["sleep", "60"] });
  const held = () => fs.readFileSync(`/proc/${holder.pid}/mountinfo`, "utf8");
  await waitFor("the command's own namespace (its workspace view bound)", () => (held().includes("ws-life-process") ? true : undefined));
  assert.doesNotMatch(held(), new RegExp(`paddock-root-${a.id}|sandboxes/${a.id}/merged|paddock-${a.id}`), "no mount of sandbox A");
  await client.request("sandbox/stop", { id: a.id });
  await client.request("sandbox/delete", { id: other.id });
  assert.deepEqual(runcList(fx.stateDir), [`paddock-${b.id}`]);
  assert.deepEqual(mountsUnder(path.join(fx.stateDir, "sandboxes", a.id)), []);
  await client.request("sandbox/start", { id: a.id });
  const after = await run(client, a.id, "cat who.txt /root/container-own.txt");
  assert.equal(after.stdout, "a\nkept\n", "the workspace's and the container's own changes survive stop/start");

  for (const s of [a, b]) await client.request("sandbox/delete", { id: s.id });
  assert.deepEqual(runcList(fx.stateDir), []);
  assert.deepEqual(mountsUnder(fx.stateDir), []);
  assert.deepEqual(sandboxCgroups(fx.stateDir), []);
  assert.deepEqual(fs.readdirSync(path.join(fx.stateDir, "sandboxes")), []);
});

test("a bind that a runc init killed while it started left in the container's state folder does not keep the container from going", async () => {
  const { fx, client } = ctx;
  await image(client, fx.base);
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-runc-bind"), runtime: "container", image: "paddock-test/os:1" });
  // What runc 1.1's cloned binary leaves when its runc init is killed between its bind and its unmount.
  const stateFolder = path.join(fx.stateDir, "runc", `paddock-${id}`);
  const leftover = path.join(stateFolder, "runc.LEFTOV");
  fs.writeFileSync(leftover, "");
  assert.equal(spawnSync("mount", ["--bind", "-o", "ro", "/bin/true", leftover]).status, 0);
  await client.request("sandbox/delete", { id });
  assert.deepEqual(mountsUnder(path.join(fx.stateDir, "runc")), []);
  assert.equal(fs.existsSync(stateFolder), false);
  assert.deepEqual(runcList(fx.stateDir), []);
});

test("refusals: an unknown image, an image in use, nat for a process sandbox; nothing recorded", async () => {
  const { fx, client } = ctx;
  await image(client, fx.base);
  const ws = makeWorkspace(fx.base, "ws-refused");
  const count = async () => (await client.request("sandbox/list")).sandboxes.length;
  const before = await count();
  await refused(client.request("sandbox/create", { workspace: ws, runtime: "container", image: "no/such:image" }), "E_NOT_FOUND", /no image no\/such:image/);
  await refused(client.request("sandbox/create", { workspace: ws, network: "nat" }), "E_INVALID_PARAMS", /nat is for container and VM sandboxes/);
  await refused(client.request("sandbox/create", { workspace: ws, image: "paddock-test/os:1" }), "E_INVALID_PARAMS", /image is for container sandboxes/);
  assert.equal(await count(), before);
  const { id } = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "paddock-test/os:1" });
  await refused(client.request("image/remove", { name: "paddock-test/os:1" }), "E_IMAGE_IN_USE", new RegExp(id));
  await client.request("sandbox/delete", { id });
});

test("--oci-runtime forces the OCI runtime (crun, which fails under these machines' hybrid cgroups, is then used and named); an unknown one is refused", async () => {
  const crun = await startFixture(["--oci-runtime", "crun"]);
  const client = await crun.client();
  const ws = makeWorkspace(crun.base, "ws-crun");
  const check = await client.request("system/check", {});
  assert.equal(check.runtimes.container.using, "crun", "system/check names the OCI runtime forced, which is the one that runs");
  const crunWorks = check.checks.find((c) => c.name === "crun")?.ok === true;
  const attempt = client.request("sandbox/create", { workspace: ws, runtime: "container" });
  if (crunWorks) {
    const { id } = await attempt;
    assert.equal(spawnSync("crun", ["--root", path.join(crun.stateDir, "crun"), "list", "--quiet"], { encoding: "utf8" }).stdout.includes(`paddock-${id}`), true, "the container is crun's");
    assert.deepEqual(runcList(crun.stateDir), []);
  } else {
    await refused(attempt, "E_CONTAINER", /^crun could not start the container/);
    assert.deepEqual((await client.request("sandbox/list")).sandboxes, [], "nothing recorded");
  }
  await crun.stop();

  const unknown = await startFixture(["--oci-runtime", "podman"]);
  const other = await unknown.client();
  await refused(other.request("sandbox/create", { workspace: makeWorkspace(unknown.base, "ws-unknown"), runtime: "container" }), "E_RUNTIME_UNAVAILABLE", /"podman", which is not one Paddock runs/);
  const podman = (await other.request("system/check", {})).runtimes.container;
  assert.equal(podman.available, false, "system/check says so too");
  assert.match(podman.reason ?? "", /"podman", which is not one Paddock runs/);
  await unknown.stop();
});

test("without an image, a container gets the default image, built offline (its first build reported as progress)", async () => {
  const { fx, client } = ctx;
  const steps: string[] = [];
  client.onNotification((method, params) => method === "image/progress" && steps.push((params as { step: string }).step));
  const { id, image: used } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-default"), runtime: "container" });
  assert.equal(used?.name, "paddock/busybox:latest");
  assert.deepEqual(steps, ["building the default image from Debian's busybox-static", "built"]);
  assert.match((await run(client, id, "cat /etc/os-release")).stdout, /^ID=paddock-busybox$/m);
  await client.request("sandbox/delete", { id });
  // The image's layers stay for the next one: a second container costs no unpacking.
  assert.ok((await client.request("image/list")).images.some((i) => i.name === "paddock/busybox:latest"));
  assert.ok(fs.readdirSync(path.join(fx.stateDir, "images", "layers")).length >= 1);
});

test("kill -9 of the agent with containers running: the restarted agent leaves nothing that nobody owns", async () => {
  const { fx } = ctx;
  let client = await fx.client();
  await image(client, fx.base);
  const ws = makeWorkspace(fx.base, "ws-crash");
  const { id } = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "paddock-test/os:1" });
  await run(client, id, "echo before-crash > note.txt");
  const marker = "sleep 4343";
  void client.request("sandbox/exec", { id, argv: ["sh", "-c", marker] }).catch(() => undefined);
  await waitFor("the long command", () => (spawnSync("pgrep", ["-f", marker]).status === 0 ? true : undefined));
  fx.agent.child.kill("SIGKILL");
  await new Promise((r) => fx.agent.child.once("exit", r));
  await fx.restart();
  client = await fx.client();
  assert.equal(spawnSync("pgrep", ["-f", marker]).status, 1, "the old command is gone");
  assert.deepEqual(runcList(fx.stateDir), [`paddock-${id}`], "one container, the sandbox's own");
  const sandbox = await client.request("sandbox/get", { id });
  assert.equal(sandbox.state, "running");
  assert.equal((await run(client, id, "cat note.txt")).stdout, "before-crash\n");
  await client.request("sandbox/delete", { id });
  assert.deepEqual(runcList(fx.stateDir), []);
  assert.deepEqual(mountsUnder(fx.stateDir), []);
});
