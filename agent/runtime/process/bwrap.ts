/**
 * The process runtime's command line: what runs a program in a sandbox with bubblewrap.
 * Pure functions: what to run is decided here, running it is the process module's job.
 *
 * The program sees the host's root read-only, the sandbox's merged view read-write at the
 * workspace's own path, private /tmp, /proc and /dev, every namespace unshared (the network
 * too unless `host` was asked for), and only the environment it was given plus defaults.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PaddockError } from "../../../protocol/errors";
import { DEFAULT_PATH } from "../../sys/default-path";
import { MiB, SMALL_TMPFS_MIB } from "../limits";
import { sandboxEnv, type LaunchSpec } from "../launch-spec";

/** paddock-enter's exit code when it could not enter the sandbox (it then ran nothing). */
export const ENTER_FAILED = 125;

/** The absolute path of a program on the default PATH (paddock-enter runs programs by absolute path only). */
export function findProgram(name: string): string {
  for (const dir of DEFAULT_PATH.split(":")) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new PaddockError("E_RUNTIME_UNAVAILABLE", `${name} is not installed`, `install it (apt-get install ${name === "bwrap" ? "bubblewrap" : name}); paddock check tells what works`);
}

/** The working directory inside the sandbox: the workspace root by default, relative paths from there. */
export function sandboxCwd(workspace: string, cwd: string | undefined): string {
  if (cwd === undefined) return workspace;
  return path.resolve(workspace, cwd);
}

/** bwrap's options; `view` is where bwrap finds the sandbox's merged view. */
export function bwrapArgs(spec: LaunchSpec, view: string): string[] {
  const size = (mib: number) => ["--size", String(mib * MiB)];
  // Every tmpfs the program can write has a size: unsized, each could take half the host's memory.
  const args = [
    "--ro-bind", "/", "/",
    "--dev", "/dev",
    ...size(SMALL_TMPFS_MIB), "--tmpfs", "/dev/shm",
    // bwrap's /dev is a tmpfs (it cannot be given a size) that the program's user owns.
    "--remount-ro", "/dev",
    "--proc", "/proc",
    ...(spec.tmpMiB !== undefined ? size(spec.tmpMiB) : []), "--tmpfs", "/tmp",
    // The host's sockets (D-Bus, docker.sock, /run/user/UID/...) live here: none of them inside.
    ...size(SMALL_TMPFS_MIB), "--tmpfs", "/run",
    // After /tmp, so a workspace under /tmp is bound on top of the fresh tmpfs.
    "--bind", view, spec.workspace,
    "--unshare-all",
    ...(spec.network === "host" ? ["--share-net"] : []),
    "--hostname", "paddock",
    "--die-with-parent",
    "--chdir", sandboxCwd(spec.workspace, spec.cwd),
    "--clearenv",
  ];
  // A terminal's program needs the terminal as its controlling tty; a new session would take it away.
  if (!spec.pty) args.push("--new-session");
  for (const [name, value] of Object.entries(sandboxEnv(spec))) args.push("--setenv", name, value);
  args.push("--", ...spec.argv);
  return args;
}
