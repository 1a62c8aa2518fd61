/**
 * The agent's end of one VM's virtio-serial port: it proves it knows the VM's secret, then
 * runs commands on channels, each with its input, output, resizes, signals and exit.
 */
import type { Socket } from "node:net";
import * as os from "node:os";
import { PaddockError } from "../protocol/errors";
import { FrameDecoder, FrameType, decodeExit, encodeExec, encodeFrame, encodeResize, type ExecRequest, type Frame } from "./guest-protocol";

export interface GuestExit {
  exitCode: number;
  /** The signal that ended the program, if one did (its exitCode is then 128+N). */
  signal: string | null;
}

export interface GuestProcess {
  readonly channel: number;
  /** Resolves with the exit after the last output; rejects when the command could not start or the VM went away. */
  readonly exited: Promise<GuestExit>;
  write(data: Buffer | string): void;
  /** End of input (pipes). */
  end(): void;
  resize(cols: number, rows: number): void;
  signal(signal: NodeJS.Signals): void;
}

interface Channel {
  onOutput: (stream: "stdout" | "stderr", data: Buffer) => void;
  resolve: (exit: GuestExit) => void;
  reject: (err: Error) => void;
}

export class GuestConnection {
  private readonly decoder = new FrameDecoder();
  private readonly channels = new Map<number, Channel>();
  private nextChannel = 1;
  private ready: { resolve: (release: string) => void; reject: (err: Error) => void } | undefined;
  private closedError: Error | undefined;
  private readonly closeListeners: ((err: Error) => void)[] = [];

  constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.decoder.push(chunk);
      } catch (err) {
        this.fail(new PaddockError("E_RUNTIME_UNAVAILABLE", `the guest agent broke the protocol: ${(err as Error).message}`, "stop and start the sandbox"));
        return;
      }
      for (const frame of frames) this.dispatch(frame);
    });
    socket.on("error", (err) => this.fail(new PaddockError("E_INVALID_STATE", `the VM's channel failed: ${err.message}`, "stop and start the sandbox")));
    socket.on("close", () => this.fail(new PaddockError("E_INVALID_STATE", "the VM is gone", "stop and start the sandbox (its changes are kept)")));
  }

  /** Sends the secret; resolves with the guest kernel's release once the guest agent accepts it. */
  authenticate(secret: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new PaddockError("E_RUNTIME_UNAVAILABLE", `the guest agent did not answer within ${Math.round(timeoutMs / 1000)} s`, "see the VM's console log (STATE_DIR/sandboxes/ID/vm/console.log)")), timeoutMs);
      this.ready = {
        resolve: (release) => {
          clearTimeout(timer);
          resolve(release);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.socket.write(encodeFrame(FrameType.auth, 0, Buffer.from(secret)));
    });
  }

  exec(request: ExecRequest, onOutput: Channel["onOutput"]): GuestProcess {
    if (this.closedError) throw this.closedError;
    const channel = this.nextChannel++;
    const exited = new Promise<GuestExit>((resolve, reject) => this.channels.set(channel, { onOutput, resolve, reject }));
    this.socket.write(encodeExec(channel, request));
    const send = (frame: Buffer) => {
      if (this.channels.has(channel) && !this.socket.destroyed) this.socket.write(frame);
    };
    return {
      channel,
      exited,
      write: (data) => {
        const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
        for (let at = 0; at < bytes.length; at += 65536) send(encodeFrame(FrameType.stdin, channel, bytes.subarray(at, at + 65536)));
      },
      end: () => send(encodeFrame(FrameType.stdin, channel)),
      resize: (cols, rows) => send(encodeResize(channel, cols, rows)),
      signal: (signal) => send(encodeFrame(FrameType.signal, channel, Buffer.from([os.constants.signals[signal]]))),
    };
  }

  onClose(listener: (err: Error) => void): void {
    if (this.closedError) listener(this.closedError);
    else this.closeListeners.push(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  private dispatch(frame: Frame): void {
    if (frame.type === FrameType.ready) return this.ready?.resolve(frame.payload.toString("utf8"));
    if (frame.type === FrameType.error && frame.channel === 0) {
      return this.ready?.reject(new PaddockError("E_RUNTIME_UNAVAILABLE", `the guest agent refused: ${frame.payload.toString("utf8")}`, "stop and start the sandbox"));
    }
    const channel = this.channels.get(frame.channel);
    if (!channel) return;
    if (frame.type === FrameType.output) {
      channel.onOutput(frame.payload.readUInt8(0) === 2 ? "stderr" : "stdout", frame.payload.subarray(1));
    } else if (frame.type === FrameType.exit) {
      this.channels.delete(frame.channel);
      const { exitCode, signal } = decodeExit(frame.payload);
      channel.resolve({ exitCode, signal: signal ? (signalName(signal) ?? `signal ${signal}`) : null });
    } else if (frame.type === FrameType.error) {
      this.channels.delete(frame.channel);
      channel.reject(new PaddockError("E_SPAWN", `cannot run the command in the VM: ${frame.payload.toString("utf8")}`, "see the VM's console log"));
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.ready?.reject(err);
    for (const channel of this.channels.values()) channel.reject(err);
    this.channels.clear();
    for (const listener of this.closeListeners.splice(0)) listener(err);
    this.socket.destroy();
  }
}

function signalName(n: number): string | undefined {
  return Object.entries(os.constants.signals as Record<string, number>).find(([, v]) => v === n)?.[0];
}
