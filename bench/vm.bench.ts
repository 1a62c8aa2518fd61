/**
 * Micro-VMs: creating a VM sandbox (boot to the guest agent's ready, through the agent)
 * beside a bare `qemu -kernel` boot of the same kernel and initramfs to the guest agent's
 * console line, in the same run and with the same accelerator; and a command's round trip
 * in the guest.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { percentile, ratio, round, startBenchAgent, timeMs, writeResults, type Row } from "./lib";

const ROUNDS = Number(process.env.BENCH_VM_ROUNDS ?? 5);
const EXECS = Number(process.env.BENCH_VM_EXECS ?? 30);
const MARKER = "paddock-guest: ready for the host";

/**
 * QEMU with the same kernel, initramfs, devices (the port, a 9p share the guest mounts before
 * it says it is ready), seccomp sandbox and accelerator, until the guest agent's console line.
 */
function bareBoot(kernel: string, initramfs: string, accel: string, share: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const qemu = spawn("qemu-system-x86_64", [
      "-accel", accel, "-M", "pc", "-m", "512", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-kernel", kernel, "-initrd", initramfs, "-append", "console=ttyS0 panic=-1 quiet loglevel=1 rdinit=/init",
      "-serial", "stdio", "-device", "virtio-serial-pci", "-chardev", "null,id=ctl", "-device", "virtserialport,chardev=ctl,name=paddock",
      "-fsdev", `local,id=ws,path=${share},security_model=none,multidevs=remap`, "-device", "virtio-9p-pci,fsdev=ws,mount_tag=workspace", "-nic", "none",
      "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    ], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    qemu.stdout.on("data", (d: Buffer) => {
      out += d.toString("utf8");
      if (out.includes(MARKER)) {
        const ms = performance.now() - started;
        qemu.kill("SIGKILL");
        resolve(ms);
      }
    });
    qemu.once("exit", () => (out.includes(MARKER) ? undefined : reject(new Error(`bare boot ended without the marker: ${out.slice(-300)}`))));
  });
}

async function main(): Promise<void> {
  // Boots are measured without a pool (which would hand out VMs booted ahead); claims with one.
  const agent = await startBenchAgent("paddock-bench-vm-", { PADDOCK_VM_POOL: "0" });
  const pooled = await startBenchAgent("paddock-bench-vm-pool-", { PADDOCK_VM_POOL: "1" });
  try {
    const client = await agent.client();
    const ws = path.join(agent.work, "ws");
    fs.mkdirSync(ws);
    fs.writeFileSync(path.join(ws, "README.md"), "# bench\n");
    // The first VM builds the initramfs and runs the checks: not measured.
    const first = await client.request("sandbox/create", { workspace: ws, runtime: "vm" });
    const accel = first.vm!.accelerator;
    const execs: number[] = [];
    for (let i = 0; i < EXECS; i++) execs.push(await timeMs(() => client.request("sandbox/exec", { id: first.id, argv: ["true"] })));
    await client.request("sandbox/delete", { id: first.id });

    const artifacts = JSON.parse(fs.readFileSync(path.join(agent.stateDir, "cache", "vm", "artifacts.json"), "utf8")) as { kernel: string; initramfs: string; guestAgentBytes: number };
    const share = path.join(agent.work, "share");
    fs.mkdirSync(path.join(share, "ws"), { recursive: true });
    const creates: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      let id = "";
      creates.push(await timeMs(async () => (id = (await client.request("sandbox/create", { workspace: ws, runtime: "vm" })).id)));
      await client.request("sandbox/delete", { id });
      bare.push(await bareBoot(artifacts.kernel, artifacts.initramfs, accel, share));
    }
    // The warm pool: with a VM ready, creation claims it instead of booting.
    const poolClient = await pooled.client();
    const poolWs = path.join(pooled.work, "ws");
    fs.mkdirSync(poolWs);
    await poolClient.request("sandbox/delete", { id: (await poolClient.request("sandbox/create", { workspace: poolWs, runtime: "vm" })).id });
    const claims: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      while ((await poolClient.request("vm/pool", {})).ready < 1) await new Promise((r) => setTimeout(r, 200));
      let id = "";
      let fromPool = false;
      claims.push(
        await timeMs(async () => {
          const created = await poolClient.request("sandbox/create", { workspace: poolWs, runtime: "vm" });
          id = created.id;
          fromPool = created.vm?.fromPool === true;
        }),
      );
      if (!fromPool) throw new Error("the pool had a VM ready, but creation booted one");
      await poolClient.request("sandbox/delete", { id });
    }
    const pool = await poolClient.request("vm/pool", {});
    const [c, b, e, k] = [creates, bare, execs, claims].map((s) => round(percentile(s, 50))) as [number, number, number, number];
    const rows: Row[] = [
      [`sandbox/create (vm, ${accel}) to the guest agent ready (p50)`, `${c} ms`, `bare qemu -kernel boot to the guest agent's console line ${b} ms (×${ratio(c, b)})`, "≤ 1.15× bare boot", c <= 1.15 * b],
      [`sandbox/exec true in the VM (p50)`, `${e} ms`, "", "", undefined],
      ["sandbox/create (vm) claiming a VM from the warm pool (p50)", `${k} ms`, `a boot ${c} ms; pool hits ${pool.hits}, misses ${pool.misses}`, "≤ 50 ms", k <= 50],
    ];
    const sizes = { guestAgentKiB: Math.round(artifacts.guestAgentBytes / 1024), initramfsMiB: round(fs.statSync(artifacts.initramfs).size / (1 << 20)) };
    writeResults(
      "vm",
      "Micro-VM sandboxes",
      `${ROUNDS} boots each way, ${EXECS} execs; accelerator ${accel} (KVM does not boot a guest on these machines). The guest agent is ${sizes.guestAgentKiB} KiB (static), the initramfs ${sizes.initramfsMiB} MiB.`,
      { accelerator: accel, createP50Ms: c, bareBootP50Ms: b, ratio: ratio(c, b), execTrueP50Ms: e, poolClaimP50Ms: k, pool, ...sizes },
      rows,
    );
  } finally {
    agent.stop();
    pooled.stop();
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
