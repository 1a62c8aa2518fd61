/** Workspaces and sandboxes for the review tests: a rich tree, edits of every kind, and waiting for bases. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AgentClient } from "../../protocol/client";
import { waitFor, type Fixture } from "./sandbox-fixture";

/** Every kind of edit a command makes, for richWorkspace's tree. */
export const EDITS = [
  "printf 'one\\nTWO\\n' > edit.txt",
  "echo new > created.txt",
  "rm gone.txt",
  "mv tree/a.txt tree/renamed.txt",
  "mv tree/sub moved-sub",
  "rm -rf redo && mkdir redo && echo new > redo/new.txt && echo kept > redo/kept.txt",
  "chmod 755 chmod.sh",
  "ln -sfn edit.txt link",
  "ln -s nowhere dangling",
  "printf '\\000\\001binary' > bin.dat",
  ": > empty",
  "printf 'no newline at the end soon' > nl.txt",
  "mkdir -p 'with space/ü' && echo x > 'with space/ü/naïve file.txt'",
  "rm typechange && mkdir typechange && echo in > typechange/f",
  "rm -rf dir2file && echo now-a-file > dir2file",
  "echo more > ro/more.txt && chmod 555 ro",
  "ln created.txt hardlink.txt",
].join(" && ");

export function reviewFixture(shared: { readonly fx: Fixture; readonly client: AgentClient }) {
  function workspace(name: string, files: Record<string, string> = {}): string {
    const ws = path.join(shared.fx.base, name);
    fs.mkdirSync(ws, { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(ws, rel)), { recursive: true });
      fs.writeFileSync(path.join(ws, rel), content, { mode: 0o644 });
    }
    return ws;
  }

  /** The differential workspace: something for every kind of edit to act on. */
  function richWorkspace(name: string): string {
    const ws = workspace(name, {
      "keep.txt": "unchanged\n",
      "edit.txt": "one\ntwo\n",
      "gone.txt": "bye\n",
      "chmod.sh": "#!/bin/sh\n",
      "nl.txt": "no newline at the end soon\n",
      "tree/a.txt": "a\n",
      "tree/sub/b.txt": "b\n",
      "redo/old.txt": "old\n",
      "redo/kept.txt": "kept\n",
      "typechange": "a file, for now\n",
      "dir2file/x.txt": "x\n",
      "ro/inside.txt": "inside\n",
    });
    fs.symlinkSync("keep.txt", path.join(ws, "link"));
    return ws;
  }

  async function sandboxWith(ws: string, script: string): Promise<string> {
    const { id } = await shared.client.request("sandbox/create", { workspace: ws });
    const run = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", script] });
    assert.equal(run.exitCode, 0, run.stderr);
    return id;
  }

  /** Bases are captured by the watcher, shortly after a path first changes in the sandbox. */
  function waitForBases(id: string, paths: string[]): Promise<true> {
    const file = path.join(shared.fx.stateDir, "sandboxes", id, "bases.json");
    const captured = () => {
      try {
        return Object.keys((JSON.parse(fs.readFileSync(file, "utf8")) as { bases: object }).bases);
      } catch {
        return [];
      }
    };
    return waitFor("bases to be captured", () => (paths.every((p) => captured().includes(p)) ? true : undefined));
  }

  return { workspace, richWorkspace, sandboxWith, waitForBases };
}
