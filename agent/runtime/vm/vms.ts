/**
 * Micro-VM sandboxes with QEMU: the guest kernel and the agent's initramfs (plus a second
 * archive with this VM's secret), KVM where `system/check` proved it boots a guest and TCG
 * otherwise, a virtio-9p share, and a virtio-serial port to the guest agent on a socket pair
 * (no path on disk for anyone else to open).
 *
 * The share is a "hub" folder of the VM's own; the sandbox's merged view is bound on its
 * `ws` folder when the VM is given to the sandbox (the guest then binds it on /workspace).
 * So a VM can boot before anyone asks for it: a warm pool keeps up to PADDOCK_VM_POOL
 * (default 1) booted per owner and accelerator, filled after each VM sandbox is created,
 * and a creation claims one instead of paying a boot. A pooled VM's folder sits in the
 * sandboxes folder (its mounts are then detached from commands' namespaces like every
 * sandbox's) and is renamed into the sandbox's folder when claimed.
 *
 * Network `nat`: QEMU's user-mode network (the guest's eth0), with QEMU itself in a network
 * namespace of its own whose only way out is slirp4netns without the host's loopback: so the
 * guest reaches what the host reaches, but nothing listening on the host's 127.0.0.1.
 *
 * QEMU runs as the sandbox's owner with no capabilities (so the share can create no device
 * node and open nothing the owner could not), joins the sandbox's cgroup (so stop, delete
 * and a restarted agent kill it), and gets its files as inherited descriptors, since the
 * state dir is closed to the owner.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { PaddockError, stateDirFailure } from "../../../protocol/errors";
import type { Limits, NetworkMode } from "../../../protocol/methods";
import type { Logger } from "../../log/logger";
import { MNT_DETACH, MS_BIND, errnoName, mount, socketPair, umount2 } from "../../sys/libc";
import { GuestConnection } from "../../guest/guest-connection";
import { unmountAllBelow } from "../../changeset/overlay";
import { secretArchive, type GuestImages } from "../../guest/guest-image";
import { DEFAULT_PATH } from "../../sys/default-path";
import { SLIRP_DNS, startSlirp } from "../slirp";
import { whyItFailed } from "../../log/logfmt";
import { VM_DEFAULTS, vmMachine } from "../limits";
import type { Accelerator } from "../../state/sandbox-record";


export interface VmStart {
  id: string;
  /** STATE_DIR/sandboxes/ID/vm: the initrd with the secret, the console log, the share's hub. */
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
  /** QEMU ended without being stopped (killed by its owner, a guest that powered off or crashed). */
  onEnded?: (why: string) => void;
}

export interface BootedVm {
  accelerator: Accelerator;
  kernelRelease: string;
  /** How long this VM took to boot (for a pooled one, before it was claimed). */
  bootMs: number;
  fromPool: boolean;
}

interface Vm {
  qemu: ChildProcess;
  connection: GuestConnection;
  dir: string;
  hub: string;
  accelerator: Accelerator;
  kernelRelease: string;
  bootMs: number;
  consoleLog: string;
  /** Network nat: the namespace QEMU runs in (a bind on a file of the VM's folder) and its slirp4netns. */
  netns?: string;
  slirp?: ChildProcess;
  /** Why QEMU ended, once it has. */
  ended?: string;
}

/** What a boot needs: a sandbox's start less what only a claim uses. */
type Boot = Pick<VmStart, "dir" | "uid" | "gid" | "limits" | "network" | "accelerator" | "cgroupProcs" | "onProgress">;

export interface PoolStats {
  target: number;
  ready: number;
  booting: number;
  hits: number;
  misses: number;
  /** The last boots' times, newest last. */
  bootMs: number[];
}

const O_PATH = 0o10000000;
const CONSOLE_LOG = "console.log";
const READY_DEADLINE_MS: Record<Accelerator, number> = { kvm: 20_000, tcg: 90_000 };
const CLAIM_DEADLINE_MS = 10_000;
const FILL_DELAY_MS = 200;
const QEMU = "qemu-system-x86_64";
/**
 * QEMU's user-mode network for the guest (10.0.3.15, gateway 10.0.3.2): not slirp4netns's
 * 10.0.2.0/24, which the guest reaches through it (its DNS forwarder is the guest's DNS).
 */
