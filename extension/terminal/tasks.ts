/**
 * Tasks of type "paddock" (tasks.json): their command runs in a sandbox through the agent's
 * PTY. The sandbox is the one the task names (by name or id), else the folder's running
 * sandbox, asked when there are several and offered to be made when there is none. A task
 * that cannot run fails at once and says why in its terminal.
 */
import * as vscode from "vscode";
import type { Sandbox } from "../../protocol/methods";
import type { AgentConnection } from "../agent/agent-connection";
import type { SandboxModel } from "../sandboxes/sandbox-model";
import { runtimeLabel, sandboxItem } from "../sandboxes/describe";
import { SandboxPty } from "./sandbox-pty";

interface PaddockTaskDefinition extends vscode.TaskDefinition {
  command: string;
  /** A sandbox's name or id; left out, the folder's running sandbox. */
  sandbox?: string;
}

/** A task's terminal that only reports why it cannot run, and fails. */
function failed(message: string, hint?: string): vscode.Pseudoterminal {
  const write = new vscode.EventEmitter<string>();
  const close = new vscode.EventEmitter<number>();
  return {
    onDidWrite: write.event,
    onDidClose: close.event,
    open: () => {
      write.fire(`\x1b[31m${message}\x1b[0m\r\n${hint ? `${hint}\r\n` : ""}`);
      close.fire(1);
    },
    close: () => undefined,
  };
}

/** The sandbox a task runs in, or why there is none. */
async function sandboxFor(model: SandboxModel, task: vscode.Task, definition: PaddockTaskDefinition): Promise<Sandbox | { error: string; hint?: string }> {
  const known = model.all();
  if (definition.sandbox) {
    const named = known.find((s) => s.id === definition.sandbox || s.name === definition.sandbox);
    if (!named) {
      const names = known.map((s) => s.name).join(", ");
      return { error: vscode.l10n.t('Task "{0}": there is no sandbox "{1}".', task.name, definition.sandbox), hint: names ? vscode.l10n.t('Sandboxes now: {0}. Change "sandbox" in tasks.json, or leave it out to pick one.', names) : vscode.l10n.t("Create one from the Paddock view.") };
    }
    if (named.state !== "running") return { error: vscode.l10n.t('Task "{0}": sandbox {1} is {2}.', task.name, named.name, named.state), hint: vscode.l10n.t("Start it from the Paddock view, then run the task again.") };
    return named;
  }
  const folder = task.scope && typeof task.scope === "object" ? task.scope.uri.fsPath : undefined;
  const running = () => model.all().filter((s) => s.state === "running" && (!folder || s.workspace === folder));
  if (running().length === 0) {
    const create = vscode.l10n.t("Create Sandbox");
    const pick = await vscode.window.showInformationMessage(vscode.l10n.t('Task "{0}" runs in a sandbox, and this folder has no running one.', task.name), { modal: true, detail: vscode.l10n.t("Create one now? The task then runs in it.") }, create);
    if (pick === create) await vscode.commands.executeCommand("paddock.createSandbox", folder ? { kind: "folder", path: folder } : undefined);
  }
  const candidates = running();
  if (candidates.length === 0) return { error: vscode.l10n.t('Task "{0}": no running sandbox of this folder to run it in.', task.name), hint: vscode.l10n.t('Create one from the Paddock view, or name one with "sandbox" in tasks.json.') };
  if (candidates.length === 1) return candidates[0]!;
  const pick = await vscode.window.showQuickPick(candidates.map(sandboxItem), { placeHolder: vscode.l10n.t('Run task "{0}" in which sandbox? (set "sandbox" in tasks.json to stop this question)', task.name) });
  return candidates.find((s) => s.id === pick?.id) ?? { error: vscode.l10n.t('Task "{0}": no sandbox picked.', task.name) };
}

export function registerTaskProvider(agent: AgentConnection, model: SandboxModel): vscode.Disposable {
  return vscode.tasks.registerTaskProvider("paddock", {
    provideTasks: () => [],
    resolveTask(task) {
      const definition = task.definition as PaddockTaskDefinition;
      if (typeof definition.command !== "string") return undefined;
      const execution = new vscode.CustomExecution(async () => {
        const sandbox = await sandboxFor(model, task, definition);
        if ("error" in sandbox) return failed(sandbox.error, sandbox.hint);
        const banner = vscode.l10n.t("In sandbox {0} ({1}): {2}", sandbox.name, runtimeLabel(sandbox), definition.command);
        const offline = sandbox.network === "none" ? { offlineSandboxName: sandbox.name } : {};
        return new SandboxPty(agent, { sandboxId: sandbox.id, argv: ["/bin/sh", "-c", definition.command], banner: `\x1b[2m${banner}\x1b[0m\r\n`, ...offline });
      });
      // Problem matchers given (none): VS Code then does not ask which to use at every run.
      return new vscode.Task(definition, task.scope ?? vscode.TaskScope.Workspace, task.name, "paddock", execution, []);
    },
  });
}
