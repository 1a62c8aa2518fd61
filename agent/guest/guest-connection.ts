/**
 * The agent's end of one VM's virtio-serial port: it proves it knows the VM's secret, then
 * runs commands on channels, each with its input, output, resizes, signals and exit.
 */
import type { Socket } from "node:net";
import * as os from "node:os";
import { PaddockError } from "../../protocol/errors";
import type { GuestExit, GuestProcess } from "../process/launch";
import { FrameDecoder, FrameType, decodeExit, encodeExec, encodeFrame, encodeResize, type ExecRequest, type Frame } from "./guest-protocol";

interface Channel {
  onOutput: (stream: "stdout" | "stderr", data: Buffer) => void;
  resolve: (exit: GuestExit) => void;
  reject: (err: Error) => void;
}

interface ControlRequest {
  expect: number;
  resolve: (payload: string) => void;
  reject: (err: Error) => void;
}

export class GuestConnection {
  private readonly decoder = new FrameDecoder();
  private readonly channels = new Map<number, Channel>();
  private nextChannel = 1;
  private paused = 0;
  /** The one control request in flight (auth, claim): its answer comes on channel 0. */
  private control: ControlRequest | undefined;
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
      for (const frame of frames) {
        try {
          this.dispatch(frame);
        } catch (err) {
          // A guest is untrusted: a malformed frame ends the connection (and the VM), never the agent.
          return this.fail(new PaddockError("E_RUNTIME_UNAVAILABLE", `the guest agent sent a malformed frame: ${(err as Error).message}`, "stop and start the sandbox"));
        }
      }
    });
    socket.on("error", (err) => this.fail(new PaddockError("E_INVALID_STATE", `the VM's channel failed: ${err.message}`, "stop and start the sandbox")));
    socket.on("close", () => this.fail(new PaddockError("E_INVALID_STATE", "the VM is gone", "stop and start the sandbox (its changes are kept)")));
  }

  /** Sends the secret; resolves with the guest kernel's release once the guest agent accepts it. */
  authenticate(secret: string, timeoutMs: number): Promise<string> {
    return this.request(encodeFrame(FrameType.auth, 0, Buffer.from(secret)), FrameType.ready, timeoutMs);
  }

  /** Has the guest mount the sandbox's view (which the host put in its share) on /workspace. */
  async claim(timeoutMs: number): Promise<void> {
    await this.request(encodeFrame(FrameType.claim, 0), FrameType.claimed, timeoutMs);
  }

  private request(frame: Buffer, expect: number, timeoutMs: number): Promise<string> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.control) return Promise.reject(new PaddockError("E_INVALID_STATE", "the VM is still answering another request", "try again in a moment"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.control === pending) this.control = undefined;
        reject(new PaddockError("E_RUNTIME_UNAVAILABLE", `the guest agent did not answer within ${Math.round(timeoutMs / 100) / 10} s`, "a slow machine: raise PADDOCK_VM_READY_TIMEOUT_MS; the agent log has the console's last lines"));
      }, timeoutMs);
      const pending: ControlRequest = {
        expect,
        resolve: (payload) => {
          clearTimeout(timer);
          this.control = undefined;
          resolve(payload);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.control = undefined;
          reject(err);
        },
      };
      this.control = pending;
      this.socket.write(frame);
    });
  }

  exec(request: ExecRequest, onOutput: Channel["onOutput"]): GuestProcess {
    if (this.closedError) throw this.closedError;
    const channel = this.nextChannel++;
    let frame: Buffer;
    try {
      frame = encodeExec(channel, request);
    } catch (err) {
      throw new PaddockError("E_INVALID_PARAMS", `cannot send this command to the VM: ${(err as Error).message}`, "shorten the arguments and environment (at most 1 MiB in all)");
    }
    const exited = new Promise<GuestExit>((resolve, reject) => this.channels.set(channel, { onOutput, resolve, reject }));
    this.socket.write(frame);
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
      unsentInput: () => this.socket.writableLength,
      end: () => send(encodeFrame(FrameType.stdin, channel)),
      resize: (cols, rows) => send(encodeResize(channel, cols, rows)),
      signal: (signal) => send(encodeFrame(FrameType.signal, channel, Buffer.from([os.constants.signals[signal]]))),
      pause: () => this.pause(),
      resume: () => this.resume(),
      abandon: () => void this.channels.delete(channel),
    };
  }

  onClose(listener: (err: Error) => void): void {
    if (this.closedError) listener(this.closedError);
    else this.closeListeners.push(listener);
  }

  close(): void {
    this.socket.destroy();
  }

  /** Asks the guest to end its programs and power off (QEMU then exits). */
  powerOff(): void {
    if (!this.closedError && !this.socket.destroyed) this.socket.write(encodeFrame(FrameType.poweroff, 0));
  }

  /**
   * Stops reading from the guest while a client is behind with its output (all channels
   * wait: the port is one stream), so that a fast writer cannot grow the agent's memory.
   */
  pause(): void {
    if (this.paused++ === 0) this.socket.pause();
  }

  resume(): void {
    if (this.paused > 0 && --this.paused === 0) this.socket.resume();
  }

  private dispatch(frame: Frame): void {
    if (frame.channel === 0) {
      if (frame.type === this.control?.expect) this.control.resolve(frame.payload.toString("utf8"));
      else if (frame.type === FrameType.error) this.control?.reject(new PaddockError("E_RUNTIME_UNAVAILABLE", `the guest agent refused: ${frame.payload.toString("utf8")}`, "stop and start the sandbox"));
      return;
    }
    const channel = this.channels.get(frame.channel);
    if (!channel) return;
    if (frame.type === FrameType.output) {
      if (frame.payload.length < 1) throw new Error("an output frame without its stream");
      channel.onOutput(frame.payload.readUInt8(0) === 2 ? "stderr" : "stdout", frame.payload.subarray(1));
    } else if (frame.type === FrameType.exit) {
      if (frame.payload.length < 5) throw new Error("a short exit frame");
      this.channels.delete(frame.channel);
      const { exitCode, signal } = decodeExit(frame.payload);
      channel.resolve({ exitCode, signal: signal ? (signalName(signal) ?? `signal ${signal}`) : null });
    } else if (frame.type === FrameType.error) {
      this.channels.delete(frame.channel);
      channel.reject(new PaddockError("E_SPAWN", `cannot run the command in the VM: ${frame.payload.toString("utf8")}`, "the VM's console log (STATE_DIR/sandboxes/ID/vm/console.log) may say more"));
    }
  }

  private fail(err: Error): void {
    if (this.closedError) return;
    this.closedError = err;
    this.control?.reject(err);
    for (const channel of this.channels.values()) channel.reject(err);
    this.channels.clear();
    for (const listener of this.closeListeners.splice(0)) listener(err);
    this.socket.destroy();
  }
}

function signalName(n: number): string | undefined {
  return Object.entries(os.constants.signals as Record<string, number>).find(([, v]) => v === n)?.[0];
}
