/**
 * `paddock:` files (see uri.ts) as a writable file system: the right side of every diff, so
 * the user reads and edits a sandbox's version of a file in VS Code's own editors. Reads and
 * writes go to the agent (`sandbox/readFile`, `sandbox/writeFile`), which resolves paths
 * inside the sandbox and never through a symlink.
 */
import * as vscode from "vscode";
import { PaddockError } from "../../protocol/errors";
import type { ReadFileResult } from "../../protocol/methods";
import type { AgentConnection } from "../agent/agent-connection";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import { parseSandboxQuery, relativeTo, sandboxQuery, SCHEME, type SandboxUriFlags } from "../common/uri";

/** A workspace file as a sandbox sees it. */
export function sandboxUri(id: string, file: vscode.Uri, flags: SandboxUriFlags = {}): vscode.Uri {
  return file.with({ scheme: SCHEME, query: sandboxQuery(id, flags) });
}

export class SandboxFileSystem implements vscode.FileSystemProvider {
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;

  constructor(
    private readonly agent: AgentConnection,
    private readonly model: SandboxModel,
  ) {
    // Open editors of a sandbox's files follow what its commands do: one event per path the agent names.
    model.onDidChangePaths(({ id, paths }) => {
      const workspace = model.get(id)?.workspace;
      if (!workspace) return;
      const root = vscode.Uri.file(workspace);
      const files = paths.map((rel) => (rel === "" ? root : vscode.Uri.joinPath(root, rel)));
      // Both the editable file and the review diff's read-only sides follow (an approve or reject changes the base too).
      const flags = [{}, { readonly: true }, { base: true }];
      this.emitter.fire(files.flatMap((file) => flags.map((f) => ({ type: vscode.FileChangeType.Changed, uri: sandboxUri(id, file, f) }))));
    });
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => undefined);
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const query = parseSandboxQuery(uri.query);
    if (query?.empty) return { type: vscode.FileType.File, ctime: 0, mtime: 0, size: 0, permissions: vscode.FilePermission.Readonly };
    const file = await this.read(uri);
    const type = file.type === "directory" ? vscode.FileType.Directory : file.type === "symlink" ? vscode.FileType.SymbolicLink : vscode.FileType.File;
    return { type, ctime: 0, mtime: file.mtimeMs, size: file.size, ...(query?.readonly ? { permissions: vscode.FilePermission.Readonly } : {}) };
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    const file = await this.read(uri);
    if (file.type !== "directory") throw vscode.FileSystemError.FileNotADirectory(uri);
    return (file.entries ?? []).map((name) => [name, vscode.FileType.Unknown]);
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    if (parseSandboxQuery(uri.query)?.empty) return new Uint8Array();
    const file = await this.read(uri);
    if (file.type === "directory") throw vscode.FileSystemError.FileIsADirectory(uri);
    return file.type === "symlink" ? new TextEncoder().encode(file.target ?? "") : Buffer.from(file.content, "base64");
  }

  async writeFile(uri: vscode.Uri, content: Uint8Array): Promise<void> {
    const target = await this.parse(uri);
    if (target.empty || target.readonly) throw vscode.FileSystemError.NoPermissions(uri);
    await this.call(uri, () => this.agent.client().request("sandbox/writeFile", { id: target.id, path: target.rel, content: Buffer.from(content).toString("base64") }));
    this.emitter.fire([{ type: vscode.FileChangeType.Changed, uri }]);
  }

  createDirectory(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  delete(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  rename(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  /** The sandbox and the workspace-relative path a URI names (the sandbox's workspace from the model, or the agent). */
  private async parse(uri: vscode.Uri): Promise<{ id: string; rel: string; empty: boolean; readonly: boolean; base: boolean }> {
    const query = parseSandboxQuery(uri.query);
    if (!query) throw vscode.FileSystemError.FileNotFound(uri);
    const workspace = this.model.get(query.id)?.workspace ?? (await this.call(uri, () => this.agent.client().request("sandbox/get", { id: query.id }))).workspace;
    const rel = relativeTo(workspace, uri.path);
    if (rel === undefined) throw vscode.FileSystemError.FileNotFound(uri);
    return { ...query, rel };
  }

  private async read(uri: vscode.Uri): Promise<ReadFileResult> {
    const target = await this.parse(uri);
    if (!target.base) return this.call(uri, () => this.agent.client().request("sandbox/readFile", { id: target.id, path: target.rel }));
    try {
      return await this.call(uri, () => this.agent.client().request("sandbox/readFile", { id: target.id, path: target.rel, base: true }));
    } catch (err) {
      // No base kept any more (an approve made the workspace the base again): the workspace's file is what the diff is against.
      if (!(err instanceof vscode.FileSystemError && err.code === "FileNotFound")) throw err;
      const bytes = await vscode.workspace.fs.readFile(uri.with({ scheme: "file", query: "" }));
      return { path: target.rel, type: "file", mode: 0o644, size: bytes.length, mtimeMs: 0, content: Buffer.from(bytes).toString("base64") };
    }
  }

  /** The agent's refusals as the file system errors editors understand. */
  private async call<T>(uri: vscode.Uri, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (err instanceof PaddockError && err.code === "E_NOT_FOUND") throw vscode.FileSystemError.FileNotFound(uri);
      if (err instanceof PaddockError && (err.code === "E_UNSAFE_PATH" || err.code === "E_PERMISSION_DENIED")) throw vscode.FileSystemError.NoPermissions(`${err.message}${err.hint ? ` (${err.hint})` : ""}`);
      throw vscode.FileSystemError.Unavailable(`${(err as Error).message}`);
    }
  }
}