const GUEST_NET = { address: "10.0.3.15/24", gateway: "10.0.3.2", net: "10.0.3.0/24", dns: SLIRP_DNS };

/** How long a guest may take to answer: PADDOCK_VM_READY_TIMEOUT_MS, for machines slower (or tests quicker) than these. */
function readyDeadline(accelerator: Accelerator): number {
  const configured = Number(process.env.PADDOCK_VM_READY_TIMEOUT_MS);
  return Number.isFinite(configured) && configured > 0 ? configured : READY_DEADLINE_MS[accelerator];
}

function poolTarget(): number {
  const configured = Number(process.env.PADDOCK_VM_POOL ?? 1);
  return Number.isInteger(configured) && configured >= 0 ? Math.min(configured, 8) : 1;
}

export class Vms {
  private readonly running = new Map<string, Vm>();
  /** Booted VMs waiting for a sandbox, per "uid:gid:accelerator", with what removes them when they end unclaimed. */
  private readonly pool = new Map<string, { vm: Vm; onExit: () => void }[]>();
  private readonly filling = new Map<string, number>();
  private readonly stats = { hits: 0, misses: 0, bootMs: [] as number[] };
  private slot = 0;
  private stopping = false;

  constructor(
    private readonly images: GuestImages,
    private readonly enterHelper: string,
    /** Where pooled VMs keep their files until they are claimed (emptied at start): in the sandboxes folder, whose mounts commands never see. */
    private readonly poolDir: string,
    private readonly log: Logger,
  ) {
    removeTree(poolDir);
  }

  async start(request: VmStart): Promise<BootedVm> {
    await this.stop(request.id);
    // Pooled VMs have the default memory and CPUs and no network: other sandboxes boot their own.
    const machine = vmMachine(request.limits);
    const poolable = machine.memoryMiB === VM_DEFAULTS.memoryMiB && machine.cpus === VM_DEFAULTS.cpus && request.network === "none";
    const key = `${request.uid}:${request.gid}:${request.accelerator}`;
    const claimStarted = performance.now();
    const pooled = poolable ? await this.takePooled(key, request.dir) : undefined;
    let claimed: Vm;
    if (pooled) {
      this.stats.hits++;
      claimed = pooled;
    } else {
      this.stats.misses++;
      claimed = await this.boot({ dir: request.dir, uid: request.uid, gid: request.gid, limits: request.limits, network: request.network, accelerator: request.accelerator, cgroupProcs: request.cgroupProcs, onProgress: request.onProgress });
    }
    try {
      this.attach(claimed, request);
      await claimed.connection.claim(CLAIM_DEADLINE_MS);
    } catch (err) {
      await this.kill(claimed);
      throw err;
    }
    // Kept until stopped, even if QEMU ends by itself: the stop still has its mounts to undo.
    this.running.set(request.id, claimed);
    claimed.qemu.once("exit", () => {
      if (this.running.get(request.id) === claimed) request.onEnded?.(claimed.ended ?? "QEMU exited");
    });
    const fromPool = pooled !== undefined;
    this.log.info("VM given to its sandbox", { sandboxId: request.id, fromPool, claimMs: Math.round(performance.now() - claimStarted), bootMs: claimed.bootMs });
    request.onProgress?.(fromPool ? `took a booted VM from the warm pool in ${Math.round(performance.now() - claimStarted)} ms` : `guest ready in ${claimed.bootMs} ms`);
    // A moment later, so that the answer goes first: a boot's start (its initrd written, QEMU spawned) would delay it.
    if (poolable) setTimeout(() => this.fill(key, request), FILL_DELAY_MS).unref();
    return { accelerator: claimed.accelerator, kernelRelease: claimed.kernelRelease, bootMs: claimed.bootMs, fromPool };
  }

  connection(id: string): GuestConnection {
    const vm = this.running.get(id);
    if (!vm) throw new PaddockError("E_INVALID_STATE", `the VM of sandbox ${id} is not running`, "stop and start the sandbox (its changes are kept)");
    if (vm.ended) throw new PaddockError("E_INVALID_STATE", `the VM of sandbox ${id} has ended (${vm.ended})`, "stop and start the sandbox (its changes are kept); its console (paddock console ID) may say why");
    return vm.connection;
  }

