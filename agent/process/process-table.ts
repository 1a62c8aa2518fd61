/**
 * Long-running processes (`process/spawn`): with a real PTY or with pipes, their output sent
 * as `process/output` notifications to the client that started them. Output is paused while
 * that client is not reading it, so a fast writer cannot grow the agent's memory; and a
 * client that goes away takes its processes with it.
 */
import { spawn as spawnChild, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as os from "node:os";
import { StringDecoder } from "node:string_decoder";
import type * as NodePty from "node-pty";
import { PaddockError } from "../protocol/errors";
import type { ProcessInfo } from "../protocol/methods";
import type { Caller, Session } from "../server/session";
import { DEFAULT_PATH } from "../runtime/process-runtime";
import type { Logger } from "../log/logger";

/** Output gathered within one event-loop turn goes out as one notification, up to this size. */
const MAX_NOTIFICATION_CHARS = 256 * 1024;

/**
 * One output stream of a process: coalesces what arrives in one event-loop turn into one
 * `process/output` notification, and pauses its source while the client is behind.
 */
class OutputPump {
  private pending = "";
  private scheduled = false;

  constructor(
    private readonly session: Session,
    private readonly pid: number,
    private readonly stream: "stdout" | "stderr",
    private readonly pause: () => void,
    private readonly resume: () => void,
  ) {}

  push(data: string): void {
    if (data.length === 0) return;
    this.pending += data;
    if (this.pending.length >= MAX_NOTIFICATION_CHARS) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    const data = this.pending;
    this.pending = "";
    if (data.length === 0 || this.session.closed) return;
    if (!this.session.notify("process/output", { pid: this.pid, stream: this.stream, data })) {
      this.pause();
      this.session.onDrain(this.resume);
    }
  }
}

interface Running {
  info: ProcessInfo;
  ownerUid: number;
  write(data: string, eof: boolean): void;
  resize(cols: number, rows: number): void;
  kill(signal: NodeJS.Signals): void;
}

export interface SpawnRequest {
  sandboxId: string;
  ownerUid: number;
  argv: string[];
  /** The full command line that enters the sandbox. */
  command: string[];
  pty?: { cols: number; rows: number };
  session: Session;
}

export class ProcessTable {
  private readonly running = new Map<number, Running>();

  constructor(private readonly log: Logger) {}

  async spawn(request: SpawnRequest): Promise<number> {
    const entry = request.pty ? this.spawnPty(request, request.pty, await loadNodePty()) : this.spawnPipes(request);
    this.running.set(entry.info.pid, entry);
    // The client that started it is the only one that sees its output: without it, it ends.
    request.session.onClose(() => entry.kill("SIGKILL"));
    this.log.info("process started", { sandboxId: request.sandboxId, pid: entry.info.pid, pty: entry.info.pty });
    return entry.info.pid;
  }

  write(caller: Caller, pid: number, data: string, eof: boolean): void {
    this.get(caller, pid).write(data, eof);
  }

  resize(caller: Caller, pid: number, cols: number, rows: number): void {
    const entry = this.get(caller, pid);
    if (!entry.info.pty) throw new PaddockError("E_INVALID_STATE", `process ${pid} has no terminal to resize`, "spawn it with pty: {cols, rows}");
    entry.resize(cols, rows);
  }

  kill(caller: Caller, pid: number, signal: NodeJS.Signals): void {
    this.get(caller, pid).kill(signal);
  }

  list(caller: Caller, sandboxId?: string): ProcessInfo[] {
    return [...this.running.values()]
      .filter((p) => (caller.uid === 0 || p.ownerUid === caller.uid) && (sandboxId === undefined || p.info.sandboxId === sandboxId))
      .map((p) => p.info);
  }

  /** Kills every process of a sandbox that this table started. */
  killSandbox(sandboxId: string): void {
    for (const p of this.running.values()) if (p.info.sandboxId === sandboxId) p.kill("SIGKILL");
  }

  private get(caller: Caller, pid: number): Running {
    const entry = this.running.get(pid);
    if (!entry || (caller.uid !== 0 && entry.ownerUid !== caller.uid)) {
      throw new PaddockError("E_NOT_FOUND", `no process ${pid}`, "process/list shows the running processes");
    }
    return entry;
  }

  private finish(request: SpawnRequest, pid: number, pumps: OutputPump[], exitCode: number | null, signal: string | null): void {
    for (const pump of pumps) pump.flush(); // all output before the exit
    this.running.delete(pid);
    this.log.info("process exited", { sandboxId: request.sandboxId, pid, exitCode, signal });
    request.session.notify("process/exit", { pid, exitCode, signal });
  }

  private spawnPty(request: SpawnRequest, size: { cols: number; rows: number }, pty: typeof NodePty): Running {
    const [file, ...args] = request.command as [string, ...string[]];
    let term: NodePty.IPty;
    try {
      term = pty.spawn(file, args, { name: "xterm-256color", cols: size.cols, rows: size.rows, cwd: "/", env: { PATH: DEFAULT_PATH } });
    } catch (err) {
      throw new PaddockError("E_SPAWN", `cannot start a terminal: ${(err as Error).message}`, "run `paddock check`");
    }
    const pid = term.pid;
    const output = new OutputPump(request.session, pid, "stdout", () => term.pause(), () => term.resume());
    term.onData((data) => output.push(data));
    term.onExit(({ exitCode, signal }) => {
      const sig = signal ? signalName(signal) : null;
      this.finish(request, pid, [output], sig ? null : exitCode, sig);
    });
    return {
      info: { pid, sandboxId: request.sandboxId, argv: request.argv, pty: true, startedAt: new Date().toISOString() },
      ownerUid: request.ownerUid,
      // A terminal has no end of input of its own: EOF is the ^D the program reads.
      write: (data, eof) => term.write(eof ? data + "\x04" : data),
      resize: (cols, rows) => term.resize(cols, rows),
      kill: (signal) => {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      },
    };
  }

  private spawnPipes(request: SpawnRequest): Running {
    const [file, ...args] = request.command as [string, ...string[]];
    const child: ChildProcessWithoutNullStreams = spawnChild(file, args, { stdio: ["pipe", "pipe", "pipe"], env: { PATH: DEFAULT_PATH } });
    if (child.pid === undefined) throw new PaddockError("E_SPAWN", `cannot start ${file}`, "run `paddock check`");
    const pid = child.pid;
    const pumps = (["stdout", "stderr"] as const).map((stream) => {
      const source = child[stream];
      const decoder = new StringDecoder("utf8");
      const pump = new OutputPump(request.session, pid, stream, () => source.pause(), () => source.resume());
      source.on("data", (chunk: Buffer) => pump.push(decoder.write(chunk)));
      source.on("end", () => pump.push(decoder.end()));
      return pump;
    });
    child.stdin.on("error", () => undefined);
    child.once("close", (exitCode, signal) => this.finish(request, pid, pumps, exitCode, signal));
    return {
      info: { pid, sandboxId: request.sandboxId, argv: request.argv, pty: false, startedAt: new Date().toISOString() },
      ownerUid: request.ownerUid,
      write: (data, eof) => (eof ? child.stdin.end(data) : child.stdin.write(data)),
      resize: () => undefined,
      kill: (signal) => child.kill(signal),
    };
  }
}

/** node-pty (a native module) is loaded on the first terminal, not at agent start. */
let nodePty: Promise<typeof NodePty> | undefined;
function loadNodePty(): Promise<typeof NodePty> {
  nodePty ??= import("node-pty");
  return nodePty;
}

function signalName(signal: number): string {
  const entry = Object.entries(os.constants.signals as Record<string, number>).find(([, n]) => n === signal);
  return entry?.[0] ?? `signal ${signal}`;
}
