/**
 * The `paddock:` URIs. As git: URIs do, one has the workspace file's own path and names the
 * sandbox in its query: `paddock:/home/me/app/src/a.ts?sandbox=sbx-0123456789ab` is that file
 * as the sandbox sees it (served by fs/sandbox-file-system.ts), so editors, breadcrumbs and
 * the multi-file diff show the file's real path. `&empty` is an empty file (the missing side
 * of an added or deleted file's diff), `&readonly` the sandbox's side of a review diff, which
 * changes only through Approve and Reject. Pure: no vscode import, so unit tests run it.
 */
export const SCHEME = "paddock";

const SANDBOX_ID = /^sbx-[0-9a-f]{12}$/;

/**
 * `empty`: the missing side of an added or deleted file; `readonly`: the sandbox's side of a
 * review diff (no edit, no revert arrows); `base`: what the sandbox started from, the left side
 * of a diff where the workspace's file changed too (the agent's `againstBase`), read-only.
 */
export interface SandboxUriFlags {
  empty?: boolean;
  readonly?: boolean;
  base?: boolean;
}

export function sandboxQuery(id: string, flags: SandboxUriFlags = {}): string {
  return `sandbox=${id}${flags.empty ? "&empty" : ""}${flags.readonly ? "&readonly" : ""}${flags.base ? "&base" : ""}`;
}

/** The sandbox a `paddock:` URI's query names, or undefined. */
export function parseSandboxQuery(query: string): { id: string; empty: boolean; readonly: boolean; base: boolean } | undefined {
  const params = new URLSearchParams(query);
  const id = params.get("sandbox");
  return id && SANDBOX_ID.test(id) ? { id, empty: params.has("empty"), readonly: params.has("readonly") || params.has("base"), base: params.has("base") } : undefined;
}

/**
 * A file's path relative to a workspace root, with `/` separators; "" for the root itself;
 * undefined when outside it (or when it has "." or ".." parts).
 */
export function relativeTo(root: string, fsPath: string): string | undefined {
  const base = root.endsWith("/") ? root : `${root}/`;
  if (fsPath === root) return "";
  if (!fsPath.startsWith(base)) return undefined;
  const rel = fsPath.slice(base.length);
  return rel.split("/").every((part) => part !== "" && part !== "." && part !== "..") ? rel : undefined;
}
