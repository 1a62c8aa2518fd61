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
import { PaddockError } from "../../protocol/errors";
import type { ProcessInfo } from "../../protocol/methods";
import type { Caller, Session } from "../session";
import { DEFAULT_PATH } from "../sys/default-path";
import { exitAndDrain } from "./child-exit";
import { InputGate } from "./input-gate";
import { killTree, programPid } from "./process-tree";
import type { Logger } from "../log/logger";
import type { GuestProcess, Launch, OutputSink } from "./launch";

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
  /** Queues input for the program (never waits; `write` of the table bounds what is queued). */
  write(data: string, eof: boolean): void;
  /** Writes wait here for their turn and for the program to read. */
  input: InputGate;
  resize(cols: number, rows: number): void;
  /** Signals the whole command (SIGKILL) or the program itself (any other signal). */
  kill(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited and its exit was reported. */
  exited: Promise<void>;
}

export interface SpawnRequest {
  sandboxId: string;
  ownerUid: number;
  argv: string[];
  /** How the runtime runs the command: on the host or in a guest. */
  launch: Launch;
  pty?: { cols: number; rows: number };
  session: Session;
}

/** A VM's commands have no host process: they get ids from a range no host pid reaches (pid_max ≤ 2^22). */
const FIRST_GUEST_PID = 1 << 30;

export class ProcessTable {
  private readonly running = new Map<number, Running>();
  private nextGuestPid = FIRST_GUEST_PID;

  constructor(private readonly log: Logger) {}

  /** Loads what spawning needs (node-pty for terminals) before the caller checks the sandbox's state. */
  async prepare(pty: boolean): Promise<typeof NodePty | undefined> {
    return pty ? loadNodePty() : undefined;
  }

  /** Starts a process; synchronous, so nothing can change the sandbox between the caller's check and the start. */
  spawn(request: SpawnRequest, nodePty: typeof NodePty | undefined): number {
    const { launch } = request;
    if ("guest" in launch) return this.track(request, this.guestRunning(request, launch.guest));
    return this.track(request, request.pty && nodePty ? this.spawnPty(request, launch.host, request.pty, nodePty) : this.spawnPipes(request, launch.host));
  }

  private track(request: SpawnRequest, entry: Running): number {
    this.running.set(entry.info.pid, entry);
    // The client that started it is the only one that sees its output: without it, it ends.
    const stopListening = request.session.onClose(() => entry.kill("SIGKILL"));
    void entry.exited.then(stopListening);
    if (request.session.closed) entry.kill("SIGKILL");
    this.log.info("process started", { sandboxId: request.sandboxId, pid: entry.info.pid, pty: entry.info.pty });
    return entry.info.pid;
  }

