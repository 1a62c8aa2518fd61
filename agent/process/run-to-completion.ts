/** `sandbox/exec`: runs a command line to its end, with stdin given up front and output capped. */
import { spawn } from "node:child_process";
import { PaddockError } from "../../protocol/errors";
import { DEFAULT_PATH } from "../sys/default-path";
import { exitAndDrain } from "./child-exit";
import { killTree } from "./process-tree";
import type { GuestProcess, Launch, OutputSink } from "./launch";

export const OUTPUT_CAP_BYTES = 1024 * 1024;

export interface Completed {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timedOut: boolean;
}

/** Collects up to `cap` bytes and drops the rest, still reading so the writer never blocks. */
class CappedBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    if (chunk.length > room) this.truncated = true;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
  }
  text(): string {
    return Buffer.concat(this.chunks, this.size).toString("utf8");
  }
}

function afterTimeout(timeoutMs: number | undefined, onTimeout: () => void): NodeJS.Timeout | undefined {
  return timeoutMs === undefined ? undefined : setTimeout(onTimeout, timeoutMs);
}

export interface CompletionOptions {
  stdin?: string;
  timeoutMs?: number;
  cap?: number;
  /** Lets the caller kill the command (e.g. the sandbox is stopping). */
  onStart?: (kill: () => void) => void;
}

/** Runs a command to its end, on the host or in a guest: the same result either way. */
export function runToCompletion(launch: Launch, options: CompletionOptions): Promise<Completed> {
  return "host" in launch ? runHostToCompletion(launch.host, options) : runGuestToCompletion(launch.guest, options);
}

function runHostToCompletion(command: string[], options: CompletionOptions): Promise<Completed> {
  const cap = options.cap ?? OUTPUT_CAP_BYTES;
  return new Promise((resolve, reject) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: { PATH: DEFAULT_PATH } });
    // Kills the command's whole tree: under bwrap, --die-with-parent would do it; under a
    // container's `runc exec`, nothing would.
    let killed = false;
    const kill = () => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      killed = true;
      killTree(child.pid);
    };
    // Lets the caller kill the command (e.g. the sandbox is stopping).
    options.onStart?.(() => void kill());
    const stdout = new CappedBuffer(cap);
    const stderr = new CappedBuffer(cap);
    let timedOut = false;
    child.stdout.on("data", (d: Buffer) => stdout.push(d));
    child.stderr.on("data", (d: Buffer) => stderr.push(d));
    // A program that never reads its stdin must not fail the exec.
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.stdin ?? "");
    const timer = afterTimeout(options.timeoutMs, () => {
      timedOut = true;
      kill();
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new PaddockError("E_SPAWN", `cannot start ${file}: ${err.message}`, "run `paddock check`"));
    });
    void exitAndDrain(child).then(({ exitCode, signal }) => {
      clearTimeout(timer);
      // Killed by the agent (a timeout, a stop): said so, whichever process of the tree went first.
      const [code, sig] = killed ? [null, "SIGKILL"] : [exitCode, signal];
      resolve({ exitCode: code, signal: sig, stdout: stdout.text(), stderr: stderr.text(), truncated: stdout.truncated || stderr.truncated, timedOut });
    });
  });
}

/** How long a guest has to report a command's end after it was killed. */
const GUEST_KILL_GRACE_MS = 5_000;

/** A command in a guest: the same result as for a host command, through the guest's agent. */
function runGuestToCompletion(start: (onOutput: OutputSink) => GuestProcess, options: CompletionOptions): Promise<Completed> {
  const cap = options.cap ?? OUTPUT_CAP_BYTES;
  const stdout = new CappedBuffer(cap);
  const stderr = new CappedBuffer(cap);
  const proc = start((stream, data) => (stream === "stdout" ? stdout : stderr).push(data));
  let killed = false;
  let timedOut = false;
  // A guest that does not report the kill (hung, or hostile) must not hold the answer forever.
  let gaveUp: () => void = () => undefined;
  const unanswered = new Promise<{ exitCode: number }>(
    (resolve) =>
      (gaveUp = () => {
        proc.abandon();
        resolve({ exitCode: -1 });
      }),
  );
  let grace: NodeJS.Timeout | undefined;
  const kill = () => {
    killed = true;
    proc.signal("SIGKILL");
    grace ??= setTimeout(gaveUp, GUEST_KILL_GRACE_MS);
  };
  options.onStart?.(kill);
  if (options.stdin) proc.write(options.stdin);
  proc.end();
  const timer = afterTimeout(options.timeoutMs, () => {
    timedOut = true;
    kill();
  });
  return Promise.race([proc.exited, unanswered])
    .then((exit) => ({ exitCode: killed ? null : exit.exitCode, signal: killed ? "SIGKILL" : null }))
    .finally(() => {
      clearTimeout(timer);
      clearTimeout(grace);
    })
    .then(({ exitCode, signal }) => ({ exitCode, signal, stdout: stdout.text(), stderr: stderr.text(), truncated: stdout.truncated || stderr.truncated, timedOut }));
}
