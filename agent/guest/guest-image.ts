/**
 * What a micro-VM boots: the guest kernel (Debian's linux-image-amd64, or PADDOCK_KERNEL)
 * and an initramfs the agent builds once per kernel: the guest agent as /init, Debian's
 * static busybox and its applets, and the kernel's modules for virtio, the console port, 9p
 * and the network card (for network nat), in load order. Both are recorded with their sha256 and checked before every boot: a
 * file that changed under the agent is rebuilt (the initramfs) or refused (the kernel's
 * record is renewed only when its modules changed with it, as an upgrade does).
 */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import { DEFAULT_PATH } from "../sys/default-path";
import { withFileLock } from "../state/lock";
import { sha256OfFileCached } from "../sys/digest";
import { buildInitramfs, type InitramfsEntry } from "./initramfs";
import { guestKernel, kernelReleaseOf, missingKernel } from "./kernel";

/** What the guest agent needs, by module name; their dependencies come from modules.dep. */
const WANTED_MODULES = ["virtio_pci", "virtio_console", "9pnet_virtio", "9p"];
/** For network nat only: a kernel without it boots VMs without a network. */
const NETWORK_MODULE = "virtio_net";
const BUSYBOX = "/bin/busybox";

export interface GuestArtifacts {
  kernel: string;
  kernelDigest: string;
  initramfs: string;
  initramfsDigest: string;
  /** The kernel's release, from its file name (vmlinuz-RELEASE). */
  release: string;
  /** Size of the guest agent binary, reported to users. */
  guestAgentBytes: number;
  /** Whether the guest has a network card's driver (network nat needs it). */
  network: boolean;
}

interface Record_ {
  kernel: string;
  kernelDigest: string;
  initramfs: string;
  initramfsDigest: string;
  release: string;
  guestAgentDigest: string;
  guestAgentBytes: number;
  /** modules.dep's digest: a kernel upgraded in place brings new modules with it. */
  modulesDigest?: string;
  network: boolean;
}

function bad(message: string, hint: string): PaddockError {
  return new PaddockError("E_RUNTIME_UNAVAILABLE", message, hint);
}

/** Module files in load order (dependencies first), from the kernel's modules.dep. */
export function moduleLoadOrder(modulesDep: string, wanted: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of modulesDep.split("\n")) {
    const [file, rest] = line.split(":");
    if (!file) continue;
    deps.set(file.trim(), (rest ?? "").trim().split(/\s+/).filter(Boolean));
  }
  const byName = new Map([...deps.keys()].map((file) => [path.basename(file).replace(/\.ko(\.\w+)?$/, "").replace(/-/g, "_"), file]));
  const order: string[] = [];
  const visit = (file: string, trail: Set<string>) => {
    if (order.includes(file) || trail.has(file)) return;
    trail.add(file);
    for (const dep of deps.get(file) ?? []) visit(dep, trail);
    order.push(file);
  };
  for (const name of wanted) {
    const file = byName.get(name);
    if (file) visit(file, new Set());
  }
  return order;
}

export class GuestImages {
  private readonly dir: string;
  private readonly recordFile: string;

