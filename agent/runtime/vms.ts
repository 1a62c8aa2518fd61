/**
 * Micro-VM sandboxes with QEMU: the guest kernel and the agent's initramfs (plus a second
 * archive with this VM's secret), KVM where `system/check` proved it boots a guest and TCG
 * otherwise, the sandbox's merged view shared over virtio-9p, and a virtio-serial port to
 * the guest agent on a socket pair (no path on disk for anyone else to open).
 *
 * QEMU runs as the sandbox's owner with no capabilities (so the share can create no device
 * node and open nothing the owner could not), joins the sandbox's cgroup (so stop, delete
 * and a restarted agent kill it), and gets its files as inherited descriptors, since the
 * state dir is closed to the owner.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { PaddockError } from "../protocol/errors";
import type { Limits, NetworkMode } from "../protocol/methods";
import type { Logger } from "../log/logger";
import { socketPair } from "../sys/libc";
import { GuestConnection } from "../vm/guest-connection";
import { secretArchive, type GuestImages } from "../vm/guest-image";
import { DEFAULT_PATH } from "./process-runtime";

export type Accelerator = "kvm" | "tcg";

export interface VmStart {
  id: string;
  /** STATE_DIR/sandboxes/ID/vm: the initrd with the secret and the console log. */
  dir: string;
  workspaceView: string;
  uid: number;
  gid: number;
  limits: Limits;
  network: NetworkMode;
  accelerator: Accelerator;
  cgroupProcs: string[];
  /** Boot steps, for progress notifications. */
  onProgress?: (step: string) => void;
}

export interface BootedVm {
  accelerator: Accelerator;
  kernelRelease: string;
  bootMs: number;
}

interface Running {
  qemu: ChildProcess;
  connection: GuestConnection;
  booted: BootedVm;
}

const READY_DEADLINE_MS: Record<Accelerator, number> = { kvm: 20_000, tcg: 90_000 };

/** How long a guest may take to answer: PADDOCK_VM_READY_TIMEOUT_MS, for machines slower (or tests quicker) than these. */
function readyDeadline(accelerator: Accelerator): number {
  const configured = Number(process.env.PADDOCK_VM_READY_TIMEOUT_MS);
  return Number.isFinite(configured) && configured > 0 ? configured : READY_DEADLINE_MS[accelerator];
}
const DEFAULT_MEMORY_MIB = 512;
const QEMU = "qemu-system-x86_64";

