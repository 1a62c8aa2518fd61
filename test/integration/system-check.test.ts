/**
 * `system/check` against what this machine really does: each check's verdict is compared
 * with an independent attempt made by the test itself, never with a hard-coded answer.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO, runCli, socketPeer, startSocketAgent, tempDir, type AgentProcess } from "../helpers/agent-process";
import type { CheckName, SystemCheckResult } from "../../protocol/methods";
import type { RpcMessage } from "../helpers/raw-peer";

let base = "";
let stateDir = "";
let socketPath = "";
let agent: AgentProcess;
let fresh: SystemCheckResult;

before(async () => {
  base = tempDir();
  stateDir = path.join(base, "state");
  socketPath = path.join(base, "run", "agent.sock");
  agent = await startSocketAgent(stateDir, socketPath);
  const { peer, socket } = await socketPeer(socketPath);
  await peer.call("initialize", {});
  const res = await peer.call("system/check", { refresh: true }, "first-check", 120_000);
  socket.destroy();
  assert.equal(res.error, undefined, JSON.stringify(res.error));
  fresh = res.result as SystemCheckResult;
});

after(async () => {
  await agent.stop();
});

const sh = (cmd: string, args: string[], opts: { timeout?: number } = {}) => spawnSync(cmd, args, { encoding: "utf8", timeout: opts.timeout ?? 20_000 });

function overlayWorks(rootless: boolean): boolean {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "truth-ovl-"));
  for (const d of ["l", "u", "w", "m"]) fs.mkdirSync(path.join(dir, d));
  const opts = `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w${rootless ? ",userxattr" : ""}`;
  const script = `mount -t overlay truth -o ${opts} ${dir}/m && touch ${dir}/m/f && test -f ${dir}/u/f`;
  let result;
  if (rootless) {
    for (const p of [dir, ...["l", "u", "w", "m"].map((d) => path.join(dir, d))]) fs.chownSync(p, 65534, 65534);
    result = sh("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "-U", "-m", "--map-root-user", "sh", "-c", script]);
  } else {
    result = sh("unshare", ["-m", "sh", "-c", script]);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return result.status === 0;
}

function ociRuntimeWorks(runtime: string): boolean {
  const bundle = fs.mkdtempSync(path.join(os.tmpdir(), `truth-${runtime}-`));
  try {
    if (sh(runtime, ["spec", "--bundle", bundle]).status !== 0 && sh("sh", ["-c", `cd ${bundle} && ${runtime} spec`]).status !== 0) return false;
    const config = JSON.parse(fs.readFileSync(path.join(bundle, "config.json"), "utf8"));
    config.process.terminal = false;
    config.process.args = ["/usr/bin/true"];
    config.mounts.push({ destination: "/usr", type: "bind", source: "/usr", options: ["rbind", "ro"] });
    fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(config));
    fs.mkdirSync(path.join(bundle, "rootfs", "usr"), { recursive: true });
    for (const l of ["bin", "lib", "lib64"]) fs.symlinkSync(`usr/${l}`, path.join(bundle, "rootfs", l));
    const id = `truth-${process.pid}-${runtime}`;
    const ok = sh(runtime, ["--root", path.join(bundle, "state"), "run", "--bundle", bundle, id]).status === 0;
    sh(runtime, ["--root", path.join(bundle, "state"), "delete", "--force", id]);
    return ok;
  } finally {
    fs.rmSync(bundle, { recursive: true, force: true });
  }
}

/** The test's own guest: the static probe /init packed by the cpio program, not by the agent. */
function ownInitramfs(): string {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), "truth-initramfs-"));
  const binary = path.join(REPO, "dist", "native", "probe-init");
  assert.ok(fs.existsSync(binary), "npm run build compiles the probe /init");
  fs.copyFileSync(binary, path.join(stage, "init"));
  fs.chmodSync(path.join(stage, "init"), 0o755);
  fs.mkdirSync(path.join(stage, "dev"));
  assert.equal(sh("mknod", [path.join(stage, "dev", "console"), "c", "5", "1"]).status, 0);
  const image = path.join(path.dirname(stage), `${path.basename(stage)}.cpio`);
  assert.equal(sh("sh", ["-c", `cd ${stage} && find . | cpio -o -H newc --quiet > ${image}`]).status, 0);
  fs.rmSync(stage, { recursive: true, force: true });
  return image;
}

function guestBoots(accel: "kvm" | "tcg", timeoutMs: number): boolean {
  const kernels = fs.readdirSync("/boot").filter((n) => n.startsWith("vmlinuz-"));
  kernels.sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const kernel = kernels.pop();
  assert.ok(kernel, "a guest kernel is installed in /boot");
  const initramfs = ownInitramfs();
  const args = ["-accel", accel, "-M", "pc", "-m", "128", "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot", "-kernel", `/boot/${kernel}`, "-initrd", initramfs, "-append", "console=ttyS0 panic=-1 quiet"];
  const result = sh("qemu-system-x86_64", args, { timeout: timeoutMs });
  fs.rmSync(initramfs, { force: true });
  return (result.stdout ?? "").includes("PADDOCK-PROBE-OK");
}

