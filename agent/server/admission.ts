/**
 * What one user may hold of the agent through its socket: connection slots (per uid, with
 * slots kept for root and the agent's own user so they can always connect), the bytes its
 * unfinished frames may buffer and those of the requests it has in flight (each all its
 * connections together), and how long a frame may take to arrive. The socket server owns one Admission and gives each connection a ticket; the
 * connection's frame reader reserves from the ticket and the connection enforces its deadlines.
 */
import { PaddockError } from "../../protocol/errors";
import type { FrameBudget, FrameRefusal } from "../../protocol/framing";

export interface AdmissionLimits {
  /** Connections at once, all users together. */
  maxConnections: number;
  /** Of those, how many only privileged users (root, the agent's own user) may take. */
  reservedForPrivileged: number;
  /** Connections at once of any one other user. */
  maxConnectionsPerUid: number;
  /** Bytes that one user's unfinished frames may hold, all its connections together. */
  maxBufferedBytesPerUid: number;
  /** Bytes of requests one user may have in flight (read, not yet answered), all its connections together; past it, reading waits. */
  maxInFlightBytesPerUid: number;
  /** A frame's header must be complete this long after its first byte. */
  headerTimeoutMs: number;
  /** A body must be complete this long after its header, plus the time its length takes at minBodyBytesPerSecond. */
  bodyTimeoutMs: number;
  minBodyBytesPerSecond: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_ADMISSION_LIMITS: Readonly<AdmissionLimits> = {
  maxConnections: 128,
  reservedForPrivileged: 16,
  maxConnectionsPerUid: 32,
  maxBufferedBytesPerUid: 64 * MiB,
  maxInFlightBytesPerUid: 64 * MiB,
  headerTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  // A local socket moves hundreds of MiB/s; 32 MiB may take 42 s at this pace and no longer.
  minBodyBytesPerSecond: MiB,
};

/** The defaults, with PADDOCK_FRAME_DEADLINE_MS (tests) setting the header and body deadlines. */
export function admissionLimitsFromEnv(env: NodeJS.ProcessEnv): AdmissionLimits {
  const limits = { ...DEFAULT_ADMISSION_LIMITS };
  const deadline = env.PADDOCK_FRAME_DEADLINE_MS;
  if (deadline !== undefined) {
    if (!/^\d{1,9}$/.test(deadline) || Number(deadline) === 0) {
      throw new PaddockError("E_SOCKET", `PADDOCK_FRAME_DEADLINE_MS is ${JSON.stringify(deadline)}, not a number of milliseconds`, "unset it (the default is 10000) or set it to a positive whole number");
    }
    limits.headerTimeoutMs = Number(deadline);
    limits.bodyTimeoutMs = Number(deadline);
  }
  return limits;
}

export class Admission {
  private total = 0;
  private readonly connections = new Map<number, number>();
  private readonly buffered = new Map<number, number>();
  private readonly inFlight = new Map<number, number>();
  /** Per uid, who waits for its requests in flight to drop under the limit. */
  private readonly roomWaiters = new Map<number, Set<() => void>>();

  constructor(
    readonly limits: Readonly<AdmissionLimits>,
    /** Root and the agent's own uid: never limited per uid, and they may take the reserved slots. */
    private readonly privileged: ReadonlySet<number>,
  ) {}

  /** A ticket for one more connection of `uid`; throws E_TOO_MANY_CONNECTIONS when it has no slot. */
  admit(uid: number): ConnectionTicket {
    const { maxConnections, reservedForPrivileged, maxConnectionsPerUid } = this.limits;
    const hint = "close connections you do not use (each VS Code window and running paddock command holds one), then try again";
    if (this.privileged.has(uid)) {
      if (this.total >= maxConnections) {
        throw new PaddockError("E_TOO_MANY_CONNECTIONS", `the agent already has ${this.total} connections, its limit of ${maxConnections}`, hint);
      }
    } else {
      const mine = this.connections.get(uid) ?? 0;
      if (mine >= maxConnectionsPerUid) {
        throw new PaddockError("E_TOO_MANY_CONNECTIONS", `uid ${uid} already has ${mine} connections to the agent, the limit of ${maxConnectionsPerUid} per user`, hint);
      }
      const shared = maxConnections - reservedForPrivileged;
      if (this.total >= shared) {
        throw new PaddockError("E_TOO_MANY_CONNECTIONS", `the agent already has ${this.total} connections; the last ${reservedForPrivileged} of its ${maxConnections} are kept for root and its owner`, hint);
      }
    }
    this.total++;
    this.connections.set(uid, (this.connections.get(uid) ?? 0) + 1);
    return new ConnectionTicket(uid, this);
  }

