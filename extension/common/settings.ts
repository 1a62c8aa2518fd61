/** The extension's settings, read in one place with their defaults (see package.json). */
import * as vscode from "vscode";
import type { NetworkMode, RuntimeKind } from "../../protocol/methods";

export interface Settings {
  /** "user": our own agent, rootless; "root": our own agent through rootCommand; "socket": an agent already running. */
  agentMode: "user" | "root" | "socket";
  rootCommand: string[];
  socketPath: string;
  stateDir: string;
  logLevel: string;
  /** The OCI runtime for the agent Paddock starts: "auto" is the one its checks found working. */
  ociRuntime: "auto" | "runc" | "crun";
  defaultRuntime: RuntimeKind;
  network: NetworkMode;
  /** The image offered first for container sandboxes ("" : the default image). */
  image: string;
  /** Limits of new sandboxes; 0 is Paddock's default (the agent's, see agent/runtime/limits.ts). */
  memoryMiB: number;
  pids: number;
  cpus: number;
  tmpMiB: number;
  confirmReject: boolean;
  /** Whether sandboxes' changes count in Source Control's activity bar badge. */
  countInSourceControlBadge: boolean;
}

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration("paddock");
  return {
    agentMode: c.get<Settings["agentMode"]>("agent.mode", "user"),
    rootCommand: c.get<string[]>("agent.rootCommand", ["sudo", "-n"]),
    socketPath: c.get<string>("agent.socketPath", ""),
    stateDir: c.get<string>("agent.stateDir", ""),
    logLevel: c.get<string>("agent.logLevel", "info"),
    ociRuntime: c.get<Settings["ociRuntime"]>("agent.ociRuntime", "auto"),
    defaultRuntime: c.get<RuntimeKind>("sandbox.defaultRuntime", "process"),
    network: c.get<NetworkMode>("sandbox.network", "none"),
    image: c.get<string>("sandbox.image", ""),
    memoryMiB: c.get<number>("sandbox.memoryMiB", 0),
    pids: c.get<number>("sandbox.pids", 0),
    cpus: c.get<number>("sandbox.cpus", 0),
    tmpMiB: c.get<number>("sandbox.tmpMiB", 0),
    confirmReject: c.get<boolean>("review.confirmReject", true),
    countInSourceControlBadge: c.get<boolean>("review.countInSourceControlBadge", true),
  };
}
