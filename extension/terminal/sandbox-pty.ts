/**
 * A VS Code terminal attached to a program in a sandbox through the agent's PTY: keystrokes
 * go to `process/write`, the panel's size to `process/resize`, output comes back as
 * `process/output` notifications, and the program's exit code closes the terminal.
 */
import * as vscode from "vscode";
import type { AgentNotifications } from "../../agent/protocol/methods";
import type { AgentConnection } from "../agent/agent-connection";

export interface PtyCommand {
  sandboxId: string;
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
}

export class SandboxPty implements vscode.Pseudoterminal {
  private readonly writeEmitter = new vscode.EventEmitter<string>();
  private readonly closeEmitter = new vscode.EventEmitter<number | void>();
  readonly onDidWrite = this.writeEmitter.event;
  readonly onDidClose = this.closeEmitter.event;
  private pid: number | undefined;
  /** Output and exits that came before `process/spawn` answered with the pid. */
  private readonly early: { pid: number; data?: string; exitCode?: number | null }[] = [];
  private subscription: vscode.Disposable | undefined;
  private exited = false;

  constructor(
    private readonly agent: AgentConnection,
    private readonly command: PtyCommand,
  ) {}

  open(dimensions: vscode.TerminalDimensions | undefined): void {
    this.subscription = this.agent.onNotification(({ method, params }) => this.onNotification(method, params));
    const pty = { cols: dimensions?.columns ?? 80, rows: dimensions?.rows ?? 24 };
    void (async () => {
      try {
        const { pid } = await this.agent.client().request("process/spawn", { id: this.command.sandboxId, argv: this.command.argv, cwd: this.command.cwd, env: this.command.env, pty });
        this.pid = pid;
        for (const event of this.early.splice(0)) {
          if (event.pid !== pid) continue;
          if (event.data !== undefined) this.writeEmitter.fire(event.data);
          else this.finish(event.exitCode ?? 1);
        }
      } catch (err) {
        this.writeEmitter.fire(`\r\n\x1b[31m${vscode.l10n.t("Cannot start a terminal in the sandbox: {0}", (err as Error).message)}\x1b[0m\r\n`);
        this.finish(1);
      }
    })();
  }

  handleInput(data: string): void {
    if (this.pid !== undefined && !this.exited) void this.agent.client().request("process/write", { pid: this.pid, data }).catch(() => undefined);
  }

  setDimensions(dimensions: vscode.TerminalDimensions): void {
    if (this.pid !== undefined && !this.exited) void this.agent.client().request("process/resize", { pid: this.pid, cols: dimensions.columns, rows: dimensions.rows }).catch(() => undefined);
  }

  /** The user closed the terminal: the program gets SIGHUP, as from a real terminal. */
  close(): void {
    if (this.pid !== undefined && !this.exited) void this.agent.client().request("process/kill", { pid: this.pid, signal: "SIGHUP" }).catch(() => undefined);
    this.subscription?.dispose();
  }

  private onNotification(method: string, params: unknown): void {
    if (method === "process/output") {
      const { pid, data } = params as AgentNotifications["process/output"];
      if (this.pid === undefined) this.early.push({ pid, data });
      else if (pid === this.pid) this.writeEmitter.fire(data);
    } else if (method === "process/exit") {
      const { pid, exitCode } = params as AgentNotifications["process/exit"];
      if (this.pid === undefined) this.early.push({ pid, exitCode });
      else if (pid === this.pid) this.finish(exitCode ?? 1);
    }
  }

  private finish(code: number): void {
    if (this.exited) return;
    this.exited = true;
    this.subscription?.dispose();
    this.closeEmitter.fire(code);
  }
}
