/**
 * A test client that speaks raw bytes, so tests can send what no well-behaved client would
 * (garbage, split frames, bad headers) and read back every frame the agent sends.
 */
import type { Readable, Writable } from "node:stream";
import { FrameReader, encodeFrame } from "../../protocol/framing";

export interface RpcError {
  code: number;
  message: string;
  data?: { code: string; hint?: string; field?: string };
}
export interface RpcMessage {
  jsonrpc: "2.0";
  id?: string | number | null;
  result?: unknown;
  error?: RpcError;
  method?: string;
  params?: unknown;
}
export type Received = RpcMessage | RpcMessage[];

export class RawPeer {
  private readonly reader = new FrameReader();
  private readonly received: Received[] = [];
  private waiters: (() => void)[] = [];
  ended = false;

  constructor(
    input: Readable,
    private readonly output: Writable,
  ) {
    input.on("data", (chunk: Buffer) => {
      for (const event of this.reader.push(chunk)) {
        if (event.kind === "frame") this.received.push(JSON.parse(event.body.toString("utf8")) as Received);
      }
      this.wake();
    });
    input.on("end", () => {
      this.ended = true;
      this.wake();
    });
  }

  sendBytes(bytes: Buffer | string): void {
    this.output.write(typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes);
  }

  sendJson(value: unknown): void {
    this.output.write(encodeFrame(JSON.stringify(value)));
  }

  /** Sends a request and waits for the response with its id. */
  async call(method: string, params?: unknown, id: string | number = nextId(), timeoutMs = 5000): Promise<RpcMessage> {
    this.sendJson({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
    return this.waitFor((m) => !Array.isArray(m) && m.id === id, timeoutMs) as Promise<RpcMessage>;
  }

  /** The next message not yet taken, in arrival order. */
  next(timeoutMs = 5000): Promise<Received> {
    return this.waitFor(() => true, timeoutMs);
  }

  async waitFor(match: (m: Received) => boolean, timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.received.findIndex(match);
      if (index >= 0) return this.received.splice(index, 1)[0] as Received;
      if (this.ended) throw new Error("connection ended before the expected message arrived");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message within ${timeoutMs} ms; have ${JSON.stringify(this.received).slice(0, 500)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Messages that arrived and were not taken. */
  get unread(): Received[] {
    return [...this.received];
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

let counter = 1000;
function nextId(): number {
  return counter++;
}
