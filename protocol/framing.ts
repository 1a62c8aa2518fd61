/**
 * LSP-style framing: `Content-Length: N\r\n\r\n` followed by N bytes of UTF-8 JSON.
 *
 * The reader is an incremental state machine with no I/O, so that it can be fuzzed. It never
 * buffers more than one header block (capped) or one body (capped): a frame that announces
 * more than the cap is reported and its bytes are skipped as they arrive, unbuffered. A body
 * is gathered into one buffer as it comes, so however small the pieces it arrives in, it costs
 * its size and no more. A header refused whose Content-Length is still clear (an unsupported
 * charset, say) has its body skipped, so the next frame reads; one whose length is unclear
 * (two values, not a number, or somewhere in a header block too long to read) leaves no way
 * to find the next frame, so the reader reports it as fatal and reads no more. A header block
 * with no Content-Length at all (garbage) is dropped up to its blank line.
 */
import type { ErrorCode } from "./errors";

export const DEFAULT_MAX_FRAME_BYTES = 32 * 1024 * 1024;
export const MAX_HEADER_BYTES = 8 * 1024;

const HEADER_END = Buffer.from("\r\n\r\n");
const CONTENT_LENGTH = "content-length";
/** A body's buffer starts this big (or the body's size) and doubles as bytes arrive. */
const FIRST_BODY_BYTES = 64 * 1024;

export interface FrameRefusal {
  code: ErrorCode;
  message: string;
  hint: string;
}

export type FrameEvent =
  | { kind: "frame"; body: Buffer }
  /** `fatal`: the stream cannot be read further; the reader ignores whatever comes next. */
  | ({ kind: "error"; fatal: boolean } & FrameRefusal);

/**
 * Memory the reader must be granted before it buffers a body: `reserve` is asked for the
 * announced length when a header is read (a refusal is fatal), `release` gives it back when
 * the body is complete or the reader is disposed of.
 */
export interface FrameBudget {
  reserve(bytes: number): FrameRefusal | undefined;
  release(bytes: number): void;
}

/** Where the reader is: between frames, inside a header, or inside a body (read or skipped). */
export type FrameProgress =
  | { stage: "idle" }
  | { stage: "header"; frame: number }
  | { stage: "body"; frame: number; length: number; received: number };