  /** Gives a program input, in order, once it has read what came before (input-gate.ts). */
  async write(caller: Caller, pid: number, data: string, eof: boolean, writer: Session): Promise<void> {
    const entry = this.get(caller, pid);
    await entry.input.write(data.length, writer, () => entry.write(data, eof));
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

  /** Kills every process of a sandbox that this table started, and waits until they have exited. */
  async killSandbox(sandboxId: string): Promise<void> {
    const ending = [...this.running.values()].filter((p) => p.info.sandboxId === sandboxId);
    for (const p of ending) p.kill("SIGKILL");
    await Promise.all(ending.map((p) => p.exited));
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

  private guestRunning(request: SpawnRequest, start: (onOutput: OutputSink) => GuestProcess): Running {
    const pid = this.nextGuestPid++;
    // A client behind with its output pauses the VM's channel (see GuestConnection.pause).
    const channel: { proc?: GuestProcess } = {};
    // Counted, so that a command that ends (or whose client goes) while paused resumes the channel.
    let pauses = 0;
    const pause = () => {
      pauses++;
      channel.proc?.pause();
    };
    const resume = () => {
      if (pauses === 0) return;
      pauses--;
      channel.proc?.resume();
    };
    const pumps = { stdout: new OutputPump(request.session, pid, "stdout", pause, resume), stderr: new OutputPump(request.session, pid, "stderr", pause, resume) };
    const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
    const started = (channel.proc = start((stream, data) => pumps[stream].push(decoders[stream].write(data))));
    let alive = true;
    let killed = false;
    const exited = started.exited.then(
      (exit) => ({ exitCode: killed ? null : exit.exitCode, signal: killed ? "SIGKILL" : null }),
      (err: Error) => {
        this.log.warn("a command in a VM ended with its VM", { sandboxId: request.sandboxId, pid, error: err.message });
        return { exitCode: null, signal: "SIGKILL" };
      },
    ).then(({ exitCode, signal }) => {
      alive = false;
      while (pauses > 0) resume();
      for (const stream of ["stdout", "stderr"] as const) pumps[stream].push(decoders[stream].end());
      this.finish(request, pid, [pumps.stdout, pumps.stderr], exitCode, signal);
    });
    const pty = request.pty !== undefined;
    return {
      info: { pid, sandboxId: request.sandboxId, argv: request.argv, pty, startedAt: new Date().toISOString() },
      ownerUid: request.ownerUid,
      write: (data, eof) => {
        if (!alive) return;
        if (pty) return started.write(eof ? data + "\x04" : data);
        started.write(data);
        if (eof) started.end();
      },
      input: new InputGate(() => started.unsentInput(), exited),
      resize: (cols, rows) => alive && started.resize(cols, rows),
      kill: (signal) => {
        if (!alive) return;
        if (signal === "SIGKILL") killed = true;
        started.signal(signal);
      },
      exited,
    };
  }

  private spawnPty(request: SpawnRequest, command: string[], size: { cols: number; rows: number }, pty: typeof NodePty): Running {
    const [file, ...args] = command as [string, ...string[]];
    let term: NodePty.IPty;
    try {
      term = pty.spawn(file, args, { name: "xterm-256color", cols: size.cols, rows: size.rows, cwd: "/", env: { PATH: DEFAULT_PATH } });
    } catch (err) {
      throw new PaddockError("E_SPAWN", `cannot start a terminal: ${(err as Error).message}`, "run `paddock check`");
    }
    const pid = term.pid;
    let alive = true;
    const output = new OutputPump(request.session, pid, "stdout", () => term.pause(), () => term.resume());
    term.onData((data) => output.push(data));
    const exited = new Promise<void>((resolve) =>
      term.onExit(({ exitCode, signal }) => {
        alive = false;
        const sig = signal ? signalName(signal) : null;
        this.finish(request, pid, [output], sig ? null : exitCode, sig);
        resolve();
      }),
    );
    return {
      info: { pid, sandboxId: request.sandboxId, argv: request.argv, pty: true, startedAt: new Date().toISOString() },
      ownerUid: request.ownerUid,
      // A terminal has no end of input of its own: EOF is the ^D the program reads.
      write: (data, eof) => {
        if (alive) term.write(eof ? data + "\x04" : data);
      },
      input: new InputGate(() => ptyQueuedBytes(term), exited),
      resize: (cols, rows) => {
        if (alive) term.resize(cols, rows);
      },
      // Only while it runs: after its exit, its pid may belong to someone else.
      kill: (signal) => alive && signalCommand(pid, signal),
      exited,
    };
  }

  private spawnPipes(request: SpawnRequest, command: string[]): Running {
    const [file, ...args] = command as [string, ...string[]];
    const child: ChildProcessWithoutNullStreams = spawnChild(file, args, { stdio: ["pipe", "pipe", "pipe"], env: { PATH: DEFAULT_PATH } });
    child.on("error", (err) => this.log.warn("process error", { sandboxId: request.sandboxId, error: err.message }));
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
    const exited = exitAndDrain(child).then(({ exitCode, signal }) => {
      child.stdin.destroy(); // nobody reads it any more
      this.finish(request, pid, pumps, exitCode, signal);
    });
    const alive = () => child.exitCode === null && child.signalCode === null;
    return {
      info: { pid, sandboxId: request.sandboxId, argv: request.argv, pty: false, startedAt: new Date().toISOString() },
      ownerUid: request.ownerUid,
      write: (data, eof) => {
        if (!alive() || child.stdin.writableEnded) return;
        if (eof) child.stdin.end(data);
        else child.stdin.write(data);
      },
      input: new InputGate(() => child.stdin.writableLength, exited),
      resize: () => undefined,
      kill: (signal) => alive() && signalCommand(pid, signal),
      exited,
    };
  }
}

/**
 * Signals a command: SIGKILL takes its whole process tree down (bwrap's --die-with-parent
 * would too; a container's `runc exec` would not); any other signal goes to the program
 * itself (below bwrap's PID-1 reaper, or the container's command wrapper), so that it can
 * handle SIGTERM or SIGINT as it would outside.
 */
function signalCommand(pid: number, signal: NodeJS.Signals): void {
  if (signal === "SIGKILL") return killTree(pid);
  try {
    process.kill(programPid(pid) ?? pid, signal);
  } catch {
    // already gone
  }
}

/** node-pty (a native module) is loaded on the first terminal, not at agent start. */
let nodePty: Promise<typeof NodePty> | undefined;
function loadNodePty(): Promise<typeof NodePty> {
  nodePty ??= import("node-pty").catch((err: Error) => {
    nodePty = undefined; // try again next time
    throw new PaddockError("E_RUNTIME_UNAVAILABLE", `terminals are unavailable: ${err.message}`, "reinstall with npm ci (node-pty is built from source)");
  });
  return nodePty;
}

function signalName(signal: number): string {
  const entry = Object.entries(os.constants.signals as Record<string, number>).find(([, n]) => n === signal);
  return entry?.[0] ?? `signal ${signal}`;
}

/**
 * Bytes a terminal's input queue holds. node-pty (1.1) queues what `write` is given and has no
 * drain event or size of its own, so its queue is read where it keeps it; a node-pty without one
 * counts as empty (the security suite's stuck-writer test then fails, which is how a change of
 * node-pty is noticed).
 */
function ptyQueuedBytes(term: NodePty.IPty): number {
  const queue = (term as unknown as { _writeStream?: { _writeQueue?: { buffer: Buffer; offset: number }[] } })._writeStream?._writeQueue;
  return queue?.reduce((sum, task) => sum + task.buffer.byteLength - task.offset, 0) ?? 0;
}