  constructor(
    private readonly cacheDir: string,
    private readonly guestAgent: string,
  ) {
    this.dir = path.join(cacheDir, "vm");
    this.recordFile = path.join(this.dir, "artifacts.json");
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** The kernel (downloaded first if one is configured) and initramfs to boot, checked against their recorded digests. */
  async prepare(): Promise<GuestArtifacts> {
    return this.artifacts(await guestKernel(this.cacheDir));
  }

  /** The initramfs for `kernel` (built on first use), both checked against their recorded digests. */
  artifacts(kernel: string | undefined): GuestArtifacts {
    if (!kernel || !fs.existsSync(kernel)) {
      const { message, hint } = missingKernel(kernel);
      throw bad(message, hint);
    }
    if (!fs.existsSync(this.guestAgent)) throw bad(`the guest agent ${this.guestAgent} is missing`, "run npm run build (it compiles native/ with gcc -static)");
    const release = process.env.PADDOCK_KERNEL_RELEASE ?? /vmlinuz-(.+)$/.exec(path.basename(kernel))?.[1] ?? kernelReleaseOf(kernel);
    if (!release) throw bad(`cannot tell the release of ${kernel} from its name or its header`, "set PADDOCK_KERNEL_RELEASE to its modules' folder name under /lib/modules");
    // Two agents (or two boots) building at once must not write the same file.
    return withFileLock(path.join(this.dir, "build.lock"), () => {
      const kernelDigest = sha256OfFileCached(kernel);
      const agentDigest = sha256OfFileCached(this.guestAgent);
      const recorded = this.read();
      const modulesDep = path.join("/lib/modules", release, "modules.dep");
      const modulesDigest = fs.existsSync(modulesDep) ? sha256OfFileCached(modulesDep) : "-";
      // The same kernel file with other contents is not booted, unless its modules changed with it (an upgrade in place).
      if (recorded && recorded.kernel === kernel && recorded.release === release && recorded.kernelDigest !== kernelDigest && (recorded.modulesDigest ?? modulesDigest) === modulesDigest) {
        throw bad(`the guest kernel ${kernel} does not match its recorded digest`, `reinstall the kernel package, or delete ${this.recordFile} if it was changed on purpose`);
      }
      const key = createHash("sha256").update(`${kernelDigest}\n${agentDigest}\n${modulesDigest}\n${fs.existsSync(BUSYBOX) ? sha256OfFileCached(BUSYBOX) : "-"}`).digest("hex").slice(0, 16);
      const initramfs = path.join(this.dir, `initramfs-${key}.cpio`);
      if (recorded && recorded.initramfs === initramfs && recorded.network !== undefined && fs.existsSync(initramfs)) {
        if (sha256OfFileCached(initramfs) === recorded.initramfsDigest) return recorded;
        // A corrupt cached initramfs is made again, never booted.
      }
      const { image, network } = this.build(release);
      fs.writeFileSync(`${initramfs}.tmp`, image, { mode: 0o600 });
      fs.renameSync(`${initramfs}.tmp`, initramfs);
      const record: Record_ = {
        kernel,
        kernelDigest,
        initramfs,
        initramfsDigest: createHash("sha256").update(image).digest("hex"),
        release,
        guestAgentDigest: agentDigest,
        guestAgentBytes: fs.statSync(this.guestAgent).size,
        modulesDigest,
        network,
      };
      fs.writeFileSync(`${this.recordFile}.tmp`, JSON.stringify(record, null, 2));
      fs.renameSync(`${this.recordFile}.tmp`, this.recordFile);
      for (const old of fs.readdirSync(this.dir)) if (old.startsWith("initramfs-") && path.join(this.dir, old) !== initramfs) fs.rmSync(path.join(this.dir, old), { force: true });
      return record;
    });
  }

  private read(): Record_ | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.recordFile, "utf8")) as Record_;
    } catch {
      return undefined;
    }
  }

  private build(release: string): { image: Buffer; network: boolean } {
    const entries: InitramfsEntry[] = [];
    for (const dir of ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "workspace", "modules", "paddock", "usr", "usr/bin", "usr/sbin"]) entries.push({ type: "dir", path: dir, mode: dir === "tmp" ? 0o1777 : 0o755 });
    entries.push({ type: "chardev", path: "dev/console", major: 5, minor: 1 });
    entries.push({ type: "file", path: "init", data: fs.readFileSync(this.guestAgent), mode: 0o755 });
    if (!fs.existsSync(BUSYBOX)) throw bad(`${BUSYBOX} is missing`, "install busybox-static (npm run setup does)");
    entries.push({ type: "file", path: "bin/busybox", data: fs.readFileSync(BUSYBOX), mode: 0o755 });
    const applets = spawnSync(BUSYBOX, ["--list"], { encoding: "utf8", env: { PATH: DEFAULT_PATH } }).stdout.split("\n").filter((a) => a && a !== "busybox" && /^[\w.[-]+$/.test(a));
    for (const applet of applets) entries.push({ type: "symlink", path: `bin/${applet}`, target: "busybox" });
    entries.push({ type: "file", path: "etc/passwd", data: Buffer.from("root:x:0:0:root:/root:/bin/sh\n") });
    entries.push({ type: "file", path: "etc/group", data: Buffer.from("root:x:0:\n") });
    entries.push({ type: "file", path: "etc/os-release", data: Buffer.from('NAME="Paddock micro-VM"\nID=paddock-vm\nPRETTY_NAME="Paddock micro-VM guest"\n') });

    const modulesRoot = path.join("/lib/modules", release);
    const depFile = path.join(modulesRoot, "modules.dep");
    if (!fs.existsSync(depFile)) {
      // A configured kernel without modules here has its drivers built in (a guest without them says so on its console).
      if (process.env.PADDOCK_KERNEL || process.env.PADDOCK_KERNEL_URL) {
        entries.push({ type: "file", path: "modules/order", data: Buffer.alloc(0) });
        return { image: buildInitramfs(entries), network: true };
      }
      throw bad(`no modules for kernel ${release} (${depFile})`, "install the kernel's package with its modules (linux-image-amd64)");
    }
    const order = moduleLoadOrder(fs.readFileSync(depFile, "utf8"), [...WANTED_MODULES, NETWORK_MODULE]);
    const builtin = fs.existsSync(path.join(modulesRoot, "modules.builtin")) ? fs.readFileSync(path.join(modulesRoot, "modules.builtin"), "utf8") : "";
    const present = (name: string) => order.some((file) => path.basename(file).replace(/\.ko.*$/, "").replace(/-/g, "_") === name) || new RegExp(`/${name.replace(/_/g, "[_-]")}\\.ko`).test(builtin);
    for (const name of WANTED_MODULES) {
      if (!present(name)) throw bad(`kernel ${release} has no ${name} module`, "use a kernel with virtio, virtio_console and 9p (Debian's linux-image-amd64 has them)");
    }
    const names: string[] = [];
    for (const file of order) {
      if (!file.endsWith(".ko")) throw bad(`module ${file} is compressed; the guest agent loads plain .ko files`, "use Debian 12's kernel, or a kernel with these modules built in");
      const name = path.basename(file);
      entries.push({ type: "file", path: `modules/${name}`, data: fs.readFileSync(path.join(modulesRoot, file)) });
      names.push(name);
    }
    entries.push({ type: "file", path: "modules/order", data: Buffer.from(names.map((n) => `${n}\n`).join("")) });
    return { image: buildInitramfs(entries), network: present(NETWORK_MODULE) };
  }
}

/** A second archive for one VM: its secret. The kernel unpacks archives one after the other. */
export function secretArchive(secret: string): Buffer {
  return buildInitramfs([
    { type: "dir", path: "paddock", mode: 0o700 },
    { type: "file", path: "paddock/secret", data: Buffer.from(secret), mode: 0o400 },
  ]);
}