  /** Where a VM's console log is: the running VM's, else the last one kept in the VM's folder. */
  consoleLog(id: string, dir: string): string {
    return this.running.get(id)?.consoleLog ?? path.join(dir, CONSOLE_LOG);
  }

  poolStats(): PoolStats {
    const ready = [...this.pool.values()].reduce((n, vms) => n + vms.length, 0);
    const booting = [...this.filling.values()].reduce((n, k) => n + k, 0);
    return { target: poolTarget(), ready, booting, hits: this.stats.hits, misses: this.stats.misses, bootMs: [...this.stats.bootMs] };
  }

  /** Ends a sandbox's VM: gracefully if the guest does so in time, else by force. */
  async stop(id: string): Promise<void> {
    const vm = this.running.get(id);
    if (!vm) return;
    this.running.delete(id);
    await this.kill(vm);
  }

  /** Every VM, sandboxes' and pooled, each gracefully first (the agent is stopping). */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const pooled = [...this.pool.values()].flat().map((p) => p.vm);
    this.pool.clear();
    await Promise.all([...pooled.map((vm) => this.kill(vm)), ...[...this.running.keys()].map((id) => this.stop(id))]);
  }

  /** Boots VMs for the pool in the background, one at a time, up to its target. */
  private fill(key: string, like: VmStart): void {
    if (this.stopping) return;
    const want = poolTarget() - (this.pool.get(key)?.length ?? 0) - (this.filling.get(key) ?? 0);
    if (want <= 0) return;
    this.filling.set(key, (this.filling.get(key) ?? 0) + 1);
    const dir = path.join(this.poolDir, `vm-${process.pid}-${this.slot++}`);
    void this.boot({ dir, uid: like.uid, gid: like.gid, limits: VM_DEFAULTS, network: "none", accelerator: like.accelerator, cgroupProcs: [] })
      .then(async (vm) => {
        // Booted while the agent was stopping: not for the pool.
        if (this.stopping) return this.kill(vm);
        const onExit = () => {
          this.pool.set(key, this.pool.get(key)?.filter((p) => p.vm !== vm) ?? []);
          removeTree(vm.dir);
        };
        vm.qemu.once("exit", onExit);
        this.pool.set(key, [...(this.pool.get(key) ?? []), { vm, onExit }]);
      })
      .catch((err: Error) => this.log.warn("could not boot a VM for the warm pool", { error: err.message }))
      .finally(() => {
        this.filling.set(key, (this.filling.get(key) ?? 1) - 1);
        if ((this.pool.get(key)?.length ?? 0) > 0) this.fill(key, like);
      });
  }

  /**
   * A VM of the pool, moved into the sandbox's folder; undefined (a boot then) if none is ready,
   * or the one there ended or cannot be moved.
   */
  private async takePooled(key: string, dir: string): Promise<Vm | undefined> {
    const pooled = this.pool.get(key)?.shift();
    if (!pooled) return undefined;
    pooled.vm.qemu.removeListener("exit", pooled.onExit);
    try {
      if (pooled.vm.ended) throw new Error(pooled.vm.ended);
      this.moveInto(pooled.vm, dir);
      return pooled.vm;
    } catch (err) {
      this.log.warn("a pooled VM could not be given to a sandbox; booting one", { error: (err as Error).message });
      await this.kill(pooled.vm);
      removeTree(pooled.vm.dir);
      return undefined;
    }
  }

  /** A pooled VM's folder becomes the sandbox's (QEMU holds its share by descriptor, which a rename keeps). */
  private moveInto(vm: Vm, dir: string): void {
    removeTree(dir); // what an earlier VM of this sandbox left
    fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
    fs.renameSync(vm.dir, dir);
    vm.dir = dir;
    vm.hub = path.join(dir, "hub");
    vm.consoleLog = path.join(dir, CONSOLE_LOG);
  }

  /** Binds the sandbox's view on the VM's share and moves QEMU into the sandbox's cgroup. */
  private attach(vm: Vm, request: VmStart): void {
    const ws = path.join(vm.hub, "ws");
    let target: number;
    try {
      // Opened without following symlinks: nothing in the hub may redirect the bind.
      target = fs.openSync(ws, O_PATH | fs.constants.O_NOFOLLOW | fs.constants.O_DIRECTORY);
    } catch (err) {
      throw new PaddockError("E_MOUNT", `cannot give the VM the sandbox's view: its share's ws folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, "stop and start the sandbox");
    }
    try {
      const err = mount(request.workspaceView, `/proc/self/fd/${target}`, "", MS_BIND, "");
      if (err !== 0) throw new PaddockError("E_MOUNT", `cannot give the VM the sandbox's view: ${errnoName(err)}`, "see the agent log");
    } finally {
      fs.closeSync(target);
    }
    try {
      for (const procs of request.cgroupProcs) fs.writeFileSync(procs, String(vm.qemu.pid));
    } catch (err) {
      throw new PaddockError("E_RUNTIME_UNAVAILABLE", `cannot move the VM into the sandbox's cgroup: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, "the VM may have ended at once; its console (paddock console ID) may say why");
    }
  }

  private async boot(boot: Boot): Promise<Vm> {
    const started = performance.now();
    // What a VM of this folder left (an agent killed with it running): its share's bind and network namespace too.
    removeTree(boot.dir);
    const artifacts = await this.images.prepare();
    if (boot.network === "nat" && !artifacts.network) throw new PaddockError("E_RUNTIME_UNAVAILABLE", `the guest kernel ${artifacts.kernel} has no virtio_net driver, which network nat needs`, "use a kernel with virtio_net (Debian's has it), or network none");
    const secret = randomBytes(32).toString("hex");
    const hub = path.join(boot.dir, "hub");
    const initrd = path.join(boot.dir, "initrd");
    const consoleLog = path.join(boot.dir, CONSOLE_LOG);
    const netns = boot.network === "nat" ? path.join(boot.dir, "netns") : undefined;
    let consoleFd: number;
    try {
      fs.mkdirSync(path.join(hub, "ws"), { recursive: true, mode: 0o700 });
      // Modes set, not left to the umask: QEMU (the owner, without capabilities) must search them.
      for (const dir of [boot.dir, hub, path.join(hub, "ws")]) fs.chmodSync(dir, 0o700);
      for (const dir of [hub, path.join(hub, "ws")]) fs.chownSync(dir, boot.uid, boot.gid);
      fs.writeFileSync(initrd, Buffer.concat([fs.readFileSync(artifacts.initramfs), secretArchive(secret)]), { mode: 0o600 });
      consoleFd = fs.openSync(consoleLog, "w", 0o600);
    } catch (err) {
      removeTree(boot.dir);
      throw stateDirFailure(err, `cannot prepare the VM's files in ${boot.dir}`);
    }

    let slirp: ChildProcess | undefined;
    let consoleKept = false;
    const failed = async (err: unknown): Promise<never> => {
      slirp?.kill("SIGKILL");
      if (!consoleKept) fs.closeSync(consoleFd);
      // A sandbox's folder keeps its console for `paddock console`; a pool's goes whole.
      if (boot.dir.startsWith(this.poolDir + path.sep)) removeTree(boot.dir);
      else {
        unmountAllBelow(boot.dir);
        fs.rmSync(initrd, { force: true });
      }
      throw stateDirFailure(err, "cannot start the VM", "E_RUNTIME_UNAVAILABLE", "see the agent log");
    };
    if (netns) {
      try {
        fs.writeFileSync(netns, "");
        const made = spawnSync("unshare", [`--net=${netns}`, "true"], { encoding: "utf8", env: { PATH: DEFAULT_PATH } });
        if (made.status !== 0) throw new PaddockError("E_RUNTIME_UNAVAILABLE", `cannot make the VM's network namespace: ${whyItFailed(made)}`, "the agent must run as root with util-linux's unshare");
        slirp = await startSlirp({ path: netns }, "VM", "E_RUNTIME_UNAVAILABLE");
      } catch (err) {
        return failed(err);
      }
    }

    let ours: number;
    let theirs: number;
    try {
      [ours, theirs] = socketPair();
    } catch (err) {
      return failed(new PaddockError("E_RUNTIME_UNAVAILABLE", `cannot make the VM's channel: ${(err as Error).message}`, "the agent may be out of file descriptors; see the agent log"));
    }
    const { memoryMiB: memory, cpus } = vmMachine(boot.limits);
    const network = netns
      ? ["-netdev", `user,id=net0,net=${GUEST_NET.net},host=${GUEST_NET.gateway},ipv6=off`, "-device", "virtio-net-pci,netdev=net0"]
      : ["-nic", "none"];
    const netArgument = netns ? ` paddock.net=${GUEST_NET.address},${GUEST_NET.gateway},${GUEST_NET.dns}` : "";
    // Descriptors 3-6 in QEMU: the port's socket, the initrd, the share, the kernel (which may be
    // a download in the state dir, closed to the owner QEMU runs as). The serial console is
    // QEMU's stdout, which the agent writes to the console log up to a size (the guest decides
    // what it says, and must not fill the state dir's disk).
    const qemuArgs = [
      "-accel", boot.accelerator,
      "-M", "pc",
      "-m", String(memory),
      "-smp", String(cpus),
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-kernel", "/proc/self/fd/6",
      "-initrd", "/proc/self/fd/4",
      "-append", `console=ttyS0 panic=-1 quiet loglevel=1 rdinit=/init${netArgument}`,
      "-serial", "stdio",
      "-device", "virtio-serial-pci",
      "-chardev", "socket,id=ctl,fd=3",
      "-device", "virtserialport,chardev=ctl,name=paddock",
      "-fsdev", "local,id=ws,path=/proc/self/fd/5,security_model=none,multidevs=remap",
      "-device", "virtio-9p-pci,fsdev=ws,mount_tag=workspace",
      ...network,
      // QEMU's own seccomp filter: no new programs, no privilege changes, no obsolete calls.
      "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    ];
    const command = [
      ...(netns ? ["/usr/bin/nsenter", `--net=${netns}`, "--"] : []),
      this.enterHelper,
      ...boot.cgroupProcs.flatMap((file) => ["--cgroup", file]),
      ...(boot.uid !== process.getuid?.() ? ["--user", String(boot.uid), String(boot.gid)] : []),
      "--keep-fds", "4",
      "--",
      "/usr/bin/setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--pdeathsig", "SIGKILL", "--",
      `/usr/bin/${QEMU}`, ...qemuArgs,
    ];
    let qemu: ChildProcess;
    const passed: number[] = [theirs];
    try {
      const initrdFd = fs.openSync(initrd, "r");
      passed.push(initrdFd);
      const hubFd = fs.openSync(hub, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
      passed.push(hubFd);
      const kernelFd = fs.openSync(artifacts.kernel, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      passed.push(kernelFd);
      // QEMU opens them again through /proc/self/fd as the owner: they must be the owner's.
      fs.fchownSync(initrdFd, boot.uid, boot.gid);
      qemu = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "pipe", theirs, initrdFd, hubFd, kernelFd], env: { PATH: DEFAULT_PATH } });
    } catch (err) {
      fs.closeSync(ours);
      return failed(new PaddockError("E_RUNTIME_UNAVAILABLE", `cannot start QEMU: ${(err as Error).message}`, "install qemu-system-x86 (npm run setup does)"));
    } finally {
      for (const fd of passed) fs.closeSync(fd);
    }
    keepConsole(qemu.stdout!, consoleFd);
    consoleKept = true;
    let stderr = "";
    qemu.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString("utf8")).slice(-4000)));
    const connection = new GuestConnection(new net.Socket({ fd: ours, readable: true, writable: true }));
    boot.onProgress?.(`booting the VM (${boot.accelerator}${netns ? ", network nat" : ""})`);
    const exitedEarly = new Promise<never>((_, reject) => {
      qemu.once("error", (err) => reject(new PaddockError("E_RUNTIME_UNAVAILABLE", `cannot start QEMU: ${err.message}`, "install qemu-system-x86 (npm run setup does)")));
      qemu.once("exit", (code, signal) => {
        const tail = readTail(consoleLog);
        reject(new PaddockError("E_RUNTIME_UNAVAILABLE", `QEMU ended before the guest was ready (${signal ?? `exit code ${code}`}): ${stderr.trim().split("\n").pop() || tail || "no output"}`, "`paddock check --refresh` tells whether QEMU boots a guest here; the agent log has the console's last lines"));
      });
    });
    exitedEarly.catch(() => undefined);
    try {
      // QEMU's own exit says more than the broken channel it causes: it wins a near tie.
      const release = await Promise.race([
        connection.authenticate(secret, readyDeadline(boot.accelerator)).catch(async (err: unknown) => {
          await Promise.race([exitedEarly, new Promise((r) => setTimeout(r, 500))]);
          throw err;
        }),
        exitedEarly,
      ]);
      const bootMs = Math.round(performance.now() - started);
      // The guest has read its secret: the copy on disk goes.
      fs.rmSync(initrd, { force: true });
      // A guest that breaks the protocol (or whose channel fails) loses its VM.
      connection.onClose(() => qemu.kill("SIGKILL"));
      this.stats.bootMs = [...this.stats.bootMs, bootMs].slice(-20);
      const vm: Vm = { qemu, connection, dir: boot.dir, hub, accelerator: boot.accelerator, kernelRelease: release, bootMs, consoleLog, ...(netns ? { netns } : {}), ...(slirp ? { slirp } : {}) };
      qemu.once("exit", (code, signal) => {
        vm.ended = `QEMU exited with ${signal ?? `code ${code}`}`;
        connection.close();
        vm.slirp?.kill("SIGKILL");
      });
      this.log.info("VM booted", { accelerator: boot.accelerator, network: boot.network, kernelRelease: release, bootMs, guestAgentBytes: artifacts.guestAgentBytes });
      return vm;
    } catch (err) {
      qemu.kill("SIGKILL");
      connection.close();
      await new Promise((resolve) => (qemu.exitCode !== null || qemu.signalCode !== null ? resolve(undefined) : qemu.once("exit", resolve)));
      const tail = readTail(consoleLog);
      this.log.warn("VM did not boot", { error: (err as Error).message, console: tail });
      // The console log goes with a sandbox that failed to start: its last lines go in the message.
      if (err instanceof PaddockError && tail) return failed(new PaddockError(err.code, `${err.message} (console: ${tail})`, err.hint));
      return failed(err);
    }
  }

  /** Graceful first: the guest powers off (its programs get SIGTERM); QEMU is told to quit after 3 s, killed after 5. */
  private async kill(vm: Vm): Promise<void> {
    if (vm.qemu.exitCode === null && vm.qemu.signalCode === null) {
      const exited = new Promise((resolve) => vm.qemu.once("exit", resolve));
      vm.connection.powerOff();
      const term = setTimeout(() => vm.qemu.kill("SIGTERM"), 3000);
      const kill = setTimeout(() => vm.qemu.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(term);
      clearTimeout(kill);
    }
    vm.connection.close();
    vm.slirp?.kill("SIGKILL");
    umount2(path.join(vm.hub, "ws"), MNT_DETACH);
    if (vm.netns) umount2(vm.netns, MNT_DETACH);
    if (vm.dir.startsWith(this.poolDir + path.sep)) removeTree(vm.dir);
  }
}

function removeTree(dir: string): void {
  unmountAllBelow(dir); // never into a bind that might still be there
  fs.rmSync(dir, { recursive: true, force: true });
}

const MAX_CONSOLE_BYTES = 1 << 20;

/** Writes a VM's serial console to its log (an open descriptor it then owns), up to MAX_CONSOLE_BYTES; the rest is counted, not kept. */
function keepConsole(stream: NodeJS.ReadableStream, fd: number): void {
  let written = 0;
  let dropped = 0;
  stream.on("data", (chunk: Buffer) => {
    const room = MAX_CONSOLE_BYTES - written;
    if (room > 0) {
      fs.writeSync(fd, chunk, 0, Math.min(room, chunk.length));
      written += Math.min(room, chunk.length);
    }
    dropped += Math.max(0, chunk.length - Math.max(0, room));
  });
  stream.once("close", () => {
    if (dropped > 0) fs.writeSync(fd, `\n[paddock: ${dropped} more bytes of console output were not kept]\n`);
    fs.closeSync(fd);
  });
}

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim().split("\n").slice(-3).join(" | ");
  } catch {
    return "";
  }
}
