/**
 * What a person needs from the last line a Go tool (runc, skopeo) printed: its logfmt
 * `msg="..."` when it has one, else the line itself.
 */
export function lastMessage(text: string | undefined): string {
  const line = (text ?? "").trim().split("\n").pop() ?? "";
  return /msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1]?.replace(/\\"/g, '"') ?? line;
}

/** Why a helper program failed: what it said last, else why it could not run, else its exit code. */
export function whyItFailed(result: { stderr?: string | null; error?: Error; status: number | null }): string {
  return lastMessage(result.stderr ?? "") || result.error?.message || `exit code ${result.status}`;
}
