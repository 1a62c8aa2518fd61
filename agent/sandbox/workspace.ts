/**
 * Which directories may be a sandbox's workspace, checked on an open descriptor so that the
 * directory checked is the directory mounted.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import type { Caller } from "../session";
import { withUserRights } from "../sys/credentials";
import { userRights } from "../sys/users";

export interface OpenWorkspace {
  /** The resolved absolute path. */
  path: string;
  fd: number;
  /** "dev:ino" of the directory. */
  id: string;
  close(): void;
}

const SYSTEM_TREES = ["/proc", "/sys", "/dev", "/run"];

function refuse(message: string, hint: string): never {
  throw new PaddockError("E_INVALID_WORKSPACE", message, hint);
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * Opens a workspace for `caller`. The path is resolved and opened with the caller's rights:
 * a folder they cannot reach in a shell is refused, and nothing is said of what lies behind it.
 */
export function openWorkspace(requested: string, caller: Caller, stateDir: string): OpenWorkspace {
  if (!path.isAbsolute(requested)) refuse(`workspace ${JSON.stringify(requested)} is not an absolute path`, "pass the workspace folder's full path");
  const agentUid = process.getuid?.() ?? 0;
  if (agentUid !== 0 && caller.uid !== agentUid) {
    throw new PaddockError("E_PERMISSION_DENIED", `this agent runs as uid ${agentUid} without root: it makes sandboxes for its own user only, not for uid ${caller.uid}`, "start an agent of your own (paddock agent), or ask for a root agent with --socket-group");
  }
  const rights = caller.uid === 0 ? undefined : userRights(caller.uid);
  if (caller.uid !== 0 && !rights) throw new PaddockError("E_PERMISSION_DENIED", `uid ${caller.uid} is not a known user`, "sandboxes run as their owner, who must exist in the user database");
  return withUserRights(rights, () => openWithRights(requested, caller, stateDir));
}

function openWithRights(requested: string, caller: Caller, stateDir: string): OpenWorkspace {
  let real: string;
  try {
    real = fs.realpathSync(requested);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EACCES") refuse(`workspace ${requested} cannot be reached: permission denied`, "sandbox a folder you can open in a shell");
    refuse(`workspace ${requested} does not exist`, "create the folder first, or check the path");
  }
  const st = fs.statSync(real);
  if (!st.isDirectory()) refuse(`workspace ${requested} is a file, not a directory`, "pass the folder that contains your project");
  if (real === "/") refuse("the root directory cannot be a workspace", "pass a project folder");
  for (const tree of SYSTEM_TREES) {
    if (isInside(real, tree)) refuse(`workspace ${real} is inside ${tree}`, "pass a project folder");
  }
  const state = path.resolve(stateDir);
  if (isInside(real, state)) {
    refuse(`workspace ${real} is inside Paddock's state dir (a sandbox's private files)`, "pass the real project folder, not a sandbox's directory");
  }
  if (isInside(state, real)) refuse(`workspace ${real} contains Paddock's state dir ${state}`, "pass a folder that does not contain the state dir");
  if (caller.uid !== 0 && st.uid !== caller.uid) {
    refuse(`workspace ${real} belongs to uid ${st.uid}, not to you (uid ${caller.uid})`, "sandbox a folder you own");
  }
  const fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const opened = fs.fstatSync(fd);
  if (opened.ino !== st.ino || opened.dev !== st.dev) {
    fs.closeSync(fd);
    refuse(`workspace ${real} changed while it was being checked`, "try again");
  }
  return { path: real, fd, id: `${opened.dev}:${opened.ino}`, close: () => fs.closeSync(fd) };
}
