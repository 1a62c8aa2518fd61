/**
 * What a command in a sandbox is: the program, where, with what environment, as whom, and in
 * which sandbox. Every runtime starts from this; how it runs the command is the runtime's.
 */
import * as path from "node:path";
import type { NetworkMode } from "../../protocol/methods";
import { DEFAULT_PATH } from "../sys/default-path";

export interface LaunchSpec {
  sandboxId: string;
  /** The sandbox's merged overlay on the host. */
  merged: string;
  workspace: string;
  /** "dev:ino" of the workspace directory checked at creation. */
  workspaceId: string;
  network: NetworkMode;
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
  pty: boolean;
  /** The terminal's first size (a VM's guest agent opens the terminal itself). */
  ptySize?: { cols: number; rows: number };
  /** The caller's identity: the program runs as this user. */
  uid: number;
  gid: number;
  /** cgroup.procs files the program joins before anything else runs. */
  cgroupProcs: string[];
  /** The size of /tmp (a sandbox made before /tmp had one: none, as then). */
  tmpMiB?: number;
}

/** Where a container or a VM sees the workspace. */
export const WORKSPACE_IN_GUEST = "/workspace";

export function sandboxEnv(spec: Pick<LaunchSpec, "sandboxId" | "env" | "pty">): Record<string, string> {
  return {
    PATH: DEFAULT_PATH,
    HOME: "/tmp",
    TERM: spec.pty ? "xterm-256color" : "dumb",
    LANG: "C.UTF-8",
    PADDOCK_SANDBOX: spec.sandboxId,
    ...spec.env,
  };
}

/** The working directory inside a container or a VM: /workspace by default, relative paths from there. */
export function guestCwd(cwd: string | undefined): string {
  return cwd === undefined ? WORKSPACE_IN_GUEST : path.posix.resolve(WORKSPACE_IN_GUEST, cwd);
}
