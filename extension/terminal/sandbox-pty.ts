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
  private subscriptions: vscode.Disposable[] = [];
  private exited = false;
  private closed = false;
  /** Keystrokes and the latest size from before the pid was known. */
  private pendingInput = "";
  private pendingSize: { cols: number; rows: number } | undefined;

  constructor(
    private readonly agent: AgentConnection,
    private readonly command: PtyCommand,
  ) {}

  open(dimensions: vscode.TerminalDimensions | undefined): void {
    this.subscriptions.push(
      this.agent.onNotification(({ method, params }) => this.onNotification(method, params)),
      // The agent's processes die with its connection: say so rather than hang.
      this.agent.onDidChangeState((state) => {
        if (state.kind !== "running") {
          this.writeEmitter.fire(`\r\n\x1b[33m${vscode.l10n.t("The Paddock agent went away; this terminal's program ended with it.")}\x1b[0m\r\n`);
          this.finish(1);
        }
      }),
    );
    const pty = { cols: dimensions?.columns ?? 80, rows: dimensions?.rows ?? 24 };
    void (async () => {
      try {
        const { pid } = await this.agent.client().request("process/spawn", { id: this.command.sandboxId, argv: this.command.argv, cwd: this.command.cwd, env: this.command.env, pty });
        this.pid = pid;
        if (this.closed) return this.close(); // closed while it started
        if (this.pendingInput) this.handleInput(this.pendingInput);
        if (this.pendingSize) this.setDimensions({ columns: this.pendingSize.cols, rows: this.pendingSize.rows });
        this.pendingInput = "";
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
    if (this.exited) return;
    if (this.pid === undefined) this.pendingInput += data;
    else this.send(() => this.agent.client().request("process/write", { pid: this.pid!, data }));
  }

  setDimensions(dimensions: vscode.TerminalDimensions): void {
    if (this.exited) return;
    if (this.pid === undefined) this.pendingSize = { cols: dimensions.columns, rows: dimensions.rows };
    else this.send(() => this.agent.client().request("process/resize", { pid: this.pid!, cols: dimensions.columns, rows: dimensions.rows }));
  }

  /** The user closed the terminal: the program gets SIGHUP, as from a real terminal. */
  close(): void {
    this.closed = true;
    if (this.pid !== undefined && !this.exited) this.send(() => this.agent.client().request("process/kill", { pid: this.pid!, signal: "SIGHUP" }));
    for (const s of this.subscriptions.splice(0)) s.dispose();
  }

  /** A request about this terminal's program; failing ones (the program just ended) are nothing to report. */
  private send(request: () => Promise<unknown>): void {
    try {
      void request().catch(() => undefined);
    } catch {
      // no agent: the state listener ends the terminal
    }
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
    for (const s of this.subscriptions.splice(0)) s.dispose();
    this.closeEmitter.fire(code);
  }
}
