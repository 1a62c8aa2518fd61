/**
 * A typed client of the agent over any pair of streams (a socket, a child's stdio, an
 * in-memory pair). Request bookkeeping comes from json-rpc-2.0's JSONRPCClient; framing is
 * ours, shared with the agent.
 */
import * as net from "node:net";
import type { Readable, Writable } from "node:stream";
import { JSONRPCClient, JSONRPCErrorException, type JSONRPCResponse } from "json-rpc-2.0";
import { FrameReader, decodeUtf8, encodeFrame } from "./framing";
import { isErrorCode, PaddockError } from "./errors";
import type { AgentNotificationArgs, InitializeResult, RequestMethod, RequestParams, RequestResults } from "./methods";
import { PROTOCOL_VERSION } from "./version";

/** Hears the agent's notifications, typed by the method table (methods.ts). */
export type NotificationListener = (...args: AgentNotificationArgs) => void;

export interface AgentClientOptions {
  /** Says why the agent went away (e.g. a child agent's last words); awaited before failing requests. */
  explainClose?: () => Promise<PaddockError | undefined>;
}

/** Whether something accepts connections on a Unix socket. */
export function isListening(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** How long `connect` waits out an agent's full listen queue. */
const CONNECT_BUSY_WAIT_MS = 5_000;

function connectOnce(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

export class AgentClient {
  private readonly rpc: JSONRPCClient;
  private readonly reader = new FrameReader();
  private readonly listeners: NotificationListener[] = [];
  private readonly closeListeners: ((error: Error) => void)[] = [];
  private closedError: Error | undefined;
  /** An error the agent sent about no request (a frame it refused): why it closes, if it then does. */
  private refusal: Error | undefined;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    options: AgentClientOptions = {},
  ) {
    this.rpc = new JSONRPCClient((request) => {
      if (this.closedError) return Promise.reject(this.closedError);
      this.output.write(encodeFrame(JSON.stringify(request)));
      return Promise.resolve();
    });
    input.on("data", (chunk: Buffer) => this.receive(chunk));
    const onClose = () => {
      const generic = this.refusal ?? new PaddockError("E_AGENT_UNREACHABLE", "the agent closed the connection", "see the agent's log");
      if (!options.explainClose) return this.fail(generic);
      void options.explainClose().then((reason) => this.fail(reason ?? generic));
    };
    input.on("end", onClose);
    input.on("close", onClose);
    input.on("error", onClose);
  }

  /**
   * Connects to an agent's socket. A full listen queue (EAGAIN: others are connecting faster
   * than the agent accepts, as in a connect flood) is waited out for a few seconds, since the
   * agent drops connections over its limits at once and the queue soon has room again.
   */
  static async connect(socketPath: string, busyWaitMs = CONNECT_BUSY_WAIT_MS): Promise<AgentClient> {
    const giveUpAt = Date.now() + busyWaitMs;
    for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
      try {
        const socket = await connectOnce(socketPath);
        return new AgentClient(socket, socket);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN" || Date.now() + pause > giveUpAt) throw err;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  /** Sends a request; a JSON-RPC error becomes a PaddockError carrying its E_ code and hint. */
  async request<M extends RequestMethod>(method: M, params?: RequestParams<M>): Promise<RequestResults[M]> {
    try {
      return (await this.rpc.request(method, params)) as RequestResults[M];
    } catch (err) {
      throw this.closedError ?? toPaddockError(err);
    }
  }

  notify(method: string, params?: unknown): void {
    this.rpc.notify(method, params);
  }

  onNotification(listener: NotificationListener): void {
    this.listeners.push(listener);
  }

  /** Called once when the connection ends, with why (the agent went away, or `close()`). */
  onClose(listener: (error: Error) => void): void {
    if (this.closedError) listener(this.closedError);
    else this.closeListeners.push(listener);
  }

  async initialize(clientName: string): Promise<InitializeResult> {
    return this.request("initialize", { clientName, protocolVersion: PROTOCOL_VERSION });
  }

  close(): void {
    this.fail(new PaddockError("E_AGENT_UNREACHABLE", "the connection was closed", "reconnect"));
    this.output.end();
  }

  private receive(chunk: Buffer): void {
    for (const event of this.reader.push(chunk)) {
      if (event.kind === "error") continue; // the agent only sends well-formed frames
      const text = decodeUtf8(event.body);
      if (text === null) continue;
      const message = JSON.parse(text) as { method?: string; params?: unknown } | JSONRPCResponse | JSONRPCResponse[];
      if (!Array.isArray(message) && "method" in message && typeof message.method === "string") {
        // The agent's notifications are those of the method table (a newer agent's others are listened to as such).
        const args = [message.method, message.params] as AgentNotificationArgs;
        for (const listener of this.listeners) listener(...args);
      } else if (!Array.isArray(message) && "id" in message && message.id === null && message.error) {
        // Not the answer to a request: kept as the reason if the agent now closes the connection.
        const { message: text, code, data } = message.error;
        this.refusal = toPaddockError(new JSONRPCErrorException(text, code, data));
      } else {
        this.rpc.receive(message as JSONRPCResponse);
      }
    }
  }

  private fail(error: Error): void {
    if (this.closedError) return;
    this.closedError = error;
    this.rpc.rejectAllPendingRequests(error.message);
    for (const listener of this.closeListeners.splice(0)) listener(error);
  }
}

function toPaddockError(err: unknown): Error {
  if (err instanceof JSONRPCErrorException) {
    const data = (err.data ?? {}) as { code?: unknown; hint?: unknown };
    const code = isErrorCode(data.code) ? data.code : "E_INTERNAL";
    const { code: _code, hint, ...extra } = data;
    return new PaddockError(code, err.message, typeof hint === "string" ? hint : undefined, { ...extra, rpcCode: err.code });
  }
  return err instanceof Error ? err : new Error(String(err));
}
