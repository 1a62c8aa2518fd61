/** Runs one probe command with a deadline, killing its whole process group if it overruns. */
import { spawn } from "node:child_process";
import { DEFAULT_PATH } from "../sys/default-path";
import { lastMessage } from "../log/logfmt";
import { dieWithAgent } from "../process/die-with-agent";

export interface ProbeOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Set when the program could not be started at all (e.g. ENOENT). */
  spawnError?: string;
  durationMs: number;
}

export interface ProbeOptions {
  timeoutMs: number;
  cwd?: string;
  /** Resolve as soon as stdout contains this text, then kill the probe. */
  until?: string;
  uid?: number;
  gid?: number;
  /**
   * The probe gets SIGKILL when the agent dies (a guest booting under a KVM that hangs would
   * otherwise outlive an agent killed meanwhile). The command must exist: it runs under setpriv.
   */
  dieWithAgent?: boolean;
}

const MAX_CAPTURE = 64 * 1024;
/** After a kill, how long to wait for the pipes to close before giving up on them. */
const KILL_GRACE_MS = 2_000;

/** Process groups of probes still running, so that a stopping agent can end them. */
const running = new Set<number>();

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Kills every probe still running (the agent is stopping). */
export function killAllProbes(): void {
  for (const pid of running) killGroup(pid);
  running.clear();
}

export function runProbe(command: string, args: string[], options: ProbeOptions): Promise<ProbeOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    const [program, argv] = options.dieWithAgent ? dieWithAgent(command, args) : [command, args];
    const child = spawn(program, argv, {
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      uid: options.uid,
      gid: options.gid,
      env: { PATH: DEFAULT_PATH, LANG: "C.UTF-8" },
    });
    if (child.pid !== undefined) running.add(child.pid);
    const stop = () => {
      killGroup(child.pid);
      if (child.pid !== undefined) running.delete(child.pid);
    };
    let grace: NodeJS.Timeout | undefined;
    const finish = (outcome: Omit<ProbeOutcome, "stdout" | "stderr" | "timedOut" | "durationMs">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      if (child.pid !== undefined) running.delete(child.pid);
      resolve({ ...outcome, stdout, stderr, timedOut, durationMs: Math.round(performance.now() - started) });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
      // A grandchild that left the process group may hold the pipes open: do not wait on it.
      grace = setTimeout(() => finish({ exitCode: null, signal: "SIGKILL" }), KILL_GRACE_MS);
    }, options.timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += d.toString("utf8");
      if (options.until !== undefined && stdout.includes(options.until)) {
        stop();
        finish({ exitCode: 0, signal: null });
      }
    });
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < MAX_CAPTURE) stderr += d.toString("utf8");
    });
    child.on("error", (err) => finish({ exitCode: null, signal: null, spawnError: err.message }));
    child.on("close", (exitCode, signal) => finish({ exitCode, signal }));
  });
}

/** A failed probe in one line: why, and the last meaningful thing it printed. */
export function describeFailure(outcome: ProbeOutcome, what: string): string {
  if (outcome.spawnError) return `${what} could not start: ${outcome.spawnError}`;
  if (outcome.timedOut) return `${what} did not finish within the deadline`;
  const tail = (lastMessage(outcome.stderr) || lastMessage(outcome.stdout)).slice(0, 300);
  const status = outcome.signal ? `signal ${outcome.signal}` : `exit code ${outcome.exitCode}`;
  return `${what} failed (${status})${tail ? `: ${tail}` : ""}`;
}
