/**
 * The extension's one connection to the agent, as rust-analyzer's Ctx owns its server: start
 * (an agent already serving the state dir on a socket, else one of our own over stdio, as the
 * user or through sudo/pkexec for root mode), restart with backoff after a crash, stop, and a
 * client that says plainly when there is no agent.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import type { AgentClient } from "../../protocol/client";
import { connectToAgent, type Connected } from "../../connect/connect";
import type { AgentNotification, InitializeResult } from "../../protocol/methods";
import { defaultStateDir } from "../../protocol/discovery";
import { readSettings } from "../common/settings";

export type AgentState =
  | { kind: "stopped" }
  | { kind: "starting" }
  | { kind: "running"; info: InitializeResult; via: string }
  | { kind: "failed"; message: string; retryAt?: number };

export class AgentNotRunning extends Error {
  constructor(readonly state: AgentState) {
    super(state.kind === "failed" ? `The Paddock agent is not running: ${state.message}` : "The Paddock agent is not running.");
  }
}

const BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000];

export class AgentConnection implements vscode.Disposable {
  private state: AgentState = { kind: "stopped" };
  private connected: Connected | undefined;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Set while the user (or deactivation) stops the agent: no restart then. */
  private stopping = false;
  /** Bumped by every start and stop: a start that finishes after a newer one (or a stop) gives way. */
  private generation = 0;
  private restarting: Promise<void> | undefined;
  private readonly stateEmitter = new vscode.EventEmitter<AgentState>();
  private readonly notificationEmitter = new vscode.EventEmitter<AgentNotification>();
  private readonly connectedEmitter = new vscode.EventEmitter<AgentClient>();

  readonly onDidChangeState = this.stateEmitter.event;
  readonly onNotification = this.notificationEmitter.event;
  /** Fires with the new client after every (re)connection: views list everything again. */
  readonly onDidConnect = this.connectedEmitter.event;

  constructor(
    private readonly extensionPath: string,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get current(): AgentState {
    return this.state;
  }

  /** The agent process this window started (none when it uses an agent's socket). */
  get agentPid(): number | undefined {
    return this.connected?.agentPid;
  }

  /** The client, or an AgentNotRunning error that commands turn into a message with a Start button. */
  client(): AgentClient {
    if (this.state.kind !== "running" || !this.connected) throw new AgentNotRunning(this.state);
    return this.connected.client;
  }

  async start(): Promise<void> {
    if (this.state.kind === "running" || this.state.kind === "starting") return;
    clearTimeout(this.retryTimer);
    this.stopping = false;
    const generation = ++this.generation;
    this.setState({ kind: "starting" });
    const settings = readSettings();
    try {
      const connected = await connectToAgent({
        socket: settings.agentMode === "socket" ? settings.socketPath || undefined : undefined,
        socketOnly: settings.agentMode === "socket",
        stateDir: settings.stateDir || defaultStateDir(),
        selfScript: path.join(this.extensionPath, "dist", "paddock.js"),
        logLevel: settings.logLevel,
        clientName: "paddock-vscode",
        launcher: this.launcher(settings.agentMode, settings.rootCommand),
        ...(settings.ociRuntime !== "auto" ? { agentArgs: ["--oci-runtime", settings.ociRuntime] } : {}),
        onAgentOutput: (line) => this.log.info(`[agent] ${line}`),
      });
      if (generation !== this.generation) {
        // Stopped or started again while this one connected: it is not the connection.
        await connected.close();
        return;
      }
      this.connected = connected;
      this.failures = 0;
      connected.client.onNotification((...[method, params]) => this.notificationEmitter.fire({ method, params } as AgentNotification));
      this.watchForExit(connected);
      this.log.info(`connected to the agent ${connected.info.agentVersion} (${connected.via}; ${connected.info.agent.rootless ? "rootless" : "root"}; its full log: ${connected.info.agent.stateDir}/logs/agent.log)`);
      this.setState({ kind: "running", info: connected.info, via: connected.via });
      this.connectedEmitter.fire(connected.client);
    } catch (err) {
      if (generation !== this.generation) return;
      this.connected = undefined;
      this.fail((err as Error).message);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    const connected = this.connected;
    this.connected = undefined;
    await connected?.close();
    this.setState({ kind: "stopped" });
  }

  /** One restart at a time: a second request while one runs waits for it. */
  async restart(): Promise<void> {
    this.restarting ??= (async () => {
      await this.stop();
      await this.start();
    })().finally(() => (this.restarting = undefined));
    return this.restarting;
  }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.notificationEmitter.dispose();
    this.connectedEmitter.dispose();
  }

  /**
   * What runs the agent's script when we start one: this extension host's own executable as
   * node (ELECTRON_RUN_AS_NODE makes desktop VS Code's Electron behave as node), as the user,
   * or behind the configured command (e.g. `sudo -n`) in root mode.
   */
  private launcher(mode: string, rootCommand: string[]): { command: string[]; env: NodeJS.ProcessEnv } {
    const env = { ...process.env, ELECTRON_RUN_AS_NODE: "1" };
    if (mode !== "root") return { command: [process.execPath], env };
    // sudo and pkexec clear the environment: the variable goes through env(1).
    return { command: [...rootCommand, "env", "ELECTRON_RUN_AS_NODE=1", process.execPath], env };
  }

  private watchForExit(connected: Connected): void {
    connected.client.onClose((err) => {
      if (this.connected !== connected || this.stopping) return;
      this.connected = undefined;
      this.log.warn(`the agent connection ended: ${err.message}`);
      this.fail(err.message);
    });
  }

  private fail(message: string): void {
    if (this.stopping) return;
    const delay = BACKOFF_MS[Math.min(this.failures, BACKOFF_MS.length - 1)]!;
    this.failures++;
    this.log.error(`agent: ${message}; trying again in ${delay / 1000} s`);
    this.setState({ kind: "failed", message, retryAt: Date.now() + delay });
    this.retryTimer = setTimeout(() => void this.start(), delay);
  }

  private setState(state: AgentState): void {
    this.state = state;
    this.stateEmitter.fire(state);
  }
}
