/** `paddock check`: the results as a table, and an exit code scripts can rely on. */
import type { RuntimeKind, SystemCheckResult } from "../../protocol/methods";
import { renderTable } from "./table";

/** Prints the results; returns 0 when the default runtime can run, 1 when it cannot. */
export function printCheck(result: SystemCheckResult, json: boolean): number {
  const ready = result.runtimes[result.defaultRuntime].available;
  if (json) {
    console.log(JSON.stringify(result, null, 2));
    return ready ? 0 : 1;
  }
  const rows = result.checks.map((c) => [c.name, c.ok ? "ok" : "FAIL", `${c.durationMs} ms`, c.detail]);
  const lines = renderTable(["CHECK", "RESULT", "TIME", "DETAIL"], rows).split("\n");
  const detailColumn = (lines[0] ?? "").indexOf("DETAIL");
  console.log(lines[0]);
  result.checks.forEach((c, i) => {
    console.log(lines[i + 1]);
    if (!c.ok && c.hint) console.log(`${" ".repeat(detailColumn)}→ ${c.hint}`);
  });
  console.log("");
  const runtimes = (Object.keys(result.runtimes) as RuntimeKind[]).map((kind) => {
    const r = result.runtimes[kind];
    return r.available ? `${kind}: yes${r.using ? ` (${r.using})` : ""}` : `${kind}: no (${r.reason ?? `needs ${r.missing.join(", ")}`})`;
  });
  console.log(`Runtimes  ${runtimes.join("   ")}`);
  for (const kind of Object.keys(result.runtimes) as RuntimeKind[]) {
    const r = result.runtimes[kind];
    if (!r.available && r.hint) console.log(`          → ${kind}: ${r.hint}`);
  }
  console.log(result.cached ? `Cached from ${result.checkedAt} (this boot); --refresh runs the probes again.` : `Checked at ${result.checkedAt}.`);
  if (!ready) console.log(`\nThe default runtime (${result.defaultRuntime}) cannot run on this machine: see the failures above.`);
  return ready ? 0 : 1;
}
