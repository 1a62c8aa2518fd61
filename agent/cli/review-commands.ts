/** `paddock changes | diff | approve | reject | undo`: reviewing a sandbox from the command line. */
import * as path from "node:path";
import { PaddockError } from "../../protocol/errors";
import type { AgentClient } from "../../protocol/client";
import type { Skipped, UndoOffer } from "../../protocol/methods";
import { colourEnabled, paint, print } from "./output";

export interface ReviewCommandOptions {
  json: boolean;
  force?: boolean;
  list?: boolean;
  context?: string;
}

function needId(command: string, id: string | undefined): string {
  if (!id) throw new PaddockError("E_INVALID_PARAMS", `paddock ${command} needs a sandbox id`, "paddock ls lists them");
  return id;
}

/**
 * Paths as the user typed them, relative to where they stand, made relative to the sandbox's
 * workspace (which is where they usually stand anyway).
 */
async function workspacePaths(client: AgentClient, id: string, typed: string[]): Promise<string[] | undefined> {
  if (typed.length === 0) return undefined;
  const { workspace } = await client.request("sandbox/get", { id });
  return typed.map((p) => {
    const rel = path.relative(workspace, path.resolve(p));
    if (rel === "" || rel.startsWith("..") || path.isAbsolute(rel)) {
      throw new PaddockError("E_INVALID_PARAMS", `${p} is not inside the sandbox's workspace ${workspace}`, "name files and folders of the workspace");
    }
    return rel.split(path.sep).join("/");
  });
}

export async function changesCommand(client: AgentClient, id: string | undefined, o: ReviewCommandOptions): Promise<number> {
  const { changes } = await client.request("sandbox/changes", { id: needId("changes", id) });
  const letter = { added: "A", modified: "M", deleted: "D" } as const;
  print(o.json, { changes }, () =>
    changes.length === 0
      ? "No changes."
      : changes.map((c) => `${letter[c.kind]}  ${c.path}${c.type === "directory" ? "/" : c.type === "symlink" ? " (symlink)" : c.binary ? " (binary)" : ""}${c.note ? `\n   ${c.note}` : ""}`).join("\n"),
  );
  return 0;
}

export async function diffCommand(client: AgentClient, id: string | undefined, typed: string[], o: ReviewCommandOptions): Promise<number> {
  const sandbox = needId("diff", id);
  const context = o.context === undefined ? undefined : Number(o.context);
  if (context !== undefined && !(Number.isInteger(context) && context >= 0)) throw new PaddockError("E_INVALID_PARAMS", `--context ${o.context} is not a number of lines`, "e.g. --context 5");
  const paths = await workspacePaths(client, sandbox, typed);
  const result = await client.request("sandbox/diff", { id: sandbox, ...(paths ? { paths } : {}), ...(context !== undefined ? { context } : {}) });
  if (o.json) {
    print(true, result, () => "");
    return 0;
  }
  const colour = colourEnabled(process.stdout);
  const painted = result.patch.split(/(?<=\n)/).map((line) => {
    if (/^(diff --git|--- |\+\+\+ |new file|deleted file|old mode|new mode)/.test(line)) return paint(colour, "bold", line.trimEnd()) + "\n";
    if (line.startsWith("@@")) return paint(colour, "cyan", line.trimEnd()) + "\n";
    if (line.startsWith("+")) return paint(colour, "green", line.slice(0, -1)) + line.slice(-1);
    if (line.startsWith("-")) return paint(colour, "red", line.slice(0, -1)) + line.slice(-1);
    return line;
  });
  process.stdout.write(painted.join(""));
  return 0;
}

export async function approveCommand(client: AgentClient, id: string | undefined, typed: string[], o: ReviewCommandOptions): Promise<number> {
  const sandbox = needId("approve", id);
  const paths = await workspacePaths(client, sandbox, typed);
  const result = await client.request("sandbox/approve", { id: sandbox, ...(paths ? { paths } : {}), ...(o.force ? { force: true } : {}) });
  print(o.json, result, () =>
    [
      result.applied.length === 0 ? "Nothing applied." : `Applied ${result.applied.length}:\n${result.applied.map((p) => `  ${p}${result.merged.includes(p) ? " (merged with the workspace's own edits)" : ""}`).join("\n")}`,
      ...(result.conflicts.length === 0
        ? []
        : [`Conflicts (the workspace changed too; nothing was overwritten; --force to apply anyway):\n${result.conflicts.map((c) => `  ${c.path}: ${c.reason}${c.merged !== undefined ? " (merges cleanly)" : ""}`).join("\n")}`]),
      ...skippedLines(result.skipped),
      ...undoLines(sandbox, result),
    ].join("\n"),
  );
  // Scripts must notice what was not applied.
  return result.conflicts.length > 0 ? 1 : 0;
}

export async function rejectCommand(client: AgentClient, id: string | undefined, typed: string[], o: ReviewCommandOptions): Promise<number> {
  const sandbox = needId("reject", id);
  const paths = await workspacePaths(client, sandbox, typed);
  const result = await client.request("sandbox/reject", { id: sandbox, ...(paths ? { paths } : {}) });
  print(o.json, result, () =>
    [
      result.rejected.length === 0 ? "Nothing rejected." : `Rejected ${result.rejected.length} (the sandbox has the workspace's version again):\n${result.rejected.map((p) => `  ${p}`).join("\n")}`,
      ...skippedLines(result.skipped),
      ...undoLines(sandbox, result),
    ].join("\n"),
  );
  return 0;
}

export async function undoCommand(client: AgentClient, id: string | undefined, rest: string[], o: ReviewCommandOptions): Promise<number> {
  const sandbox = needId("undo", id);
  if (o.list) {
    const { undo } = await client.request("sandbox/undoList", { id: sandbox });
    print(o.json, { undo }, () =>
      undo.length === 0 ? "Nothing to undo." : undo.map((u) => `${u.undo}  ${u.at}  ${u.kind === "approve" ? "approved" : "rejected"} ${u.count}: ${u.paths.slice(0, 5).join(", ")}${u.count > 5 ? ", ..." : ""}`).join("\n"),
    );
    return 0;
  }
  if (rest.length > 1) throw new PaddockError("E_INVALID_PARAMS", "paddock undo takes one undo id", `paddock undo ${sandbox} --list lists them`);
  const result = await client.request("sandbox/undo", { id: sandbox, ...(rest[0] !== undefined ? { undo: rest[0] } : {}) });
  print(o.json, result, () =>
    [
      `Undid the ${result.kind} of ${result.restored.length}${result.kind === "approve" ? " (the workspace has its own version again; the sandbox's changes are changes again)" : " (the sandbox has its changes again)"}:\n${result.restored.map((p) => `  ${p}`).join("\n")}`,
      ...skippedLines(result.skipped),
    ].join("\n"),
  );
  return result.skipped.length > 0 ? 1 : 0;
}

function skippedLines(skipped: readonly Skipped[]): string[] {
  return skipped.length === 0 ? [] : [`Skipped:\n${skipped.map((s) => `  ${s.path}: ${s.reason}`).join("\n")}`];
}

function undoLines(sandbox: string, result: UndoOffer): string[] {
  if (result.undo !== undefined) return [`Undo with: paddock undo ${sandbox} ${result.undo}`];
  return result.undoUnavailable !== undefined ? [`This cannot be undone: ${result.undoUnavailable}`] : [];
}
