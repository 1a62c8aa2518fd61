/**
 * Micro-VM sandboxes with real QEMU and the guest agent (under TCG on these machines, where
 * KVM does not boot a guest): the guest's own kernel, commands with exit codes, input and a
 * terminal, the workspace over 9p through the same review flow, kill -9 of the agent, and
 * clear errors for a bad kernel and a guest that never gets ready.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cgroupProcs, checkTerminal, fixtureForFile, makeWorkspace, mountsUnder, refused, startFixture, treeHash, waitFor } from "../helpers/sandbox-fixture";
import { descendants } from "../../agent/process/process-tree";
import * as http from "node:http";
import * as net from "node:net";
import { REPO, tempDir } from "../helpers/agent-process";
import { GuestImages, secretArchive } from "../../agent/guest/guest-image";
import { GuestConnection } from "../../agent/guest/guest-connection";
import { socketPair } from "../../agent/sys/libc";

/** QEMUs an agent started that are still running. */
const qemusOf = (agentPid: number) => descendants(agentPid).filter((pid) => fs.readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("qemu-system"));
const guestRelease = fs.readdirSync("/boot").find((n) => n.startsWith("vmlinuz-"))?.slice("vmlinuz-".length) ?? "";

const ctx = fixtureForFile();

/** Running (a zombie waiting for a parent that does not reap is not running). */
const alive = (pid: number) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
};

