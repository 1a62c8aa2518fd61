/**
 * One client connection: bytes in through the frame reader, messages through the
 * dispatcher, responses and notifications out as frames. A misbehaving client can only hurt
 * its own connection: every framing or parse problem becomes an error response, and reading
 * pauses while too many requests are in flight or the client is not reading its answers.
 */
import type { Readable, Writable } from "node:stream";
import { FrameReader, decodeUtf8, encodeFrame, jsonNestingDepth } from "../protocol/framing";
import { errorResponse, type Dispatcher, type Response } from "./dispatcher";
import type { Logger } from "../log/logger";

export const MAX_NESTING = 64;
const MAX_IN_FLIGHT = 256;
const MAX_UNREAD_OUTPUT_BYTES = 8 * 1024 * 1024;

export interface ConnectionOptions<C> {
  input: Readable;
  output: Writable;
  dispatcher: Dispatcher<C>;
  context: C;
  log: Logger;
  maxFrameBytes?: number;
}

export class Connection<C> {
  private readonly reader: FrameReader;
  private inFlight = 0;
  private closed = false;
  private readonly closeListeners: (() => void)[] = [];

  constructor(private readonly options: ConnectionOptions<C>) {
    this.reader = new FrameReader(options.maxFrameBytes);
  }

  start(): void {
    const { input, output } = this.options;
    input.on("data", (chunk: Buffer) => this.receive(chunk));
    input.on("end", () => this.close());
    input.on("error", (err) => {
      this.options.log.debug("input error", { error: err.message });
      this.close();
    });
    output.on("error", (err) => {
      this.options.log.debug("output error", { error: err.message });
      this.close();
    });
    output.on("drain", () => this.updateFlow());
  }

  notify(method: string, params: unknown): void {
    this.send({ jsonrpc: "2.0", method, params });
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const listener of this.closeListeners) listener();
  }

  get context(): C {
    return this.options.context;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private receive(chunk: Buffer): void {
    for (const event of this.reader.push(chunk)) {
      if (event.kind === "error") {
        this.options.log.warn("bad frame", { code: event.code, error: event.message });
        this.send(errorResponse(null, event.code, event.message, event.hint));
      } else {
        this.dispatch(event.body);
      }
    }
  }

  private dispatch(body: Buffer): void {
    const message = parseMessage(body);
    if ("error" in message) {
      this.send(message.error);
      return;
    }
    this.inFlight++;
    this.updateFlow();
    this.options.dispatcher
      .handle(message.value, this.options.context, this.options.log)
      .then((response) => {
        if (response !== null) this.send(response);
      })
      .catch((err: unknown) => this.options.log.error("dispatch failed", { error: String(err) }))
      .finally(() => {
        this.inFlight--;
        this.updateFlow();
      });
  }

  private send(message: Response | Response[] | object): void {
    if (this.closed) return;
    let json: string;
    try {
      json = JSON.stringify(message);
    } catch (err) {
      const id = (message as { id?: unknown }).id;
      json = JSON.stringify(
        errorResponse(typeof id === "string" || typeof id === "number" ? id : null, "E_INTERNAL", `result could not be encoded: ${String(err)}`),
      );
    }
    this.options.output.write(encodeFrame(json));
    this.updateFlow();
  }

  private updateFlow(): void {
    const { input, output } = this.options;
    const saturated = this.inFlight >= MAX_IN_FLIGHT || output.writableLength > MAX_UNREAD_OUTPUT_BYTES;
    if (saturated && !input.isPaused()) input.pause();
    else if (!saturated && input.isPaused() && !this.closed) input.resume();
  }
}

function parseMessage(body: Buffer): { value: unknown } | { error: Response } {
  const text = decodeUtf8(body);
  if (text === null) {
    return { error: errorResponse(null, "E_INVALID_UTF8", "message body is not valid UTF-8", "encode the JSON text as UTF-8") };
  }
  if (jsonNestingDepth(text, MAX_NESTING) > MAX_NESTING) {
    return {
      error: errorResponse(null, "E_NESTING_TOO_DEEP", `message nests arrays and objects deeper than ${MAX_NESTING} levels`, "flatten the params"),
    };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: errorResponse(null, "E_PARSE", `parse error: ${(err as Error).message}`, "the body must be one JSON value") };
  }
}
