/**
 * `system/check`: runs every probe (in parallel), derives which runtimes are usable, and
 * caches the answer per boot, since what the kernel can do changes only with a reboot (or an
 * install: hence `refresh`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { CheckName, CheckResult, RuntimeKind, RuntimeReadiness, SystemCheckResult } from "../../protocol/methods";
import type { Logger } from "../log/logger";
import { AGENT_VERSION } from "../version";
import type { ProbeContext, ProbeVerdict } from "./probes/context";
import { checkKernelOverlay, checkRootlessOverlay } from "./probes/overlay";
import { checkBwrap } from "./probes/bwrap";
import { checkFuseOverlay } from "./probes/fuse-overlay";
import { checkOciRuntime } from "./probes/oci";
import { checkCgroups } from "./probes/cgroups";
import { checkAccelerator, checkQemu } from "./probes/qemu";

const PROBES: Record<CheckName, (ctx: ProbeContext) => Promise<ProbeVerdict>> = {
  overlayfs: checkKernelOverlay,
  "overlayfs-rootless": checkRootlessOverlay,
  "fuse-overlayfs": checkFuseOverlay,
  bwrap: checkBwrap,
  runc: (ctx) => checkOciRuntime(ctx, "runc"),
  crun: (ctx) => checkOciRuntime(ctx, "crun"),
  cgroups: checkCgroups,
  qemu: checkQemu,
  kvm: (ctx) => checkAccelerator(ctx, "kvm"),
  tcg: (ctx) => checkAccelerator(ctx, "tcg"),
};

export const CHECK_ORDER = Object.keys(PROBES) as CheckName[];

export interface SystemCheckerOptions {
  scratchRoot: string;
  /** Results are kept here for the rest of this boot; its directory also holds probe artifacts. */
  cacheFile: string;
  nativeDir: string;
  uid?: number;
  /** Which runtimes these checks allow, and with what (the runtimes decide, overrides and all). */
  readiness(checks: CheckResult[]): Record<RuntimeKind, RuntimeReadiness>;
}

interface CacheFile {
  bootId: string;
  agentVersion: string;
  uid: number;
  checkedAt: string;
  checks: CheckResult[];
}

export function readBootId(): string {
  return fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
}

export class SystemChecker {
  private running: Promise<SystemCheckResult> | undefined;
  private readonly partial = new Map<CheckName, Promise<CheckResult>>();
  /** The last results, so that a cached answer costs no I/O. */
  private latest: CacheFile | undefined;
  private readonly uid: number;
  /** The boot id cannot change while the agent runs. */
  private readonly bootId = readBootId();

  constructor(private readonly options: SystemCheckerOptions) {
    this.uid = options.uid ?? process.getuid?.() ?? 0;
  }

  async run({ refresh, log }: { refresh: boolean; log: Logger }): Promise<SystemCheckResult> {
    if (!refresh) {
      this.latest ??= this.readCache();
      if (this.latest) return this.result(this.latest, true);
    }
    // Concurrent callers share one run rather than booting two probe guests.
    this.running ??= this.runAll(log).finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * Just these checks: this boot's cached results where there are some, else their probes
   * now (not cached: the cache holds whole runs). For a choice that needs one or two answers
   * without booting a probe guest.
   */
  async some(names: CheckName[], log: Logger): Promise<CheckResult[]> {
    const cached = this.cachedChecks();
    if (cached) return cached.filter((c) => names.includes(c.name));
    // Remembered for the agent's life (one boot), so that each new sandbox does not probe again.
    return Promise.all(
      names.map((name) => {
        let result = this.partial.get(name);
        if (!result) this.partial.set(name, (result = this.runOne(name, log)));
        return result;
      }),
    );
  }

  private async runAll(log: Logger): Promise<SystemCheckResult> {
    const bootId = this.bootId;
    log.info("running system checks");
    const checks = await Promise.all(CHECK_ORDER.map((name) => this.runOne(name, log)));
    const entry: CacheFile = { bootId, agentVersion: AGENT_VERSION, uid: this.uid, checkedAt: new Date().toISOString(), checks };
    const tmp = `${this.options.cacheFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry, null, 2));
    fs.renameSync(tmp, this.options.cacheFile);
    this.latest = entry;
    return this.result(entry, false);
  }

  private async runOne(name: CheckName, log: Logger): Promise<CheckResult> {
    const started = performance.now();
    const scratchDir = fs.mkdtempSync(path.join(this.options.scratchRoot, `check-${name}-`));
    let verdict: ProbeVerdict;
    try {
      verdict = await PROBES[name]({ scratchDir, nativeDir: this.options.nativeDir, cacheDir: path.dirname(this.options.cacheFile), uid: this.uid });
    } catch (err) {
      verdict = { ok: false, detail: `the ${name} probe itself failed: ${(err as Error).message}`, hint: "this is a bug in Paddock; the agent log has details" };
      log.error("probe crashed", { check: name, error: (err as Error).stack });
    } finally {
      fs.rmSync(scratchDir, { recursive: true, force: true });
    }
    const result: CheckResult = { name, ...verdict, durationMs: Math.round(performance.now() - started) };
    log.info("check done", { check: name, ok: result.ok, durationMs: result.durationMs });
    return result;
  }

  /** This boot's results, if the checks have run (no probe is run for this). */
  cachedChecks(): CheckResult[] | undefined {
    this.latest ??= this.readCache();
    return this.latest?.checks;
  }

  private readCache(): CacheFile | undefined {
    try {
      const entry = JSON.parse(fs.readFileSync(this.options.cacheFile, "utf8")) as CacheFile;
      const complete = CHECK_ORDER.every((name) => entry.checks.some((c) => c.name === name));
      if (entry.bootId === this.bootId && entry.agentVersion === AGENT_VERSION && entry.uid === this.uid && complete) return entry;
    } catch {
      // no cache, or an unreadable one: run the checks
    }
    return undefined;
  }

  private result(entry: CacheFile, cached: boolean): SystemCheckResult {
    return {
      bootId: entry.bootId,
      checkedAt: entry.checkedAt,
      cached,
      checks: entry.checks,
      runtimes: this.options.readiness(entry.checks),
      defaultRuntime: "process",
    };
  }
}
