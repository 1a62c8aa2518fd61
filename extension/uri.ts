/**
 * The `paddock:` URIs: `paddock:/SANDBOX_ID/path/in/workspace` is a file as that sandbox sees
 * it (served by fs/sandbox-file-system.ts). Pure: no vscode import, so unit tests run it.
 */
export const SCHEME = "paddock";

const SANDBOX_PATH = /^\/(sbx-[0-9a-f]{12})(?:\/(.*))?$/;

/** The path part of a sandbox file's URI. */
export function sandboxPath(id: string, rel: string): string {
  return rel === "" ? `/${id}` : `/${id}/${rel}`;
}

/** The sandbox and the workspace-relative path a `paddock:` URI's path names, or undefined. */
export function parseSandboxPath(uriPath: string): { id: string; rel: string } | undefined {
  const match = SANDBOX_PATH.exec(uriPath);
  if (!match) return undefined;
  const rel = match[2] ?? "";
  if (rel !== "" && rel.split("/").some((part) => part === "" || part === "." || part === "..")) return undefined;
  return { id: match[1]!, rel };
}

/** A file's path relative to a workspace root, with `/` separators; undefined when outside it. */
export function relativeTo(root: string, fsPath: string): string | undefined {
  const base = root.endsWith("/") ? root : `${root}/`;
  if (fsPath === root) return "";
  return fsPath.startsWith(base) ? fsPath.slice(base.length) : undefined;
}
