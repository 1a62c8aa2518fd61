/** Hunks of one file, chosen by selectors: the text that results, or a clear refusal. */
import { PaddockError } from "../../protocol/errors";
import { asText } from "./entries";
import { applyLineChanges, computeLineChanges, selectLineChanges, splitLines, type LineChange } from "./line-changes";

/**
 * The workspace's text with the selected changes applied (`keep: "selected"`, approve), or the
 * sandbox's text with them taken out (`keep: "others"`, reject).
 */
export function withHunks(rel: string, workspace: Buffer | undefined, sandbox: Buffer | undefined, ranges: readonly LineChange[], keep: "selected" | "others"): Buffer {
  const oldText = workspace && asText(workspace);
  const newText = sandbox && asText(sandbox);
  if (oldText === undefined || newText === undefined) {
    throw new PaddockError("E_UNSUPPORTED_CHANGE", `${rel} is not a text file on both sides: it is approved or rejected whole`, "leave out its hunks and name the path instead", { path: rel });
  }
  const oldLines = splitLines(oldText);
  const newLines = splitLines(newText);
  const changes = computeLineChanges(oldLines, newLines);
  const { selected, unmatched } = selectLineChanges(changes, ranges, { old: oldLines.length, new: newLines.length });
  if (unmatched.length > 0) {
    throw new PaddockError("E_HUNK_MISMATCH", `${unmatched.length} selected hunk(s) of ${rel} match no change: the file changed since its diff was taken, or the range is not one of its hunks`, "take the diff again (sandbox/diff) and select from it", { path: rel });
  }
  return Buffer.from(applyLineChanges(oldLines, newLines, changes, (_c, i) => selected.has(i) === (keep === "selected")));
}
