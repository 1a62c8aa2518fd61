/**
 * What a person needs from the last line a Go tool (runc, skopeo) printed: its logfmt
 * `msg="..."` when it has one, else the line itself.
 */
export function lastMessage(text: string | undefined): string {
  const line = (text ?? "").trim().split("\n").pop() ?? "";
  return /msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1]?.replace(/\\"/g, '"') ?? line;
}
