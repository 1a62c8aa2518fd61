/** Runs a command under bubblewrap the way the process runtime will: every namespace unshared, host root read-only. */
import { describeFailure, runProbe } from "../run-probe";
import type { ProbeContext, ProbeVerdict } from "./context";

export async function checkBwrap(_ctx: ProbeContext): Promise<ProbeVerdict> {
  const args = [
    "--ro-bind", "/", "/",
    "--dev", "/dev",
    "--proc", "/proc",
    "--tmpfs", "/tmp",
    "--unshare-all",
    "--die-with-parent",
    "--new-session",
    "--", "/bin/sh", "-c", "test ! -w /usr && touch /tmp/x && echo paddock-bwrap-ok",
  ];
  const out = await runProbe("bwrap", args, { timeoutMs: 10_000 });
  if (out.stdout.includes("paddock-bwrap-ok")) {
    return { ok: true, detail: `ran a shell in bubblewrap with all namespaces unshared and / read-only (${out.durationMs} ms)` };
  }
  return { ok: false, detail: describeFailure(out, "bwrap"), hint: "install bubblewrap (apt-get install bubblewrap); rootless needs unprivileged user namespaces" };
}