type State =
  | { mode: "header" }
  | { mode: "skip-header" } // an over-long header block: drop bytes until a blank line
  /** `body` holds the `received` bytes so far; it grows, up to `length`, as they come. */
  | { mode: "body"; length: number; body: Buffer; received: number }
  | { mode: "discard"; length: number; remaining: number }
  | { mode: "ended" };

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private state: State = { mode: "header" };
  /** Frames finished (read, skipped or refused): the number of the frame now being read. */
  private framesDone = 0;
  private reserved = 0;

  constructor(
    private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
    private readonly budget?: FrameBudget,
  ) {}

  /** Feeds bytes in; returns every complete frame or framing error they finish. */
  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    if (this.state.mode === "ended") return events;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      const progressed = this.step(events);
      if (!progressed) return events;
    }
  }

  /** Bytes held for an unfinished frame (for tests and flow-control decisions). */
  get pendingBytes(): number {
    return this.buffered + (this.state.mode === "body" ? this.state.received : 0);
  }

  get progress(): FrameProgress {
    switch (this.state.mode) {
      case "header":
        return this.buffered === 0 ? { stage: "idle" } : { stage: "header", frame: this.framesDone };
      case "skip-header":
        return { stage: "header", frame: this.framesDone };
      case "body":
        return { stage: "body", frame: this.framesDone, length: this.state.length, received: this.state.received };
      case "discard":
        return { stage: "body", frame: this.framesDone, length: this.state.length, received: this.state.length - this.state.remaining };
      case "ended":
        return { stage: "idle" };
    }
  }

  /** Drops what is buffered and gives back what was reserved; reads no more. */
  dispose(): void {
    this.end();
  }

  private step(events: FrameEvent[]): boolean {
    switch (this.state.mode) {
      case "header":
        return this.readHeader(events);
      case "skip-header":
        return this.skipHeader(events);
      case "body":
        return this.readBody(events, this.state);
      case "discard":
        return this.discard(this.state.length, this.state.remaining);
      case "ended":
        return false;
    }
  }

  private readHeader(events: FrameEvent[]): boolean {
    let data = this.peekAll();
    // Blank lines between frames (a stray "\r\n" after a body) start no header: skipped, or
    // the next frame's header would be read as a malformed one and its body lost.
    let blank = 0;
    while (data[blank] === CR && data[blank + 1] === LF) blank += 2;
    if (blank > 0) {
      this.replace(data.subarray(blank));
      data = this.peekAll();
    }
    const end = data.indexOf(HEADER_END);
    if (end < 0 || end > MAX_HEADER_BYTES) {
      if (data.length <= MAX_HEADER_BYTES) return false;
      // Too long to read: where it ends can be found (its blank line), where its frame ends cannot
      // if it names a length (the body would be taken for the next header): that is fatal.
      if (namesLength(end < 0 ? data : data.subarray(0, end))) return this.lengthUnreadable(events);
      events.push({
        kind: "error",
        fatal: false,
        code: "E_FRAME_HEADER",
        message: `frame header longer than ${MAX_HEADER_BYTES} bytes without a blank line`,
        hint: 'each message starts with "Content-Length: N" followed by "\\r\\n\\r\\n"',
      });
      this.state = { mode: "skip-header" };
      return true;
    }
    const header = data.subarray(0, end).toString("latin1");
    this.replace(data.subarray(end + HEADER_END.length));
    const parsed = parseHeader(header);
    if ("error" in parsed) {
      const refusal: FrameRefusal = { code: "E_FRAME_HEADER", message: parsed.error, hint: parsed.hint };
      if (parsed.length === "unclear") {
        events.push({
          kind: "error",
          fatal: true,
          ...refusal,
          message: `${parsed.error}: where this frame ends cannot be known, so the connection is closed`,
          hint: "send exactly one Content-Length, a byte count, per message; then reconnect",
        });
        this.end();
        return false;
      }
      events.push({ kind: "error", fatal: false, ...refusal });
      this.skipBody(parsed.length ?? 0);
      return true;
    }
    if (parsed.length > this.maxFrameBytes) {
      events.push({
        kind: "error",
        fatal: false,
        code: "E_FRAME_TOO_LARGE",
        message: `frame of ${parsed.length} bytes is over the limit of ${this.maxFrameBytes} bytes`,
        hint: "send smaller messages; the frame's bytes are skipped",
      });
      this.skipBody(parsed.length);
      return true;
    }
    const refused = this.budget?.reserve(parsed.length);
    if (refused) {
      events.push({ kind: "error", fatal: true, ...refused });
      this.end();
      return false;
    }
    this.reserved = parsed.length;
    this.state = { mode: "body", length: parsed.length, body: Buffer.allocUnsafe(Math.min(parsed.length, FIRST_BODY_BYTES)), received: 0 };
    return true;
  }

  /** Drops an over-long header block up to its blank line; fatal if it names a length on the way. */
  private skipHeader(events: FrameEvent[]): boolean {
    const data = this.peekAll();
    const end = data.indexOf(HEADER_END);
    if (namesLength(end < 0 ? data : data.subarray(0, end))) return this.lengthUnreadable(events);
    if (end < 0) {
      // Keep the last bytes: they may start the blank line, or "Content-Length".
      this.replace(data.subarray(Math.max(0, data.length - (CONTENT_LENGTH.length - 1))));
      return false;
    }
    this.replace(data.subarray(end + HEADER_END.length));
    this.frameDone();
    return true;
  }

  private lengthUnreadable(events: FrameEvent[]): false {
    events.push({
      kind: "error",
      fatal: true,
      code: "E_FRAME_HEADER",
      message: `frame header longer than ${MAX_HEADER_BYTES} bytes: where this frame ends cannot be known, so the connection is closed`,
      hint: 'send "Content-Length: N\\r\\n\\r\\n" and nothing else before each message; then reconnect',
    });
    this.end();
    return false;
  }

  /** Moves what has arrived into the body's buffer (grown as needed); emits the body once whole. */
  private readBody(events: FrameEvent[], state: Extract<State, { mode: "body" }>): boolean {
    const wanted = Math.min(state.length - state.received, this.buffered);
    if (wanted > 0) {
      if (state.received + wanted > state.body.length) {
        const grown = Buffer.allocUnsafe(Math.min(state.length, Math.max(state.body.length * 2, state.received + wanted)));
        state.body.copy(grown, 0, 0, state.received);
        state.body = grown;
      }
      this.take(wanted, state.body, state.received);
      state.received += wanted;
    }
    if (state.received < state.length) return false;
    events.push({ kind: "frame", body: state.body });
    this.giveBack();
    this.frameDone();
    return true;
  }

  /** Drops the next `length` bytes as they come, keeping none. */
  private skipBody(length: number): void {
    if (length === 0) this.frameDone();
    else this.state = { mode: "discard", length, remaining: length };
  }

  private discard(length: number, remaining: number): boolean {
    if (this.buffered === 0) return false;
    const dropped = Math.min(remaining, this.buffered);
    this.take(dropped);
    const left = remaining - dropped;
    if (left > 0) {
      this.state = { mode: "discard", length, remaining: left };
      return false;
    }
    this.frameDone();
    return true;
  }

  private frameDone(): void {
    this.framesDone++;
    this.state = { mode: "header" };
  }

  private end(): void {
    this.chunks = [];
    this.buffered = 0;
    this.giveBack();
    this.state = { mode: "ended" };
  }

  private giveBack(): void {
    if (this.reserved === 0) return;
    this.budget?.release(this.reserved);
    this.reserved = 0;
  }

  /** All buffered bytes as one buffer; only used for header blocks (small). */
  private peekAll(): Buffer {
    if (this.chunks.length === 1) return this.chunks[0] as Buffer;
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }

  /**
   * Removes the first `length` bytes, copied into `out` at `at` when given, without joining
   * anything after them: what stays buffered never pins a body-sized allocation.
   */
  private take(length: number, out?: Buffer, at = 0): void {
    let copied = 0;
    while (copied < length) {
      const chunk = this.chunks[0] as Buffer;
      const n = Math.min(chunk.length, length - copied);
      if (out) chunk.copy(out, at + copied, 0, n);
      copied += n;
      if (n === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(n);
    }
    this.buffered -= length;
  }

  private replace(rest: Buffer): void {
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
  }
}

