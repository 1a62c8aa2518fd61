/**
 * The agent's Unix socket: in a directory only its owner can write, mode 0600 (0660 with a
 * group), and every connection's peer identified by SO_PEERCRED, never by what it claims.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { PaddockError } from "../protocol/errors";
import { peerCredentials } from "../sys/libc";
import type { Caller } from "./session";

export interface SocketServerOptions {
  socketPath: string;
  /** Group (name or gid) allowed to connect; the socket is then 0660 and its directory 0750. */
  group?: string;
  onConnection: (socket: net.Socket, caller: Caller) => void;
  onRefused?: (reason: string) => void;
}

export interface SocketServer {
  close(): Promise<void>;
}

export async function listenOnSocket(options: SocketServerOptions): Promise<SocketServer> {
  const socketPath = path.resolve(options.socketPath);
  const gid = options.group === undefined ? undefined : resolveGroup(options.group);
  const dir = path.dirname(socketPath);
  prepareSocketDir(dir, gid);
  await removeStaleSocket(socketPath);

  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
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
    socket.resume();
    options.onConnection(socket, caller);
  });

  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(socketPath, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    throw new PaddockError("E_SOCKET", `cannot listen on ${socketPath}: ${(err as Error).message}`, "check the path and its directory's permissions");
  } finally {
    process.umask(oldMask);
  }
  if (gid !== undefined) {
    fs.chownSync(socketPath, -1, gid);
    fs.chmodSync(socketPath, 0o660);
  } else {
    fs.chmodSync(socketPath, 0o600);
  }

  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for every client to hang up; an agent that stops does not.
        for (const socket of sockets) socket.destroy();
        try {
          fs.unlinkSync(socketPath);
        } catch {
          // already gone
        }
      }),
  };
}

function prepareSocketDir(dir: string, gid: number | undefined): void {
  const uid = process.getuid?.() ?? 0;
  if (!fs.existsSync(dir)) fs.mkdirSync(dir, { recursive: true, mode: gid === undefined ? 0o700 : 0o750 });
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
  if (gid !== undefined) {
    fs.chownSync(dir, -1, gid);
    fs.chmodSync(dir, 0o750);
  }
}

/** A socket file left by a dead agent is removed; a live one is never stolen. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new PaddockError("E_SOCKET", `${socketPath} exists and is not a socket`, "remove it or choose another --socket path");
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (alive) {
    throw new PaddockError("E_SOCKET", `another agent is already listening on ${socketPath}`, "stop it, or connect to it with paddock --socket");
  }
  fs.unlinkSync(socketPath);
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