export class Vms {
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly images: GuestImages,
    private readonly enterHelper: string,
    private readonly log: Logger,
  ) {}

  async start(request: VmStart): Promise<BootedVm> {
    await this.stop(request.id);
    if (request.network !== "none") {
      throw new PaddockError("E_RUNTIME_UNAVAILABLE", `network ${request.network} is not available for VM sandboxes yet`, "create the VM sandbox with network none");
    }
    const started = performance.now();
    const artifacts = this.images.artifacts();
    fs.mkdirSync(request.dir, { recursive: true, mode: 0o700 });
    const secret = randomBytes(32).toString("hex");
    const initrd = path.join(request.dir, "initrd");
    fs.writeFileSync(initrd, Buffer.concat([fs.readFileSync(artifacts.initramfs), secretArchive(secret)]), { mode: 0o600 });
    const consoleLog = path.join(request.dir, "console.log");

    const [ours, theirs] = socketPair();
    const initrdFd = fs.openSync(initrd, "r");
    const consoleFd = fs.openSync(consoleLog, "w", 0o600);
    const viewFd = fs.openSync(request.workspaceView, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    // QEMU opens them again through /proc/self/fd as the owner: they must be the owner's.
    for (const fd of [initrdFd, consoleFd]) fs.fchownSync(fd, request.uid, request.gid);
    const memory = request.limits.memoryMiB ?? DEFAULT_MEMORY_MIB;
    const cpus = Math.max(1, Math.ceil(request.limits.cpus ?? 1));
    // Descriptors 3-6 in QEMU: the port's socket, the initrd, the console log, the share.
    const qemuArgs = [
      "-accel", request.accelerator,
      "-M", "pc",
      "-m", String(memory),
      "-smp", String(cpus),
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-kernel", artifacts.kernel,
      "-initrd", "/proc/self/fd/4",
      "-append", "console=ttyS0 panic=-1 quiet loglevel=1 rdinit=/init",
      "-chardev", "file,id=con,path=/proc/self/fd/5",
      "-serial", "chardev:con",
      "-device", "virtio-serial-pci",
      "-chardev", "socket,id=ctl,fd=3",
      "-device", "virtserialport,chardev=ctl,name=paddock",
      "-fsdev", "local,id=ws,path=/proc/self/fd/6,security_model=none,multidevs=remap",
      "-device", "virtio-9p-pci,fsdev=ws,mount_tag=workspace",
      "-nic", "none",
    ];
    const command = [
      this.enterHelper,
      ...request.cgroupProcs.flatMap((file) => ["--cgroup", file]),
      ...(request.uid !== process.getuid?.() ? ["--user", String(request.uid), String(request.gid)] : []),
      "--keep-fds", "4",
      "--",
      "/usr/bin/setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--pdeathsig", "SIGKILL", "--",
      `/usr/bin/${QEMU}`, ...qemuArgs,
    ];
    let qemu: ChildProcess;
    try {
      qemu = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "ignore", "pipe", theirs, initrdFd, consoleFd, viewFd], env: { PATH: DEFAULT_PATH } });
    } finally {
      for (const fd of [theirs, initrdFd, consoleFd, viewFd]) fs.closeSync(fd);
    }
    let stderr = "";
    qemu.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString("utf8")).slice(-4000)));
    const connection = new GuestConnection(new net.Socket({ fd: ours, readable: true, writable: true }));
    request.onProgress?.(`booting the VM (${request.accelerator})`);
    const exitedEarly = new Promise<never>((_, reject) =>
      qemu.once("exit", (code, signal) => {
        const tail = readTail(consoleLog);
        reject(new PaddockError("E_RUNTIME_UNAVAILABLE", `QEMU ended before the guest was ready (${signal ?? `exit code ${code}`}): ${stderr.trim().split("\n").pop() || tail || "no output"}`, `the VM's console log is ${consoleLog}`));
      }),
    );
    try {
      // QEMU's own exit says more than the broken channel it causes: it wins a near tie.
      const release = await Promise.race([
        connection.authenticate(secret, readyDeadline(request.accelerator)).catch(async (err: unknown) => {
          await Promise.race([exitedEarly, new Promise((r) => setTimeout(r, 500))]);
          throw err;
        }),
        exitedEarly,
      ]);
      const booted: BootedVm = { accelerator: request.accelerator, kernelRelease: release, bootMs: Math.round(performance.now() - started) };
      this.running.set(request.id, { qemu, connection, booted });
      exitedEarly.catch(() => undefined);
      qemu.once("exit", () => {
        if (this.running.get(request.id)?.qemu === qemu) this.running.delete(request.id);
        connection.close();
      });
      this.log.info("VM booted", { sandboxId: request.id, ...booted, guestAgentBytes: artifacts.guestAgentBytes });
      request.onProgress?.(`guest ready in ${booted.bootMs} ms`);
      return booted;
    } catch (err) {
      exitedEarly.catch(() => undefined);
      qemu.kill("SIGKILL");
      connection.close();
      this.log.warn("VM did not boot", { sandboxId: request.id, error: (err as Error).message, console: readTail(consoleLog) });
      throw err;
    }
  }

  connection(id: string): GuestConnection {
    const vm = this.running.get(id);
    if (!vm) throw new PaddockError("E_INVALID_STATE", `the VM of sandbox ${id} is not running`, "stop and start the sandbox (its changes are kept)");
    return vm.connection;
  }

  booted(id: string): BootedVm | undefined {
    return this.running.get(id)?.booted;
  }

  /** Ends the VM: QEMU is asked to quit (SIGTERM), then killed after 2 s. */
  async stop(id: string): Promise<void> {
    const vm = this.running.get(id);
    if (!vm) return;
    this.running.delete(id);
    vm.connection.close();
    if (vm.qemu.exitCode !== null || vm.qemu.signalCode !== null) return;
    const exited = new Promise((resolve) => vm.qemu.once("exit", resolve));
    vm.qemu.kill("SIGTERM");
    const timer = setTimeout(() => vm.qemu.kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(timer);
  }
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-3).join(" | ");
  } catch {
    return "";
  }
}