const truths: Record<CheckName, () => boolean> = {
  overlayfs: () => overlayWorks(false),
  "overlayfs-rootless": () => overlayWorks(true),
  "fuse-overlayfs": () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "truth-fuse-"));
    for (const d of ["l", "u", "w", "m"]) fs.mkdirSync(path.join(dir, d));
    const mounted = sh("fuse-overlayfs", ["-o", `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`, `${dir}/m`]).status === 0;
    let ok = false;
    if (mounted) {
      try {
        fs.writeFileSync(path.join(dir, "m", "f"), "x");
        ok = fs.existsSync(path.join(dir, "u", "f"));
      } finally {
        sh("fusermount3", ["-u", "-z", `${dir}/m`]);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
    return ok;
  },
  bwrap: () => sh("bwrap", ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--", "/usr/bin/true"]).status === 0,
  runc: () => ociRuntimeWorks("runc"),
  crun: () => ociRuntimeWorks("crun"),
  cgroups: () => {
    const probe = `/sys/fs/cgroup/pids/truth-${process.pid}`;
    const v2probe = `/sys/fs/cgroup/truth-${process.pid}`;
    for (const p of [probe, v2probe]) {
      try {
        fs.mkdirSync(p);
        fs.rmdirSync(p);
        return true;
      } catch {
        // try the other layout
      }
    }
    return false;
  },
  qemu: () => sh("qemu-system-x86_64", ["--version"]).status === 0,
  kvm: () => fs.existsSync("/dev/kvm") && guestBoots("kvm", 6_000),
  tcg: () => guestBoots("tcg", 60_000),
};

for (const name of Object.keys(truths) as CheckName[]) {
  test(`check "${name}" agrees with what the machine really does`, () => {
    const check = fresh.checks.find((c) => c.name === name);
    assert.ok(check, `no ${name} check in the result`);
    const truth = truths[name]();
    assert.equal(check.ok, truth, `agent says ${check.ok} (${check.detail}); an independent attempt says ${truth}`);
    assert.ok(check.detail.length > 0);
    if (!check.ok) assert.ok(check.hint && check.hint.length > 0, "a failed check carries a hint");
  });
}

test("the cgroup check names the hierarchy this machine has", () => {
  const types = fs.readFileSync("/proc/self/mounts", "utf8").split("\n").map((line) => line.split(" ")[2]);
  const v1 = types.includes("cgroup");
  const v2 = types.includes("cgroup2");
  const detail = fresh.checks.find((c) => c.name === "cgroups")!.detail;
  assert.match(detail, v1 && v2 ? /^hybrid/ : v2 ? /^v2/ : /^v1/);
});

test("results are cached for this boot and re-run on demand", async () => {
  const { peer, socket } = await socketPeer(socketPath);
  await peer.call("initialize", {});
  const cached = (await peer.call("system/check")).result as SystemCheckResult;
  assert.equal(cached.cached, true);
  assert.equal(cached.checkedAt, fresh.checkedAt);
  assert.equal(cached.bootId, fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
  assert.deepEqual(cached.checks.map((c) => c.ok), fresh.checks.map((c) => c.ok));
  socket.destroy();
});

test("paddock check prints a table through the running agent and exits by the default runtime's readiness", async () => {
  const out = await runCli(["check", "--state-dir", stateDir]);
  const ready = fresh.runtimes[fresh.defaultRuntime].available;
  assert.equal(out.code, ready ? 0 : 1, out.stderr);
  for (const c of fresh.checks) assert.match(out.stdout, new RegExp(`^${c.name}\\s+${c.ok ? "ok" : "FAIL"}\\s`, "m"));
  assert.match(out.stdout, /Cached from/);
  const log = fs.readFileSync(path.join(stateDir, "logs", "agent.log"), "utf8");
  assert.match(log, /"clientName":"paddock-cli"/, "the CLI used the agent serving this state dir");

  const json = await runCli(["check", "--json", "--state-dir", stateDir]);
  const parsed = JSON.parse(json.stdout) as SystemCheckResult;
  assert.deepEqual(parsed.checks.map((c) => c.name), fresh.checks.map((c) => c.name));
});

test("paddock check without any agent starts a private one over stdio", async () => {
  const dir = path.join(tempDir(), "state");
  fs.mkdirSync(path.join(dir, "cache"), { recursive: true, mode: 0o700 });
  fs.copyFileSync(path.join(stateDir, "cache", "system-check.json"), path.join(dir, "cache", "system-check.json"));
  const out = await runCli(["check", "--json", "--state-dir", dir], { env: { PADDOCK_SOCKET: "" } });
  assert.equal(out.code, 0, out.stderr);
  const parsed = JSON.parse(out.stdout) as SystemCheckResult;
  assert.equal(parsed.cached, true);
  assert.equal(fs.existsSync(path.join(dir, "agent.json")), false, "no socket agent was involved");
  assert.match(fs.readFileSync(path.join(dir, "logs", "agent.log"), "utf8"), /"transport":"stdio"/);
});

test("a client written in Python from the README initializes, checks, and gets spec-conforming errors", () => {
  const result = spawnSync("/usr/bin/python3", [path.join(REPO, "test", "clients", "paddock_client.py"), socketPath, "conformance"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout) as Record<string, RpcMessage & RpcMessage[]>;
  assert.equal((out.initialize!.result as { protocolVersion: string }).protocolVersion, "1.0");
  assert.ok(Array.isArray((out.check!.result as SystemCheckResult).checks));
  assert.equal(out.parse_error!.id, null);
  assert.equal(out.parse_error!.error?.code, -32700);
  assert.equal(out.unknown_method!.error?.code, -32601);
  assert.equal(out.bad_params!.error?.code, -32602);
  assert.equal(out.bad_params!.error?.data?.field, "refresh");
  assert.equal(out.empty_batch!.error?.code, -32600);
  assert.ok(Array.isArray(out.batch) && out.batch.length === 1 && out.batch[0]!.id === "b1");
  assert.deepEqual(out.ping!.result, { data: "still alive" });
});
