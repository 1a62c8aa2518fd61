/**
 * What works on this machine (`system/check`), asked once the agent is connected, in the
 * background: the first check can take seconds (it boots a tiny VM), and Create Sandbox must
 * not wait for it before it shows anything.
 */
import type * as vscode from "vscode";
import type { AgentClient } from "../../protocol/client";
import type { SystemCheckResult } from "../../protocol/methods";
import type { AgentConnection } from "../agent/agent-connection";

export class Readiness implements vscode.Disposable {
  private pending: Promise<SystemCheckResult> | undefined;
  private result: SystemCheckResult | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly agent: AgentConnection) {
    // Asked on the connection that just came up (its client is given: the state may not say "running" yet).
    this.subscription = agent.onDidConnect((client) => {
      this.result = undefined;
      this.pending = undefined;
      this.ask(client).catch(() => undefined); // asked again by whoever needs it
    });
  }

  /** The check's result when it is in. */
  get settled(): SystemCheckResult | undefined {
    return this.result;
  }

  /** The check, run at most once per connection (again after a failure); rejects when there is no agent. */
  async check(): Promise<SystemCheckResult> {
    return this.pending ?? this.ask(this.agent.client());
  }

  dispose(): void {
    this.subscription.dispose();
  }

  private ask(client: AgentClient): Promise<SystemCheckResult> {
    const asked: Promise<SystemCheckResult> = client.request("system/check", {}).then(
      (result) => (this.pending === asked ? (this.result = result) : result),
      (err: unknown) => {
        if (this.pending === asked) this.pending = undefined;
        throw err;
      },
    );
    this.pending = asked;
    return asked;
  }
}
