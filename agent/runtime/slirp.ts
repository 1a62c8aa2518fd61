/**
 * User-mode NAT for a network namespace with slirp4netns: a `tap0` (10.0.2.100/24, gateway
 * 10.0.2.2, DNS forwarder 10.0.2.3) whose traffic leaves through the agent's sockets. The
 * host's loopback is not reachable through it (--disable-host-loopback), and slirp4netns runs
 * in its own sandbox and seccomp filter and dies with the agent.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { PaddockError, type ErrorCode } from "../../protocol/errors";
import { lastMessage } from "../log/logfmt";
import { DEFAULT_PATH } from "../sys/default-path";
import { NOT_INSTALLED_EXIT, dieWithAgent } from "../process/die-with-agent";

/** slirp4netns's DNS forwarder, from inside the namespace. */
export const SLIRP_DNS = "10.0.2.3";
const READY_TIMEOUT_MS = 10_000;

/** Where the namespace is: a process in it, or a file a namespace is bound on. */
export type NetnsTarget = { pid: number } | { path: string };

/** Starts slirp4netns on `target` and resolves once its tap device is configured. */
export async function startSlirp(target: NetnsTarget, what: string, code: ErrorCode): Promise<ChildProcess> {
  const where = "pid" in target ? [String(target.pid)] : ["--netns-type=path", target.path];
  const args = ["--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp", "--ready-fd=3", ...where, "tap0"];
  const slirp = spawn(...dieWithAgent("slirp4netns", args), { stdio: ["ignore", "ignore", "pipe", "pipe"], env: { PATH: DEFAULT_PATH } });
  await new Promise<void>((resolve, reject) => {
    let stderr = "";
    const fail = (why: string) => {
      clearTimeout(timer);
      slirp.kill("SIGKILL");
      reject(new PaddockError(code, `cannot give the ${what} a network: slirp4netns ${why}`, "install slirp4netns (apt-get install slirp4netns), or create the sandbox with network none"));
    };
    const timer = setTimeout(() => fail(`did not get ready in ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
    slirp.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString("utf8")).slice(-4096)));
    (slirp.stdio[3] as NodeJS.ReadableStream).once("data", () => {
      clearTimeout(timer);
      resolve();
    });
    slirp.once("exit", (exitCode) => fail(lastMessage(stderr) || (exitCode === NOT_INSTALLED_EXIT ? "is not installed" : `exited with code ${exitCode}`)));
    slirp.once("error", (err) => fail(err.message));
  });
  slirp.removeAllListeners("exit");
  // Its later words are not read: a long-lived helper must not grow the agent's memory.
  slirp.stderr!.removeAllListeners("data");
  slirp.stderr!.resume();
  return slirp;
}
