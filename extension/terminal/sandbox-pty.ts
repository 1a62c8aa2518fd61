/**
 * A VS Code terminal attached to a program in a sandbox through the agent's PTY: keystrokes
 * go to `process/write`, the panel's size to `process/resize`, output comes back as
 * `process/output` notifications, and the program's exit code closes the terminal. A
 * terminal whose program fails at once stays open and says why, until a key closes it.
 */
import * as vscode from "vscode";
import type { AgentNotification } from "../../protocol/methods";
import { PaddockError } from "../../protocol/errors";
import type { AgentConnection } from "../agent/agent-connection";
import { saysNoResolution, tellOffline } from "./offline-hint";

export interface PtyCommand {
  sandboxId: string;
  /** The program; left out, the sandbox's own login shell (the agent lets the sandbox choose it). */
  argv?: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Set for a sandbox without network: its name, for the hint when a program cannot resolve a host. */
  offlineSandboxName?: string;
  /** Written first, before the program's output (a task's "In sandbox …" line). */
  banner?: string;
  /** Keep the terminal open, with the reason, when the program fails within QUICK_EXIT_MS (not for tasks: VS Code holds theirs). */
  holdOnQuickFailure?: boolean;
}

/** How much of a terminal's latest output the offline hint reads (a resolver error fits many times over). */
const RECENT_OUTPUT_CHARS = 1024;

/** A program that ends with an error sooner than this after it started, before any keystroke, has "ended at once". */
const QUICK_EXIT_MS = 3000;

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
  private startedAt = 0;
  /** Whether the user typed anything: a program that ends after that ended because of it, not "at once". */
  private typed = false;
  /** Set when the sandbox itself is stopping or going: its programs end with it, which is no failure to report. */
  private sandboxEnding: "stopped" | "deleted" | undefined;
  /** The last of the output, for the offline hint. */
  private recentOutput = "";
  /** Set while the terminal waits for a key to close after a quick failure. */
  private holding = false;

  constructor(
    private readonly agent: AgentConnection,
    private readonly command: PtyCommand,
  ) {}

  open(dimensions: vscode.TerminalDimensions | undefined): void {
    this.subscriptions.push(
      this.agent.onNotification((notification) => this.onNotification(notification)),
      // The agent's processes die with its connection: say so rather than hang.
      this.agent.onDidChangeState((state) => {
        if (state.kind !== "running") {
          this.writeEmitter.fire(`\r\n\x1b[33m${vscode.l10n.t("The Paddock agent went away; this terminal's program ended with it.")}\x1b[0m\r\n`);
          this.finish(1);
        }
      }),
    );
    const pty = { cols: dimensions?.columns ?? 80, rows: dimensions?.rows ?? 24 };
    this.startedAt = Date.now();
    if (this.command.banner) this.writeEmitter.fire(this.command.banner);
    void (async () => {
      try {
        const program = this.command.argv ? { argv: this.command.argv } : { shell: true as const };
        const { pid } = await this.agent.client().request("process/spawn", { id: this.command.sandboxId, ...program, cwd: this.command.cwd, env: this.command.env, pty });
        this.pid = pid;
        if (this.closed) return this.close(); // closed while it started
        if (this.pendingInput) this.handleInput(this.pendingInput);
        if (this.pendingSize) this.setDimensions({ columns: this.pendingSize.cols, rows: this.pendingSize.rows });
        this.pendingInput = "";
        for (const event of this.early.splice(0)) {
          if (event.pid !== pid) continue;
          if (event.data !== undefined) this.output(event.data);
          else this.finish(event.exitCode ?? 1);
        }
      } catch (err) {
        const hint = err instanceof PaddockError && err.hint ? ` (${err.hint})` : "";
        this.writeEmitter.fire(`\r\n\x1b[31m${vscode.l10n.t("Cannot start a terminal in the sandbox: {0}", (err as Error).message + hint)}\x1b[0m\r\n`);
        this.finish(1, true);
      }
    })();
  }

  handleInput(data: string): void {
    // The reason was read: closed without a code, so VS Code adds no "failed to launch" of its own.
    if (this.holding) return this.closeEmitter.fire();
    if (this.exited) return;
    this.typed = true;
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

  private output(data: string): void {
    this.writeEmitter.fire(data);
    if (this.command.offlineSandboxName === undefined) return;
    // A message can come in pieces: the end of the output so far is what is read.
    this.recentOutput = (this.recentOutput + data).slice(-RECENT_OUTPUT_CHARS);
    if (saysNoResolution(this.recentOutput)) tellOffline(this.command.sandboxId, this.command.offlineSandboxName);
  }

  get sandboxId(): string {
    return this.command.sandboxId;
  }

  private onNotification(notification: AgentNotification): void {
    if (notification.method === "sandbox/didChangeState") {
      const { id, state } = notification.params;
      if (id !== this.command.sandboxId) return;
      if (state === "deleting" || state === "deleted") {
        // Nothing left to read about: the terminal goes with its sandbox, without an exit alert.
        this.sandboxEnding = "deleted";
        this.finish(0);
      } else if (state === "stopped") {
        this.sandboxEnding ??= "stopped";
      }
      return;
    }
    if (notification.method === "process/output") {
      const { pid, data } = notification.params;
      if (this.pid === undefined) this.early.push({ pid, data });
      else if (pid === this.pid) this.output(data);
    } else if (notification.method === "process/exit") {
      const { pid, exitCode } = notification.params;
      if (this.pid === undefined) this.early.push({ pid, exitCode });
      else if (pid === this.pid) this.finish(exitCode ?? 1);
    }
  }

  /** The program ended; `failedToStart`: it never ran. */
  private finish(code: number, failedToStart = false): void {
    if (this.exited) return;
    this.exited = true;
    for (const s of this.subscriptions.splice(0)) s.dispose();
    if (this.sandboxEnding === "deleted") return this.closeEmitter.fire();
    if (this.sandboxEnding === "stopped" && !this.closed) {
      this.writeEmitter.fire(`\r\n\x1b[33m${vscode.l10n.t("The sandbox was stopped, and this terminal's program with it (its changes are kept).")}\x1b[0m\r\n\x1b[2m${vscode.l10n.t("Press any key to close this terminal.")}\x1b[0m\r\n`);
      this.holding = true;
      return;
    }
    const quick = failedToStart || (code !== 0 && !this.typed && Date.now() - this.startedAt < QUICK_EXIT_MS);
    if (!quick || !this.command.holdOnQuickFailure || this.closed) return this.closeEmitter.fire(code);
    // Closed at once, the terminal would take its reason with it.
    if (!failedToStart) this.writeEmitter.fire(`\r\n\x1b[31m${quickExitReason(code)}\x1b[0m\r\n`);
    this.writeEmitter.fire(`\x1b[2m${vscode.l10n.t("Press any key to close this terminal.")}\x1b[0m\r\n`);
    this.holding = true;
  }
}

/** Why a terminal's program ended as soon as it started, in the words of its exit code. */
export function quickExitReason(code: number): string {
  const ended = vscode.l10n.t("The sandbox's program ended at once with exit code {0}", code);
  if (code === 127) return `${ended}: ${vscode.l10n.t("a program it needs is not in this sandbox (an image without /bin/sh cannot give a terminal).")}`;
  if (code === 126) return `${ended}: ${vscode.l10n.t("a program it needs cannot be run in this sandbox (not executable, or for another machine).")}`;
  return `${ended}.`;
}
