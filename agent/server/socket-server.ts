/**
 * The agent's Unix socket: in a directory only its owner can write, mode 0600 (0660 with a
 * group), and every connection's peer identified by SO_PEERCRED, never by what it claims.
 * Each connection is admitted for its uid (slots per user, some kept for root and the agent's
 * owner); one refused is told why before it is closed. A lock file beside the socket says
 * whether a live agent owns it, so a socket left by a killed agent is replaced and a live one
 * is never stolen.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import { encodeFrame } from "../../protocol/framing";
import { peerCredentials } from "../sys/libc";
import { tryExclusiveLock } from "../state/lock";
import { Admission, admissionLimitsFromEnv, fileTicket, type AdmissionLimits, type ConnectionTicket } from "./admission";
import { errorResponse } from "./dispatcher";
import type { Caller } from "../session";

/** How long a refused client has to take its error before the socket is closed regardless. */
const REFUSAL_GRACE_MS = 1000;
/** Refused sockets kept open for that grace at once; past this, they close once written. */
const MAX_LINGERING_REFUSALS = 256;
/** Refusals of one uid logged one by one; after that, one line every this many. */
const REFUSALS_LOGGED = 5;
const REFUSALS_LOG_EVERY = 100;

export interface SocketServerOptions {
  socketPath: string;
  /** Group (name or gid) allowed to connect; the socket is then 0660 and its directory 0750. */
  group?: string;
  /** Connection slots, buffer budgets and frame deadlines; by default from admissionLimitsFromEnv. */
  limits?: AdmissionLimits;
  onConnection: (socket: net.Socket, caller: Caller) => void;
  onRefused?: (reason: string) => void;
  onError?: (error: Error) => void;
}

export interface SocketServer {
  close(): Promise<void>;
}

export async function listenOnSocket(options: SocketServerOptions): Promise<SocketServer> {
  const socketPath = path.resolve(options.socketPath);
  const gid = options.group === undefined ? undefined : resolveGroup(options.group);
  const admission = new Admission(options.limits ?? admissionLimitsFromEnv(process.env), new Set([0, process.getuid?.() ?? 0]));
  prepareSocketDir(path.dirname(socketPath), gid);
  const ownership = claimSocketPath(socketPath);

  const refuse = refuser((uid, message) => options.onRefused?.(`uid ${uid}: ${message}`));
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let caller: Caller;
    try {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== "number" || fd < 0) throw new Error("socket has no file descriptor");
      const cred = peerCredentials(fd);
      caller = { uid: cred.uid, pid: cred.pid };
    } catch (err) {
      options.onRefused?.(`cannot identify peer: ${(err as Error).message}`);
      socket.destroy();
      return;
    }
    let ticket: ConnectionTicket;
    try {
      ticket = admission.admit(caller.uid);
    } catch (err) {
      if (!(err instanceof PaddockError)) throw err;
      refuse(socket, caller.uid, err);
      return;
    }
    socket.once("close", () => ticket.close());
    fileTicket(socket, ticket);
    socket.resume();
    options.onConnection(socket, caller);
  });

  // Bound under a temporary name and renamed into place once its owner and mode are final: a
  // client that finds the socket finds it ready (a group member is never refused for a moment).
  const boundPath = `${socketPath}.${process.pid}.tmp`;
  try {
    fs.rmSync(boundPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // The umask is the process's: changed only around listen(), which binds a path at once,
      // never across an await (a VM booting meanwhile made its folders 0600 once).
      const oldMask = process.umask(0o177);
      try {
        server.listen(boundPath, () => {
          server.off("error", reject);
          resolve();
        });
      } finally {
        process.umask(oldMask);
      }
    });
  } catch (err) {
    ownership.release();
    throw new PaddockError("E_SOCKET", `cannot listen on ${socketPath}: ${(err as Error).message}`, "check the path and its directory's permissions");
  }
  // e.g. EMFILE on accept: report it, keep serving the clients we have.
  server.on("error", (err) => options.onError?.(err));
  if (gid !== undefined) {
    fs.chownSync(boundPath, -1, gid);
    fs.chmodSync(boundPath, 0o660);
  } else {
    fs.chmodSync(boundPath, 0o600);
  }
  fs.renameSync(boundPath, socketPath);

  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for every client to hang up; an agent that stops does not.
        for (const socket of sockets) socket.destroy();
        ownership.release();
      }),
  };
}

