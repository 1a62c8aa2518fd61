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
  /** Sends a notification to this client. */
  notify(method: string, params: unknown): void;
}