  /** For a ticket: takes `bytes` of its uid's budget, or says why not. */
  reserveFor(uid: number, bytes: number): FrameRefusal | undefined {
    const held = this.buffered.get(uid) ?? 0;
    const max = this.limits.maxBufferedBytesPerUid;
    if (held + bytes > max) {
      return {
        code: "E_FRAME_BUDGET",
        message: `a frame of ${bytes} bytes would put uid ${uid}'s unfinished frames over ${max} bytes (${formatMiB(max)}), the most one user's connections may hold at once; ${held} bytes are held now`,
        hint: "finish or close the frames other connections of yours have started, or send smaller messages; this connection is closed",
      };
    }
    this.buffered.set(uid, held + bytes);
    return undefined;
  }

  /** For a ticket: gives back `bytes` of its uid's budget. */
  releaseFor(uid: number, bytes: number): void {
    const left = (this.buffered.get(uid) ?? 0) - bytes;
    if (left > 0) this.buffered.set(uid, left);
    else this.buffered.delete(uid);
  }

  /** For a ticket: counts a request of `bytes` read and not yet answered. */
  startedFor(uid: number, bytes: number): void {
    this.inFlight.set(uid, (this.inFlight.get(uid) ?? 0) + bytes);
  }

  /** For a ticket: a request of `bytes` was answered; those waiting for room are told when there is some. */
  endedFor(uid: number, bytes: number): void {
    const left = (this.inFlight.get(uid) ?? 0) - bytes;
    if (left > 0) this.inFlight.set(uid, left);
    else this.inFlight.delete(uid);
    if (this.inFlightFull(uid)) return;
    for (const waiter of [...(this.roomWaiters.get(uid) ?? [])]) waiter();
  }

  /** Whether `uid`'s requests in flight are at its limit: its connections read no more until some are answered. */
  inFlightFull(uid: number): boolean {
    return (this.inFlight.get(uid) ?? 0) >= this.limits.maxInFlightBytesPerUid;
  }

  /** Calls `listener` each time `uid`'s requests in flight drop under the limit, until unsubscribed. */
  onRoomFor(uid: number, listener: () => void): () => void {
    const waiters = this.roomWaiters.get(uid) ?? new Set();
    waiters.add(listener);
    this.roomWaiters.set(uid, waiters);
    return () => {
      waiters.delete(listener);
      if (waiters.size === 0 && this.roomWaiters.get(uid) === waiters) this.roomWaiters.delete(uid);
    };
  }

  /** For a ticket: frees its slot. */
  leave(uid: number): void {
    this.total--;
    const left = (this.connections.get(uid) ?? 0) - 1;
    if (left > 0) this.connections.set(uid, left);
    else this.connections.delete(uid);
  }
}

/** One connection's slot and its share of its uid's budget; close() gives both back, once. */
export class ConnectionTicket implements FrameBudget {
  private held = 0;
  private closed = false;

  constructor(
    readonly uid: number,
    private readonly admission: Admission,
  ) {}

  get limits(): Readonly<AdmissionLimits> {
    return this.admission.limits;
  }

  reserve(bytes: number): FrameRefusal | undefined {
    if (this.closed) return { code: "E_FRAME_BUDGET", message: "the connection is closed", hint: "reconnect" };
    const refused = this.admission.reserveFor(this.uid, bytes);
    if (!refused) this.held += bytes;
    return refused;
  }

  release(bytes: number): void {
    const given = Math.min(bytes, this.held);
    if (given === 0) return;
    this.held -= given;
    this.admission.releaseFor(this.uid, given);
  }

  /** A request of `bytes` was read; it counts against the uid's requests in flight until `requestEnded`. */
  requestStarted(bytes: number): void {
    this.admission.startedFor(this.uid, bytes);
  }

  /** The request of `bytes` was answered (or dropped): called even after the connection closed, as its work may outlive it. */
  requestEnded(bytes: number): void {
    this.admission.endedFor(this.uid, bytes);
  }

  /** Whether the uid has as many bytes of requests in flight as it may: reading waits. */
  get inFlightFull(): boolean {
    return this.admission.inFlightFull(this.uid);
  }

  /** Calls `listener` each time the uid's requests in flight drop under the limit; returns how to stop. */
  onRoom(listener: () => void): () => void {
    return this.admission.onRoomFor(this.uid, listener);
  }

  close(): void {
    if (this.closed) return;
    this.release(this.held);
    this.closed = true;
    this.admission.leave(this.uid);
  }
}

/**
 * The socket server files each admitted socket's ticket here; the connection built on that
 * socket (by Agent.attach, which knows nothing of transports) finds it by its input stream.
 * Streams without one (stdio, in-memory tests) have no limits.
 */
const tickets = new WeakMap<object, ConnectionTicket>();

export function fileTicket(stream: object, ticket: ConnectionTicket): void {
  tickets.set(stream, ticket);
}

export function ticketOf(stream: object): ConnectionTicket | undefined {
  return tickets.get(stream);
}

function formatMiB(bytes: number): string {
  return `${Math.round((bytes / MiB) * 10) / 10} MiB`;
}