/**
 * Tells a client why it is not served, then closes. The socket stays open a moment after the
 * answer (unread): closed at once, a client still writing would get EPIPE before reading why.
 * A flood of refusals is bounded both in sockets kept open and in log lines.
 */
function refuser(report: (uid: number, message: string) => void): (socket: net.Socket, uid: number, error: PaddockError) => void {
  let lingering = 0;
  const refusals = new Map<number, number>();
  return (socket, uid, error) => {
    const count = (refusals.get(uid) ?? 0) + 1;
    refusals.set(uid, count);
    if (count <= REFUSALS_LOGGED) report(uid, error.message);
    else if (count % REFUSALS_LOG_EVERY === 0) report(uid, `${error.message} (${count} refusals of this uid so far)`);
    socket.on("error", () => undefined); // a peer already gone is no concern
    const frame = encodeFrame(JSON.stringify(errorResponse(null, error.code, error.message, error.hint)));
    if (lingering >= MAX_LINGERING_REFUSALS) {
      socket.end(frame, () => socket.destroy());
      return;
    }
    lingering++;
    socket.once("close", () => lingering--);
    setTimeout(() => socket.destroy(), REFUSAL_GRACE_MS).unref();
    socket.end(frame);
  };
}

/**
 * Takes `<socket>.lock`. Holding it means the socket path is ours: whatever socket file is
 * there was left by an agent that died, and is removed. On release the socket goes first.
 */
function claimSocketPath(socketPath: string): { release(): void } {
  const lockPath = `${socketPath}.lock`;
  const fd = tryExclusiveLock(lockPath);
  if (fd === "busy") {
    throw new PaddockError("E_SOCKET", `another agent is already listening on ${socketPath}`, "stop it, or connect to it with paddock --socket");
  }
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    // nothing there
  }
  if (st && !st.isSocket()) {
    fs.closeSync(fd);
    throw new PaddockError("E_SOCKET", `${socketPath} exists and is not a socket`, "remove it or choose another --socket path");
  }
  if (st) fs.unlinkSync(socketPath);
  return {
    release() {
      try {
        fs.unlinkSync(socketPath);
      } catch {
        // already gone
      }
      fs.closeSync(fd);
    },
  };
}

/**
 * The socket's directory: created for the agent if missing; an existing one must already be
 * private (the agent never loosens or re-owns a directory it did not make).
 */
function prepareSocketDir(dir: string, gid: number | undefined): void {
  const uid = process.getuid?.() ?? 0;
  const wantedMode = gid === undefined ? 0o700 : 0o750;
  let created = false;
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true, mode: wantedMode });
    created = true;
  }
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) {
    throw new PaddockError("E_SOCKET", `${dir} is not a directory`, "put the socket in a directory of its own");
  }
  if (st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new PaddockError(
      "E_SOCKET",
      `socket directory ${dir} can be written by others (owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8)})`,
      "put the socket in a directory that only the agent's user can write, e.g. /run/paddock",
    );
  }
  if (gid === undefined) return;
  if (created) {
    fs.chownSync(dir, -1, gid);
    fs.chmodSync(dir, wantedMode);
  } else if (st.gid !== gid || (st.mode & 0o007) !== 0) {
    throw new PaddockError(
      "E_SOCKET",
      `socket directory ${dir} is not reserved for group ${gid} (group ${st.gid}, mode ${(st.mode & 0o7777).toString(8)})`,
      "with --socket-group, let the agent create the socket's directory (give a --socket path in a new directory)",
    );
  }
}

function resolveGroup(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = fs
    .readFileSync("/etc/group", "utf8")
    .split("\n")
    .find((l) => l.split(":")[0] === group);
  const gid = line?.split(":")[2];
  if (gid === undefined) {
    throw new PaddockError("E_SOCKET", `group ${group} does not exist`, `create it (groupadd ${group}) and add the users who may use Paddock`);
  }
  return Number(gid);
}
