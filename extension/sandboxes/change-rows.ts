/**
 * A sandbox's changes as a person reads them: one row per path. A type change (deleted +
 * added) reads as modified; folders show only for a mode change, or with a note (a tree too
 * deep to list, held back from approve). Pure; Source Control and the Paddock view both use it.
 */
import type { Change } from "../../protocol/methods";

export interface ChangeRow {
  path: string;
  kind: Change["kind"];
  note?: string;
}

export function changeRows(changes: readonly Change[]): ChangeRow[] {
  const rows = new Map<string, ChangeRow>();
  for (const change of changes) {
    if (change.type === "directory" && change.kind !== "modified" && !change.note) continue;
    const known = rows.get(change.path);
    rows.set(change.path, { path: change.path, kind: known ? "modified" : change.kind, ...((change.note ?? known?.note) ? { note: change.note ?? known?.note } : {}) });
  }
  return [...rows.values()];
}
