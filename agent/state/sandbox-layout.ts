/**
 * A sandbox's folder in the state dir, STATE_DIR/sandboxes/ID: the one place that knows what
 * lies where in it. Everything else asks here.
 */
import * as path from "node:path";

export interface SandboxPaths {
  dir: string;
  record: string;
  upper: string;
  work: string;
  merged: string;
  /** An approve in progress (see review/approve.ts). */
  journal: string;
  /** What each changed path was before the sandbox changed it (see review/bases.ts). */
  bases: string;
  /** What approves and rejects changed, to undo them (see review/undo-record.ts). */
  undo: string;
  /** Container sandboxes: the container's root (image layers + its own upper) and bundle. */
  container: { upper: string; work: string; rootfs: string; bundle: string };
  /** VM sandboxes: the VM's initrd, its console log and its share's hub. */
  vm: string;
}

export const RECORD_FILE = "record.json";

/**
 * The agent's own folders beside the sandboxes start with a dot (no sandbox id does): the VM
 * warm pool's, whose mounts commands never see, as a sandbox's.
 */
export function isAgentFolder(name: string): boolean {
  return name.startsWith(".");
}

export function vmPoolDir(sandboxesRoot: string): string {
  return path.join(sandboxesRoot, ".vm-pool");
}

export function sandboxPaths(sandboxesRoot: string, id: string): SandboxPaths {
  const dir = path.join(sandboxesRoot, id);
  return {
    dir,
    record: path.join(dir, RECORD_FILE),
    upper: path.join(dir, "upper"),
    work: path.join(dir, "work"),
    merged: path.join(dir, "merged"),
    journal: path.join(dir, "approve-journal.json"),
    bases: path.join(dir, "bases.json"),
    undo: path.join(dir, "undo"),
    container: {
      upper: path.join(dir, "root-upper"),
      work: path.join(dir, "root-work"),
      rootfs: path.join(dir, "rootfs"),
      bundle: path.join(dir, "bundle"),
    },
    vm: path.join(dir, "vm"),
  };
}
