/**
 * The host's side of the guest agent's framing (native/guest-agent.c says the same): pure
 * encoders and a decoder, so that the wire format is tested without a VM.
 *
 * Frame: u32 payload length (big endian), u8 type, u32 channel, payload.
 */

export const FrameType = {
  auth: 1,
  exec: 2,
  stdin: 3,
  resize: 4,
  signal: 5,
  claim: 6,
  poweroff: 7,
  ready: 0x10,
  output: 0x11,
  exit: 0x12,
  error: 0x13,
  claimed: 0x14,
} as const;

export const MAX_FRAME = 1 << 20;
const HEADER = 9;

export interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}

export function encodeFrame(type: number, channel: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  if (payload.length > MAX_FRAME) throw new Error(`frame of ${payload.length} bytes is over ${MAX_FRAME}`);
  const head = Buffer.alloc(HEADER);
  head.writeUInt32BE(payload.length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32BE(channel >>> 0, 5);
  return Buffer.concat([head, payload]);
}

export interface ExecRequest {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  uid: number;
  gid: number;
  pty?: { cols: number; rows: number };
}

export function encodeExec(channel: number, request: ExecRequest): Buffer {
  const fixed = Buffer.alloc(21);
  fixed.writeUInt8(request.pty ? 1 : 0, 0);
  fixed.writeUInt16BE(request.pty?.cols ?? 0, 1);
  fixed.writeUInt16BE(request.pty?.rows ?? 0, 3);
  fixed.writeUInt32BE(request.uid, 5);
  fixed.writeUInt32BE(request.gid, 9);
  const env = Object.entries(request.env).map(([k, v]) => `${k}=${v}`);
  fixed.writeUInt32BE(request.argv.length, 13);
  fixed.writeUInt32BE(env.length, 17);
  const strings = [request.cwd, ...request.argv, ...env];
  if (strings.some((s) => s.includes("\0"))) throw new Error("arguments and environment cannot hold NUL bytes");
  return encodeFrame(FrameType.exec, channel, Buffer.concat([fixed, ...strings.map((s) => Buffer.from(`${s}\0`, "utf8"))]));
}

export function encodeResize(channel: number, cols: number, rows: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt16BE(cols, 0);
  payload.writeUInt16BE(rows, 2);
  return encodeFrame(FrameType.resize, channel, payload);
}

/** Splits a byte stream into frames; a length over MAX_FRAME is a broken peer. */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Frame[] = [];
    while (this.buffer.length >= HEADER) {
      const length = this.buffer.readUInt32BE(0);
      if (length > MAX_FRAME) throw new Error(`the guest sent a frame of ${length} bytes`);
      if (this.buffer.length < HEADER + length) break;
      frames.push({ type: this.buffer.readUInt8(4), channel: this.buffer.readUInt32BE(5), payload: this.buffer.subarray(HEADER, HEADER + length) });
      this.buffer = this.buffer.subarray(HEADER + length);
    }
    return frames;
  }
}

export function decodeExit(payload: Buffer): { exitCode: number; signal: number } {
  return { exitCode: payload.readInt32BE(0), signal: payload.length > 4 ? payload.readUInt8(4) : 0 };
}
