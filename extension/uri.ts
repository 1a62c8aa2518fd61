/**
 * The `paddock:` URIs. As git: URIs do, one has the workspace file's own path and names the
 * sandbox in its query: `paddock:/home/me/app/src/a.ts?sandbox=sbx-0123456789ab` is that file
 * as the sandbox sees it (served by fs/sandbox-file-system.ts), so editors, breadcrumbs and
 * the multi-file diff show the file's real path. `&empty` is an empty file (the missing side
 * of an added or deleted file's diff). Pure: no vscode import, so unit tests run it.
 */
export const SCHEME = "paddock";

const SANDBOX_ID = /^sbx-[0-9a-f]{12}$/;

export function sandboxQuery(id: string, empty = false): string {
  return `sandbox=${id}${empty ? "&empty" : ""}`;
}

/** The sandbox a `paddock:` URI's query names, or undefined. */
export function parseSandboxQuery(query: string): { id: string; empty: boolean } | undefined {
  const params = new URLSearchParams(query);
  const id = params.get("sandbox");
  return id && SANDBOX_ID.test(id) ? { id, empty: params.has("empty") } : undefined;
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
