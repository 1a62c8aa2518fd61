import type { AgentNotificationMethod, AgentNotifications } from "../protocol/methods";

/** What the agent knows about one connected client. */
export interface Caller {
  uid: number;
  /** The peer's pid when the transport can tell (SO_PEERCRED), else undefined. */
  pid?: number;
}

export type TransportKind = "stdio" | "socket";

export interface Session {
  readonly id: number;
  readonly caller: Caller;
  readonly transport: TransportKind;
  initialized: boolean;
  shutdownRequested: boolean;
  /**
   * Sends a notification to this client. Returns false when the client is not keeping up
   * (its unread output is over a threshold): the sender should pause until `onDrain`.
   */
  notify<M extends AgentNotificationMethod>(method: M, params: AgentNotifications[M]): boolean;
  /** Sends a notification that a later one of the same key makes stale; while the client is behind, only the latest is kept (as `whenBehind`). */
  notifyLatest<M extends AgentNotificationMethod>(key: string, method: M, params: AgentNotifications[M], whenBehind?: AgentNotifications[M]): void;
  /** Calls `listener` once, when the client has read its backlog. */
  onDrain(listener: () => void): void;
  /** Builds an answer that may be megabytes once the client has read the previous ones, one at a time (answer-gate.ts). */
  bigAnswer<T>(build: () => T | Promise<T>): Promise<T>;
  /** Calls `listener` when the connection closes; returns how to stop listening. */
  onClose(listener: () => void): () => void;
  readonly closed: boolean;
}