test("a VM sandbox runs the guest's kernel; commands, input, a terminal; its workspace edits are reviewed as for any sandbox", async () => {
  const { fx, client } = ctx;
  const ws = makeWorkspace(fx.base, "ws-vm");
  const before = treeHash(ws);
  const steps: string[] = [];
  client.onNotification((method, params) => method === "sandbox/progress" && steps.push((params as { step: string }).step));
  const check = await client.request("system/check", {});
  const sandbox = await client.request("sandbox/create", { workspace: ws, runtime: "vm" });
  assert.equal(sandbox.runtime, "vm");
  assert.equal(sandbox.vm?.accelerator, check.runtimes.vm.using, "the accelerator system/check chose is the one used, and shown");
  assert.ok(steps.some((s) => /^booting the VM \((kvm|tcg)\)$/.test(s)) && steps.some((s) => /^guest ready in \d+ ms$/.test(s)), JSON.stringify(steps));
  const { id } = sandbox;

  const uname = await client.request("sandbox/exec", { id, argv: ["uname", "-r"] });
  assert.equal(uname.stdout.trim(), sandbox.vm?.kernelRelease);
  assert.notEqual(uname.stdout.trim(), os.release(), "the guest's kernel, not the host's");
  const run = await client.request("sandbox/exec", { id, argv: ["sh", "-c", "pwd; cat; echo oops >&2; exit 7"], stdin: "from stdin\n" });
  assert.deepEqual([run.exitCode, run.stdout, run.stderr], [7, "/workspace\nfrom stdin\n", "oops\n"]);
  const missing = await client.request("sandbox/exec", { id, argv: ["no-such-program"] });
  assert.equal(missing.exitCode, 127);
  assert.match(missing.stderr, /cannot run no-such-program/);

  await checkTerminal(client, id, "/bin/sh");

  const edit = await client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo changed >> README.md && echo new > added.txt && rm delete-me.txt"] });
  assert.equal(edit.exitCode, 0, edit.stderr);
  const { changes } = await client.request("sandbox/changes", { id });
  assert.deepEqual(changes.map((c) => `${c.kind} ${c.path}`).sort(), ["added added.txt", "deleted delete-me.txt", "modified README.md"]);
  assert.equal(treeHash(ws), before, "the workspace is untouched before approve");
  await client.request("sandbox/approve", { id, paths: ["README.md"] });
  assert.equal(fs.readFileSync(path.join(ws, "README.md"), "utf8"), "# demo\nchanged\n");
  await client.request("sandbox/reject", { id, paths: ["added.txt"] });
  assert.equal((await client.request("sandbox/exec", { id, argv: ["ls", "added.txt"] })).exitCode, 1, "the running guest sees the rejection");

  // The guest decides what its console says: the host keeps 1 MiB of it, not the disk's worth.
  const flood = await client.request("sandbox/exec", { id, argv: ["sh", "-c", "head -c 1200000 /dev/zero | tr '\\0' x > /dev/ttyS0"] });
  assert.equal(flood.exitCode, 0, flood.stderr);
  const consoleLog = path.join(fx.stateDir, "sandboxes", id, "vm", "console.log");
  await waitFor("the console log to reach its cap", () => (fs.statSync(consoleLog).size >= 1 << 20 ? true : undefined));
  assert.equal(fs.statSync(consoleLog).size, 1 << 20, "kept up to 1 MiB");
  const { text } = await client.request("sandbox/console", { id });
  assert.match(text, /paddock-guest: ready for the host/, "the console can be read through the agent");

  // A command that never reads its input, killed at once: the guest stays responsive.
  const stuck = await client.request("sandbox/exec", { id, argv: ["sleep", "1000"], stdin: "x".repeat(1 << 20), timeoutMs: 500 });
  assert.equal(stuck.timedOut, true);
  assert.equal((await client.request("sandbox/exec", { id, argv: ["true"], timeoutMs: 10_000 })).exitCode, 0);
  // A guest that answers nothing (here: QEMU paused) cannot hold a command's answer past its timeout and a grace.
  const [qemu] = fs.readFileSync(cgroupProcs(fx.stateDir, id), "utf8").split("\n").filter(Boolean).map(Number);
  process.kill(qemu!, "SIGSTOP");
  try {
    const t0 = Date.now();
    const hung = await client.request("sandbox/exec", { id, argv: ["true"], timeoutMs: 300 });
    assert.deepEqual([hung.timedOut, hung.exitCode, hung.signal], [true, null, "SIGKILL"]);
    assert.ok(Date.now() - t0 < 15_000, `answered in ${Date.now() - t0} ms`);
  } finally {
    process.kill(qemu!, "SIGCONT");
  }
  assert.equal((await client.request("sandbox/exec", { id, argv: ["true"], timeoutMs: 10_000 })).exitCode, 0, "the guest goes on once it runs again");

  // Special files: no device node can be made through the share (QEMU has no capabilities),
  // and QEMU opens no FIFO on the host for the guest; the guest's own /tmp has them.
  const special = await client.request("sandbox/exec", { id, argv: ["sh", "-c", "mkfifo pipe; echo mkfifo=$?; mknod dev c 1 3; echo mknod=$?; mkfifo /tmp/p && (echo through-the-guest > /tmp/p &) && cat /tmp/p"], timeoutMs: 20_000 });
  assert.match(special.stdout, /^mkfifo=[1-9]\nmknod=[1-9]\nthrough-the-guest\n$/, special.stderr);
  assert.deepEqual((await client.request("sandbox/changes", { id })).changes.filter((c) => c.path === "pipe" || c.path === "dev"), [], "nothing special reached the sandbox's changes");

  // The warm pool: after this VM, one is booted ahead; the next sandbox takes it instead of booting.
  for (const deadline = Date.now() + 120_000; (await client.request("vm/pool", {})).ready < 1; ) {
    assert.ok(Date.now() < deadline, "the pool filled within 2 minutes");
    await new Promise((r) => setTimeout(r, 250));
  }
  const other = makeWorkspace(fx.base, "ws-vm-pooled");
  const t0 = Date.now();
  const pooled = await client.request("sandbox/create", { workspace: other, runtime: "vm" });
  const claimMs = Date.now() - t0;
  assert.equal(pooled.vm?.fromPool, true);
  assert.ok(claimMs < 3000, `a pooled VM is given in well under a boot (${claimMs} ms)`);
  assert.equal((await client.request("sandbox/exec", { id: pooled.id, argv: ["sh", "-c", "cat README.md; echo pooled > p.txt"] })).stdout, "# demo\n");
  assert.deepEqual((await client.request("sandbox/changes", { id: pooled.id })).changes.map((c) => c.path), ["p.txt"]);
  assert.deepEqual((await client.request("sandbox/changes", { id })).changes.map((c) => c.path).includes("p.txt"), false, "its workspace is its own");
  const stats = await client.request("vm/pool", {});
  assert.ok(stats.hits >= 1 && stats.misses >= 1 && stats.bootMs.length >= 2, JSON.stringify(stats));
  assert.match((await client.request("sandbox/console", { id: pooled.id })).text, /ready for the host/, "a pooled VM's console is its sandbox's");

  // A QEMU that ends by itself (its owner may kill it): the sandbox is stopped with its changes, and starts again.
  const [pooledQemu] = fs.readFileSync(cgroupProcs(fx.stateDir, pooled.id), "utf8").split("\n").filter(Boolean).map(Number);
  process.kill(pooledQemu!, "SIGKILL");
  for (const deadline = Date.now() + 20_000; (await client.request("sandbox/get", { id: pooled.id })).state !== "stopped"; ) {
    assert.ok(Date.now() < deadline, "the sandbox was stopped within 20 s of its QEMU's end");
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(mountsUnder(path.join(fx.stateDir, "sandboxes", pooled.id)), [], "its share and view unmounted");
  await client.request("sandbox/start", { id: pooled.id });
  assert.equal((await client.request("sandbox/exec", { id: pooled.id, argv: ["cat", "p.txt"] })).stdout, "pooled\n", "its changes were kept");
  await client.request("sandbox/delete", { id: pooled.id });
  assert.deepEqual(mountsUnder(path.join(fx.stateDir, "sandboxes", pooled.id)), [], "no share left mounted");
  assert.equal(fs.existsSync(path.join(fx.stateDir, "sandboxes", pooled.id)), false);

  // A stop is graceful first: a program's SIGTERM handler runs and what it writes is kept.
  void client.request("sandbox/exec", { id, argv: ["sh", "-c", "trap 'echo stopped-gracefully > /workspace/bye.txt; exit 0' TERM; echo > /workspace/armed.txt; while true; do sleep 0.1; done"] }).catch(() => undefined);
  // Stopped once its handler is in place (a loaded TCG guest can take more than a moment to get there).
  for (const deadline = Date.now() + 30_000; !(await client.request("sandbox/changes", { id })).changes.some((c) => c.path === "armed.txt"); ) {
    assert.ok(Date.now() < deadline, "the program's SIGTERM handler is in place within 30 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  await client.request("sandbox/stop", { id });
  assert.ok((await client.request("sandbox/changes", { id })).changes.some((c) => c.path === "bye.txt"), "the program's last write reached the sandbox");
  await client.request("sandbox/delete", { id });
});

/**
 * A network namespace of the test's own stands for the agent's host: 10.99.0.1 (an address
 * on its lo, since a kernel may have no dummy or veth links) is "the outside world", with a
 * web server on it and another on the namespace's 127.0.0.1.
 */
function fakeHost(): { netns: string; stop(): void } {
  const base = tempDir("paddock-netns-");
  const netns = path.join(base, "netns");
  fs.writeFileSync(netns, "");
  const sh = (command: string) => {
    const r = spawnSync("sh", ["-c", command], { encoding: "utf8" });
    assert.equal(r.status, 0, `${command}: ${r.stderr}`);
  };
  sh(`unshare --net=${netns} true`);
  const inside = `nsenter --net=${netns} --`;
  sh(`${inside} ip link set lo up && ${inside} ip addr add 10.99.0.1/32 dev lo`);
  const servers: ChildProcess[] = [];
  for (const [address, text] of [["10.99.0.1:8080", "outside"], ["127.0.0.1:8081", "host-loopback"]] as const) {
    const root = path.join(base, text);
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, "index.html"), `${text}\n`);
    servers.push(spawn("nsenter", [`--net=${netns}`, "--", "busybox", "httpd", "-f", "-p", address, "-h", root], { stdio: "ignore" }));
  }
  return {
    netns,
    stop() {
      for (const server of servers) server.kill("SIGKILL");
      spawnSync("umount", ["-l", netns]);
    },
  };
}

test("network nat: the guest's eth0 reaches what the agent's host reaches, never the host's loopback; network none has lo only", async () => {
  const host = fakeHost();
  try {
    const fx = await startFixture([], { PADDOCK_VM_POOL: "0" }, ["nsenter", `--net=${host.netns}`, "--"]);
    const client = await fx.client();
    const get = async (id: string, url: string) => client.request("sandbox/exec", { id, argv: ["timeout", "10", "wget", "-q", "-O", "-", url], timeoutMs: 30_000 });
    // What the host itself sees, so that a refusal below means something. (busybox's wget -T
    // crashes: `timeout` bounds each fetch instead.)
    const fromHost = spawnSync("nsenter", [`--net=${host.netns}`, "--", "busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:8081/"], { encoding: "utf8" });
    assert.equal(fromHost.stdout, "host-loopback\n", fromHost.stderr);

    const sandbox = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-vm-nat"), runtime: "vm", network: "nat" });
    assert.equal(sandbox.network, "nat");
    const { id } = sandbox;
    const addr = await client.request("sandbox/exec", { id, argv: ["sh", "-c", "ip -o -4 addr show eth0; ip route; cat /etc/resolv.conf"] });
    assert.match(addr.stdout, /eth0\s+inet 10\.0\.3\.15\/24/, addr.stdout + addr.stderr);
    assert.match(addr.stdout, /default via 10\.0\.3\.2 dev eth0/);
    assert.match(addr.stdout, /nameserver 10\.0\.2\.3/);
    const outside = await get(id, "http://10.99.0.1:8080/");
    assert.deepEqual([outside.exitCode, outside.stdout], [0, "outside\n"], outside.stderr);
    // QEMU's own alias of its host (10.0.3.2) and slirp4netns's (10.0.2.2) lead to no loopback.
    for (const url of ["http://10.0.3.2:8081/", "http://10.0.2.2:8081/"]) {
      const loop = await get(id, url);
      assert.notEqual(loop.exitCode, 0, `${url} must not reach the host's loopback: ${loop.stdout}`);
      assert.doesNotMatch(loop.stdout, /host-loopback/);
    }
    // The guest sees its changes reviewed as for any sandbox; the network changes nothing there.
    await client.request("sandbox/exec", { id, argv: ["sh", "-c", "wget -q -O fetched.txt http://10.99.0.1:8080/"] });
    assert.deepEqual((await client.request("sandbox/changes", { id })).changes.map((c) => c.path), ["fetched.txt"]);

    const none = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-vm-none"), runtime: "vm" });
    const links = await client.request("sandbox/exec", { id: none.id, argv: ["sh", "-c", "ls /sys/class/net"] });
    assert.equal(links.stdout.trim(), "lo", "network none: loopback only");

    await refused(client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-vm-host"), runtime: "vm", network: "host" }), "E_INVALID_PARAMS", /host is not for VM sandboxes/);
    const slirps = () => descendants(fx.agent.child.pid!).filter((pid) => fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "slirp4netns");
    assert.equal(slirps().length, 1, "one slirp4netns, for the nat VM");
    await client.request("sandbox/delete", { id });
    await client.request("sandbox/delete", { id: none.id });
    await waitFor("slirp4netns to be gone", () => (slirps().length === 0 ? true : undefined));
    assert.deepEqual(mountsUnder(fx.stateDir), [], "no network namespace or share left mounted");
    await fx.stop();
  } finally {
    host.stop();
  }
});

test("kill -9 of the agent with a VM running: its QEMU goes, the restarted agent boots it again (a damaged initramfs built again first), delete leaves nothing", async () => {
  const fx = await startFixture([], { PADDOCK_VM_POOL: "0" });
  let client = await fx.client();
  const { id } = await client.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-vm-crash"), runtime: "vm" });
  await client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo kept > note.txt"] });
  const qemu = fs.readFileSync(cgroupProcs(fx.stateDir, id), "utf8").split("\n").filter(Boolean).map(Number);
  assert.equal(qemu.length, 1, "QEMU is the one process in the sandbox's cgroup");
  fx.agent.child.kill("SIGKILL");
  await fx.agent.exited;
  // Meanwhile the cached initramfs is damaged: the next boot must notice and build it again.
  const record = JSON.parse(fs.readFileSync(path.join(fx.stateDir, "cache", "vm", "artifacts.json"), "utf8")) as { initramfs: string; initramfsDigest: string };
  fs.appendFileSync(record.initramfs, "corrupt");
  await fx.restart();
  client = await fx.client();
  await waitFor("the old QEMU to be gone", () => (alive(qemu[0]!) ? undefined : true));
  assert.equal((await client.request("sandbox/get", { id })).state, "running");
  assert.equal((await client.request("sandbox/exec", { id, argv: ["cat", "note.txt"] })).stdout, "kept\n");
  assert.equal(createHash("sha256").update(fs.readFileSync(record.initramfs)).digest("hex"), record.initramfsDigest, "the damaged initramfs was built again, not booted");
  const again = fs.readFileSync(cgroupProcs(fx.stateDir, id), "utf8").split("\n").filter(Boolean).map(Number);
  await client.request("sandbox/delete", { id });
  assert.equal(alive(again[0]!), false, "delete ends QEMU");
  assert.deepEqual(mountsUnder(fx.stateDir), []);
  await fx.stop();
});

test("a bad kernel, and a guest that never gets ready: clear errors within a deadline, nothing left running", async () => {
  const notAKernel = await startFixture([], { PADDOCK_KERNEL: "/bin/true", PADDOCK_KERNEL_RELEASE: guestRelease, PADDOCK_ACCELERATOR: "tcg", PADDOCK_VM_POOL: "0" });
  const bad = await notAKernel.client();
  const started = Date.now();
  await refused(bad.request("sandbox/create", { workspace: makeWorkspace(notAKernel.base, "ws-bad-kernel"), runtime: "vm" }), "E_RUNTIME_UNAVAILABLE", /QEMU ended before the guest was ready .*kernel/i);
  assert.ok(Date.now() - started < 30_000);
  assert.deepEqual((await bad.request("sandbox/list")).sandboxes, [], "nothing recorded");
  assert.deepEqual(qemusOf(notAKernel.agent.child.pid!), [], "no QEMU left");
  await notAKernel.stop();

  const slow = await startFixture([], { PADDOCK_VM_READY_TIMEOUT_MS: "300", PADDOCK_ACCELERATOR: "tcg", PADDOCK_VM_POOL: "0" });
  const client = await slow.client();
  const t0 = Date.now();
  await refused(client.request("sandbox/create", { workspace: makeWorkspace(slow.base, "ws-never-ready"), runtime: "vm" }), "E_RUNTIME_UNAVAILABLE", /did not answer within/);
  assert.ok(Date.now() - t0 < 15_000, "refused at the deadline, not after a boot");
  assert.deepEqual((await client.request("sandbox/list")).sandboxes, []);
  assert.deepEqual(mountsUnder(slow.stateDir), []);
  await waitFor("its QEMU to be gone", () => (qemusOf(slow.agent.child.pid!).length === 0 ? true : undefined));
  await slow.stop();
});

test("the guest agent runs nothing for a host without the VM's secret", async () => {
  const base = tempDir("paddock-vm-secret-");
  const artifacts = await new GuestImages(path.join(base, "cache"), path.join(REPO, "dist", "native", "guest-agent")).prepare();
  const initrd = path.join(base, "initrd");
  fs.writeFileSync(initrd, Buffer.concat([fs.readFileSync(artifacts.initramfs), secretArchive("the-right-secret")]));
  fs.mkdirSync(path.join(base, "share", "ws"), { recursive: true });
  const [ours, theirs] = socketPair();
  const qemu = spawn("qemu-system-x86_64", [
    "-accel", "tcg", "-M", "pc", "-m", "256", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-kernel", artifacts.kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet loglevel=1 rdinit=/init",
    "-serial", "null", "-device", "virtio-serial-pci", "-chardev", "socket,id=ctl,fd=3", "-device", "virtserialport,chardev=ctl,name=paddock",
    "-fsdev", `local,id=ws,path=${path.join(base, "share")},security_model=none`, "-device", "virtio-9p-pci,fsdev=ws,mount_tag=workspace", "-nic", "none",
  ], { stdio: ["ignore", "ignore", "ignore", theirs] });
  fs.closeSync(theirs);
  try {
    const connection = new GuestConnection(new net.Socket({ fd: ours, readable: true, writable: true }));
    const outputs: string[] = [];
    // Sent before any secret: the guest must ignore it, now and after a good secret comes.
    void connection.exec({ argv: ["sh", "-c", "echo pwned > /mnt/share/pwned"], env: {}, cwd: "/", uid: 0, gid: 0 }, (_s, d) => outputs.push(d.toString())).exited.catch(() => undefined);
    await refused(connection.authenticate("a-wrong-secret!!", 120_000), "E_RUNTIME_UNAVAILABLE", /wrong secret/);
    assert.equal(await connection.authenticate("the-right-secret", 10_000), artifacts.release, "the right secret is taken, and the guest says its kernel");
    const ok = connection.exec({ argv: ["sh", "-c", "echo hello; ls /mnt/share"], env: { PATH: "/bin" }, cwd: "/", uid: 0, gid: 0 }, (_s, d) => outputs.push(d.toString()));
    assert.equal((await ok.exited).exitCode, 0);
    assert.equal(outputs.join(""), "hello\nws\n", "only the command sent after the secret ran");
    assert.equal(fs.existsSync(path.join(base, "share", "pwned")), false);
  } finally {
    qemu.kill("SIGKILL");
  }
});

test("a configured kernel download is fetched once, verified before it is kept or booted, under a lock; a wrong digest is refused with nothing kept", async () => {
  const kernelFile = path.join("/boot", `vmlinuz-${guestRelease}`);
  const kernel = fs.readFileSync(kernelFile);
  const digest = createHash("sha256").update(kernel).digest("hex");
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (req.url !== "/vmlinuz") return void res.writeHead(404).end();
    res.writeHead(200, { "content-length": kernel.length });
    // In pieces, slowly enough that two boots asking at once overlap.
    let at = 0;
    const next = () => {
      if (at >= kernel.length) return void res.end();
      res.write(kernel.subarray(at, (at += 1 << 20)), () => setTimeout(next, 20));
    };
    next();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  try {
    // No PADDOCK_KERNEL_RELEASE: the release is read from the bzImage's own header.
    const fx = await startFixture([], { PADDOCK_KERNEL_URL: `${url}/vmlinuz`, PADDOCK_KERNEL_SHA256: digest, PADDOCK_VM_POOL: "0", PADDOCK_ACCELERATOR: "tcg" });
    const client = await fx.client();
    const downloads = path.join(fx.stateDir, "cache", "vm", "kernels");
    // One of them a user's folder: its QEMU runs as that user, and still reads the kernel.
    const [a, b] = await Promise.all([makeWorkspace(fx.base, "ws-dl-a"), makeWorkspace(fx.base, "ws-dl-b", 1000, 1000)].map((workspace) => client.request("sandbox/create", { workspace, runtime: "vm" })));
    assert.equal(requests, 1, "two boots at once fetched the kernel once");
    assert.equal(a!.vm?.kernelRelease, guestRelease);
    assert.equal((await client.request("sandbox/exec", { id: b!.id, argv: ["uname", "-r"] })).stdout.trim(), guestRelease);
    assert.deepEqual(fs.readdirSync(downloads).filter((n) => !n.endsWith(".lock")), [digest], "kept under its digest, no temp left");
    assert.equal(createHash("sha256").update(fs.readFileSync(path.join(downloads, digest))).digest("hex"), digest);
    // The kept copy damaged: the next boot checks it, fetches it again, and boots the good one.
    fs.appendFileSync(path.join(downloads, digest), "tampered");
    await client.request("sandbox/stop", { id: a!.id });
    await client.request("sandbox/start", { id: a!.id });
    assert.equal(requests, 2, "fetched again");
    assert.equal(createHash("sha256").update(fs.readFileSync(path.join(downloads, digest))).digest("hex"), digest, "the damaged copy was replaced");
    assert.equal((await client.request("sandbox/exec", { id: a!.id, argv: ["uname", "-r"] })).stdout.trim(), guestRelease);
    await fx.stop();

    const wrong = createHash("sha256").update("not this kernel").digest("hex");
    const bad = await startFixture([], { PADDOCK_KERNEL_URL: `${url}/vmlinuz`, PADDOCK_KERNEL_SHA256: wrong, PADDOCK_VM_POOL: "0", PADDOCK_ACCELERATOR: "tcg" });
    const badClient = await bad.client();
    await refused(badClient.request("sandbox/create", { workspace: makeWorkspace(bad.base, "ws-dl-bad"), runtime: "vm" }), "E_RUNTIME_UNAVAILABLE", new RegExp(`has sha256 ${digest}, not the configured ${wrong}`));
    await refused(badClient.request("sandbox/create", { workspace: makeWorkspace(bad.base, "ws-dl-bad-again"), runtime: "vm" }), "E_RUNTIME_UNAVAILABLE", /has sha256/);
    assert.deepEqual(fs.readdirSync(path.join(bad.stateDir, "cache", "vm", "kernels")).filter((n) => !n.endsWith(".lock")), [], "nothing kept");
    assert.deepEqual((await badClient.request("sandbox/list")).sandboxes, []);
    assert.deepEqual(qemusOf(bad.agent.child.pid!), [], "nothing booted");
    await bad.stop();

    const gone = await startFixture([], { PADDOCK_KERNEL_URL: `${url}/nothing-here`, PADDOCK_KERNEL_SHA256: digest, PADDOCK_VM_POOL: "0", PADDOCK_ACCELERATOR: "tcg" });
    await refused((await gone.client()).request("sandbox/create", { workspace: makeWorkspace(gone.base, "ws-dl-404"), runtime: "vm" }), "E_RUNTIME_UNAVAILABLE", /HTTP 404/);
    await gone.stop();
  } finally {
    server.close();
  }
});