const CR = 0x0d;
const LF = 0x0a;

/** Whether header bytes name a Content-Length (in any case). */
function namesLength(header: Buffer): boolean {
  return header.toString("latin1").toLowerCase().includes(CONTENT_LENGTH);
}

/**
 * A header block's Content-Length, or why it is refused. A refused header still gives its
 * length when that is clear (one value, a byte count), so its body can be skipped; "unclear"
 * when the block names a length that cannot be trusted.
 */
function parseHeader(header: string): { length: number } | { error: string; hint: string; length: number | "unclear" | undefined } {
  const hint = 'a header block is "Content-Length: N" lines ending in "\\r\\n", then "\\r\\n"';
  let length: number | undefined;
  let problem: string | undefined;
  for (const line of header.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) {
      problem ??= `malformed header line ${JSON.stringify(line.slice(0, 80))}`;
      continue;
    }
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      if (!/^\d{1,15}$/.test(value)) {
        return { error: `Content-Length ${JSON.stringify(value.slice(0, 40))} is not a byte count`, hint, length: "unclear" };
      }
      if (length !== undefined && length !== Number(value)) return { error: "two different Content-Length headers", hint, length: "unclear" };
      length = Number(value);
    } else if (name === "content-type") {
      if (/charset=/i.test(value) && !/charset=["']?utf-?8/i.test(value)) {
        problem ??= `unsupported ${JSON.stringify(value.slice(0, 80))}: only UTF-8 is accepted`;
      }
    }
    // Other headers are ignored, as LSP allows.
  }
  if (length === undefined) return { error: problem ?? "frame header has no Content-Length", hint, length };
  if (problem !== undefined) return { error: problem, hint: `${hint}; the frame's ${length} bytes are skipped`, length };
  return { length };
}

export function encodeFrame(json: string): Buffer {
  const body = Buffer.from(json, "utf8");
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, "ascii"), body]);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** Decodes a frame body, or returns null when it is not valid UTF-8. */
export function decodeUtf8(body: Buffer): string | null {
  try {
    return utf8.decode(body);
  } catch {
    return null;
  }
}

/**
 * The deepest nesting of arrays and objects in a JSON text, counted without parsing, so a
 * hostile message is refused before anything recursive touches it.
 */
export function jsonNestingDepth(text: string, stopAbove = Infinity): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > stopAbove) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
