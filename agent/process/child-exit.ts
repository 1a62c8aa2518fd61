/**
 * When a child has exited, its output may still be in the pipes; but a grandchild that
 * escaped its tree (e.g. bwrap killed in the instant before it armed --die-with-parent) can
 * hold them open forever. So: the exit, then the pipes' end, or a short grace, whichever
 * comes first; then the pipes are closed from our side.
 */
import type { ChildProcess } from "node:child_process";

const PIPE_GRACE_MS = 500;

export function exitAndDrain(child: ChildProcess): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    child.once("exit", (exitCode, signal) => {
      const streams = [child.stdout, child.stderr].filter((s) => s !== null && !s.readableEnded);
      let open = streams.length;
      const done = () => {
        clearTimeout(timer);
        for (const s of streams) s?.destroy();
        resolve({ exitCode, signal });
      };
      const timer = setTimeout(done, PIPE_GRACE_MS);
      if (open === 0) return done();
      for (const s of streams) s?.once("close", () => --open === 0 && done());
    });
  });
}
