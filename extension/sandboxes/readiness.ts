/**
 * What works on this machine (`system/check`), asked once the agent is connected, in the
 * background: the first check can take seconds (it boots a tiny VM), and Create Sandbox must
 * not wait for it before it shows anything.
 */
import type * as vscode from "vscode";
import type { SystemCheckResult } from "../../agent/protocol/methods";
import type { AgentConnection } from "../agent/agent-connection";

export class Readiness implements vscode.Disposable {
  private pending: Promise<SystemCheckResult> | undefined;
  private result: SystemCheckResult | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly agent: AgentConnection) {
    this.subscription = agent.onDidConnect(() => {
      this.pending = undefined;
      this.result = undefined;
      void this.check().catch(() => undefined); // asked again by whoever needs it
    });
  }

  /** The check's result when it is in. */
  get settled(): SystemCheckResult | undefined {
    return this.result;
  }

  /** The check, run at most once per connection (again after a failure). */
  check(): Promise<SystemCheckResult> {
    this.pending ??= this.agent
      .client()
      .request("system/check", {})
      .then(
        (result) => (this.result = result),
        (err: unknown) => {
          this.pending = undefined;
          throw err;
        },
      );
    return this.pending;
  }

  dispose(): void {
    this.subscription.dispose();
  }
}
