/**
 * One client connection: bytes in through the frame reader, messages through the
 * dispatcher, responses and notifications out as frames. A misbehaving client can only hurt
 * its own connection: every framing or parse problem becomes an error response, reading
 * pauses while too many requests (or too many of their bytes, of this connection or of all its
 * user's on the socket; one request always goes through) are in flight or the client is not
 * reading its answers, and no answer bigger than a frame is ever built into one. On the socket, a frame must arrive in
 * time and within its user's budget (see admission.ts); one that does not, or one whose end
 * cannot be found, is answered with an error and the connection is closed.
 */
import type { Readable, Writable } from "node:stream";
import { DEFAULT_MAX_FRAME_BYTES, FrameReader, decodeUtf8, encodeFrame, jsonNestingDepth, type FrameRefusal } from "../../protocol/framing";
import { ticketOf, type ConnectionTicket } from "./admission";
import { errorResponse, type Dispatcher, type JsonRpcId, type Response } from "./dispatcher";
import type { Logger } from "../log/logger";

export const MAX_NESTING = 64;
const MAX_IN_FLIGHT = 256;
/** Bytes of requests one connection may have in flight (on the socket, its user's limit comes first). */
const MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
const MAX_UNREAD_OUTPUT_BYTES = 8 * 1024 * 1024;
/** Unread notification bytes past which producers (process output) are asked to pause. */
const NOTIFY_BACKLOG_BYTES = 1024 * 1024;
/** Bad frames logged at warn per connection; the rest at debug, so one client cannot flood the log. */
const BAD_FRAMES_LOGGED = 5;
/** How long a client that is being closed has to read its last error before the end. */
const CLOSE_GRACE_MS = 1000;
/** The longest a frame's deadline is set for (a timer takes at most 2^31-1 ms; a skipped frame may announce petabytes). */
const MAX_DEADLINE_MS = 24 * 60 * 60 * 1000;
/** A deadline firing later than this after it was due was held up by the agent, not the client. */
const LATE_SLACK_MS = 200;

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
  private readonly maxFrameBytes: number;
  /** The socket server's limits for this connection; none on stdio. */
  private readonly ticket: ConnectionTicket | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** What the deadline running now is for: "idle", "paused", or a stage and frame number. */
  private deadlineFor = "idle";
  private inFlight = 0;
  private inFlightBytes = 0;
  private stopWaitingForRoom: (() => void) | undefined;
  private state: "open" | "draining" | "closed" = "open";
  private badFrames = 0;
  private readonly closeListeners: (() => void)[] = [];
  private drainListeners: (() => void)[] = [];
  /** Notifications held while the client is behind, the latest per key (see notifyLatest). */
  private readonly held = new Map<string, { method: string; params: unknown }>();

  constructor(private readonly options: ConnectionOptions<C>) {
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.ticket = ticketOf(options.input);
    this.reader = new FrameReader(this.maxFrameBytes, this.ticket);
  }

  start(): void {
    const { input, output } = this.options;
    // Another connection of the same user had an answer sent: this one may read again.
    this.stopWaitingForRoom = this.ticket?.onRoom(() => this.updateFlow());
    input.on("data", (chunk: Buffer) => this.receive(chunk));
    // The client finished sending: answer what it asked, then close.
    input.on("end", () => this.closeWhenIdle());
    input.on("error", (err) => this.abort(`input error: ${err.message}`));
    // Destroyed without an end (by the server stopping, say); after an end, "close" just follows it.
    input.on("close", () => {
      if (this.state === "open") this.abort("input closed");
    });
    output.on("error", (err) => this.abort(`output error: ${err.message}`));
    output.on("drain", () => {
      this.updateFlow();
      const listeners = this.drainListeners;
      this.drainListeners = [];
      for (const listener of listeners) listener();
    });
  }

  /** Sends a notification; false when the client's unread output is over the threshold. */
  notify(method: string, params: unknown): boolean {
    this.send({ jsonrpc: "2.0", method, params }, null);
    return this.state !== "closed" && this.options.output.writableLength <= NOTIFY_BACKLOG_BYTES;
  }

  /**
   * Sends a notification that a later one of the same `key` makes stale (a sandbox's state, its
   * changed paths). While the client is behind on reading, only the latest of each key is kept,
   * as `whenBehind` (e.g. "list everything again"), and sent once it catches up: a client that
   * does not read holds a notification per key in the agent, never all of them.
   */
  notifyLatest(key: string, method: string, params: unknown, whenBehind: unknown = params): void {
    if (this.state === "closed") return;
    if (this.held.size === 0 && this.options.output.writableLength <= NOTIFY_BACKLOG_BYTES) {
      this.send({ jsonrpc: "2.0", method, params }, null);
      return;
    }
    const first = this.held.size === 0;
    this.held.delete(key); // kept in the order each key last came
    this.held.set(key, { method, params: whenBehind });
    if (first) this.onDrain(() => this.sendHeld());
  }

  private sendHeld(): void {
    const held = [...this.held.values()];
    this.held.clear();
    for (const { method, params } of held) this.send({ jsonrpc: "2.0", method, params }, null);
  }

  /** Calls `listener` once, when the output backlog has been written out. */
  onDrain(listener: () => void): void {
    if (this.options.output.writableLength <= NOTIFY_BACKLOG_BYTES || this.state === "closed") {
      queueMicrotask(listener);
      return;
    }
    this.drainListeners.push(listener);
  }

  get closed(): boolean {
    return this.state === "closed";
  }

  onClose(listener: () => void): () => void {
    this.closeListeners.push(listener);
    return () => {
      const index = this.closeListeners.indexOf(listener);
      if (index >= 0) this.closeListeners.splice(index, 1);
    };
  }

  get context(): C {
    return this.options.context;
  }

  /** Reads no more; sends the answers to requests already received; then ends the output. */
  closeWhenIdle(): void {
    if (this.state !== "open") return;
    this.state = "draining";
    this.options.input.pause();
    this.finishIfIdle();
  }

  /** Closes at once (the peer is gone or broken). */
  abort(reason: string): void {
    if (this.state === "closed") return;
    this.options.log.debug("connection aborted", { reason });
    this.options.output.destroy();
    this.markClosed();
  }

  private finishIfIdle(): void {
    if (this.state !== "draining" || this.inFlight > 0) return;
    this.options.output.end();
    this.markClosed();
  }

  /**
   * Sends `refusal` as an error, then closes; answers still being worked on are not sent. The
   * output is ended at once and destroyed a moment later: a client still writing would get
   * EPIPE, and miss the error, if it were destroyed at once.
   */
  private closeWithError(refusal: FrameRefusal): void {
    if (this.state === "closed") return;
    this.send(errorResponse(null, refusal.code, refusal.message, refusal.hint), null);
    const { input, output } = this.options;
    input.pause();
    output.end();
    setTimeout(() => output.destroy(), CLOSE_GRACE_MS).unref();
    this.markClosed();
  }

  private markClosed(): void {
    this.state = "closed";
    this.stopDeadline();
    this.stopWaitingForRoom?.();
    // Whatever an unfinished frame held goes now, with its share of the user's budget.
    this.reader.dispose();
    for (const listener of this.closeListeners) listener();
    // Paused producers resume and then notice the connection is closed.
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const listener of listeners) listener();
  }

  private receive(chunk: Buffer): void {
    if (this.state !== "open") return;
    for (const event of this.reader.push(chunk)) {
      if (event.kind === "error") {
        this.badFrames++;
        const level = this.badFrames <= BAD_FRAMES_LOGGED || event.fatal ? "warn" : "debug";
        this.options.log[level]("bad frame", { code: event.code, error: event.message, fatal: event.fatal });
        if (event.fatal) return this.closeWithError(event);
        this.send(errorResponse(null, event.code, event.message, event.hint), null);
      } else {
        this.dispatch(event.body);
      }
    }
    this.watchDeadline();
  }

  /**
   * Keeps one timer for the frame being received: its header must be complete in time from
   * its first byte, its body in time from its header (longer for a longer body). Between
   * frames there is none (an idle connection is fine), nor while the agent itself has paused
   * reading; a frame's clock starts again when reading resumes.
   */
  private watchDeadline(): void {
    const ticket = this.ticket;
    if (!ticket || this.state !== "open") return;
    const progress = this.reader.progress;
    const key = this.options.input.isPaused() ? "paused" : progress.stage === "idle" ? "idle" : `${progress.stage} ${progress.frame}`;
    if (key === this.deadlineFor) return;
    this.stopDeadline();
    this.deadlineFor = key;
    if (progress.stage === "idle" || key === "paused") return;
    const { headerTimeoutMs, bodyTimeoutMs, minBodyBytesPerSecond } = ticket.limits;
    const ms = progress.stage === "header" ? headerTimeoutMs : bodyTimeoutMs + Math.ceil((progress.length / minBodyBytesPerSecond) * 1000);
    this.armDeadline(Math.min(ms, MAX_DEADLINE_MS), Math.min(ms, MAX_DEADLINE_MS));
  }

  /**
   * A deadline that fires late was held up by the agent itself (a long synchronous step), which
   * read nothing meanwhile: the client gets that time back, and what it sent is read first.
   */
  private armDeadline(ms: number, total: number): void {
    const armedAt = performance.now();
    this.deadline = setTimeout(() => {
      const late = performance.now() - armedAt - ms;
      if (late > LATE_SLACK_MS) this.armDeadline(Math.min(late, MAX_DEADLINE_MS), total);
      else this.frameTooSlow(total);
    }, ms);
    this.deadline.unref();
  }

  private stopDeadline(): void {
    clearTimeout(this.deadline);
    this.deadline = undefined;
    this.deadlineFor = "idle";
  }

  private frameTooSlow(ms: number): void {
    const progress = this.reader.progress;
    const within = `${Math.round(ms / 100) / 10} s`;
    const message =
      progress.stage === "body"
        ? `the frame's body did not arrive in time: ${progress.received} of its ${progress.length} bytes came within ${within}`
        : `no complete frame header within ${within} of its first byte`;
    this.options.log.warn("frame too slow, closing the connection", { uid: this.ticket?.uid, error: message });
    this.closeWithError({
      code: "E_FRAME_TIMEOUT",
      message,
      hint: "send each message whole and without pauses (a connection may stay idle between messages for as long as it likes); this connection is closed",
    });
  }

  private dispatch(body: Buffer): void {
    const message = parseMessage(body);
    if ("error" in message) {
      this.send(message.error, null);
      return;
    }
    const bytes = body.length;
    this.inFlight++;
    this.inFlightBytes += bytes;
    this.ticket?.requestStarted(bytes);
    this.updateFlow();
    this.options.dispatcher
      .handle(message.value, this.options.context, this.options.log)
      .then((response) => {
        if (response !== null) this.send(response, Array.isArray(response) ? null : response.id);
      })
      .catch((err: unknown) => this.options.log.error("dispatch failed", { error: String(err) }))
      .finally(() => {
        this.inFlight--;
        this.inFlightBytes -= bytes;
        this.ticket?.requestEnded(bytes);
        this.updateFlow();
        this.finishIfIdle();
      });
  }

  private send(message: Response | Response[] | object, id: JsonRpcId): void {
    if (this.state === "closed") return;
    let json: string;
    try {
      json = JSON.stringify(message);
    } catch (err) {
      json = JSON.stringify(errorResponse(id, "E_INTERNAL", `the answer could not be encoded: ${String(err)}`));
    }
    if (json.length > this.maxFrameBytes) {
      json = JSON.stringify(
        errorResponse(id, "E_RESPONSE_TOO_LARGE", `the answer would be over ${this.maxFrameBytes} bytes`, "ask for less at once (smaller batches, fewer paths)"),
      );
    }
    this.options.output.write(encodeFrame(json));
    this.updateFlow();
  }

  private updateFlow(): void {
    if (this.state !== "open") return;
    const { input, output } = this.options;
    const saturated =
      this.inFlight >= MAX_IN_FLIGHT ||
      this.inFlightBytes >= MAX_IN_FLIGHT_BYTES ||
      // A connection with nothing in flight may always send one request (a kill for a stuck one, say).
      (this.ticket?.inFlightFull === true && this.inFlight > 0) ||
      output.writableLength > MAX_UNREAD_OUTPUT_BYTES;
    if (saturated && !input.isPaused()) input.pause();
    else if (!saturated && input.isPaused()) input.resume();
    else return;
    this.watchDeadline();
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
