/**
 * Create Sandbox, as a person goes through it: the folder, the runtime (shown at once; what
 * works here fills in when the agent's check is in), a container's image, the network (only
 * those the runtime has, the setting's first), a name, then the agent's progress.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { PaddockError } from "../../protocol/errors";
import type { AgentClient } from "../../protocol/client";
import type { NetworkMode, RuntimeKind, RuntimeReadiness, SystemCheckResult } from "../../protocol/methods";
import { RUNTIME_KINDS, RUNTIME_NETWORKS } from "../../protocol/runtime-kinds";
import { createOptions } from "../sandboxes/create-options";
import { networkLabel } from "../sandboxes/describe";
import { readSettings } from "../common/settings";
import type { CommandContext } from "./run";

const DEFAULT_IMAGE = "paddock/busybox:latest";
const RUNTIME_LABELS: Record<RuntimeKind, string> = { process: "Process (bubblewrap)", container: "Container (OCI)", vm: "Micro-VM (QEMU)" };
const NETWORK_DETAILS: Record<NetworkMode, string> = {
  none: "no network at all: nothing leaves the sandbox (the safest)",
  host: "the host's own network, as programs outside the sandbox have it",
  nat: "a network of its own behind NAT: the internet, not the host's loopback",
};

export async function createSandbox(ctx: CommandContext, folder: string | undefined): Promise<void> {
  const client = ctx.agent.client();
  const workspace = folder ?? (await pickFolder());
  if (!workspace) return;
  const settings = readSettings();
  const runtime = await pickRuntime(ctx, workspace, settings.defaultRuntime);
  if (!runtime) return;
  const image = runtime === "container" ? await pickImage(client, settings.image) : undefined;
  if (image === null) return;
  const network = await pickNetwork(runtime, settings.network);
  if (!network) return;
  const name = await vscode.window.showInputBox({ prompt: vscode.l10n.t("Name (optional)"), placeHolder: vscode.l10n.t("a name is made up if you leave this empty") });
  if (name === undefined) return;
  const { limits } = createOptions(runtime, { ...settings, network });
  const sandbox = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t("Creating a sandbox of {0}…", path.basename(workspace)), cancellable: true }, async (progress, token) => {
    // The first container may build the default image, a VM boots: the agent reports the steps.
    const listening = ctx.agent.onNotification((notification) => {
      if (notification.method === "image/progress" || notification.method === "sandbox/progress") progress.report({ message: notification.params.step });
    });
    try {
      const created = await client.request("sandbox/create", { workspace, runtime, ...(image ? { image } : {}), network, ...(Object.keys(limits).length ? { limits } : {}), ...(name ? { name } : {}) });
      if (token.isCancellationRequested) {
        await client.request("sandbox/delete", { id: created.id });
        return undefined;
      }
      return created;
    } finally {
      listening.dispose();
    }
  });
  if (sandbox) ctx.model.upsert(sandbox);
}

interface RuntimeItem extends vscode.QuickPickItem {
  runtime: RuntimeKind;
  /** Why it cannot be used here; undefined when it can, or while the check runs. */
  why?: string;
}

/** Why a runtime cannot be used: the agent's own answer (its check, which knows whether it runs as root). */
function unusable(kind: RuntimeKind, check: SystemCheckResult): { why: string; hint?: string } | undefined {
  const readiness = check.runtimes[kind] as RuntimeReadiness | undefined;
  // An agent older than this extension may not know the runtime at all.
  if (!readiness) return { why: vscode.l10n.t("not supported by this agent") };
  if (readiness.available) return undefined;
  const why = readiness.reason ?? vscode.l10n.t("unavailable here: {0} failed (see Paddock: Show Agent Log or paddock check)", readiness.missing.join(", "));
  return { why, ...(readiness.hint ? { hint: readiness.hint } : {}) };
}

function runtimeItems(preferred: RuntimeKind, check: SystemCheckResult | undefined): RuntimeItem[] {
  // The setting's runtime is offered first.
  const kinds = [...RUNTIME_KINDS].sort((a, b) => Number(b === preferred) - Number(a === preferred));
  return kinds.map((kind) => {
    const refusal = check ? unusable(kind, check) : undefined;
    const using = check?.runtimes[kind]?.using;
    const description = !check ? vscode.l10n.t("checking what works here…") : (refusal?.why ?? (using ? vscode.l10n.t("using {0}", using) : ""));
    return {
      runtime: kind,
      label: `${refusal ? "$(circle-slash)" : "$(vm)"} ${vscode.l10n.t(RUNTIME_LABELS[kind])}`,
      description,
      ...(refusal ? { why: refusal.why } : {}),
      ...(refusal?.hint ? { detail: refusal.hint } : {}),
    };
  });
}

/** The runtime quick pick: shown at once, busy until the agent's check is in, then with what works. */
async function pickRuntime(ctx: CommandContext, workspace: string, preferred: RuntimeKind): Promise<RuntimeKind | undefined> {
  const pick = vscode.window.createQuickPick<RuntimeItem>();
  pick.placeholder = vscode.l10n.t("Runtime for the new sandbox of {0}", path.basename(workspace));
  pick.items = runtimeItems(preferred, ctx.readiness.settled);
  pick.busy = !ctx.readiness.settled;
  // While busy it stays put if focus wanders (a terminal, a notification): the check ends it, or Escape.
  pick.ignoreFocusOut = pick.busy;
  const checked = ctx.readiness.check().then((check) => {
    // New items: the one the person was on stays active (the first, if none was).
    const active = pick.activeItems[0]?.runtime ?? pick.items[0]?.runtime;
    pick.items = runtimeItems(preferred, check);
    pick.activeItems = pick.items.filter((i) => i.runtime === active);
    pick.busy = false;
    pick.ignoreFocusOut = false;
    return check;
  });
  try {
    const chosen = await new Promise<RuntimeKind | undefined>((resolve) => {
      pick.onDidAccept(() => {
        const runtime = (pick.selectedItems[0] ?? pick.activeItems[0])?.runtime;
        if (runtime) resolve(runtime);
      });
      pick.onDidHide(() => resolve(undefined));
      pick.show();
    });
    if (!chosen) return undefined;
    // Accepted before the check was in: it decides now (the pick stays, busy, meanwhile).
    const refusal = unusable(chosen, await checked);
    if (refusal) throw new PaddockError("E_RUNTIME_UNAVAILABLE", vscode.l10n.t("The {0} runtime cannot be used: {1}", chosen, refusal.why), refusal.hint ?? vscode.l10n.t("Pick another runtime, or see what `paddock check` reports."));
    return chosen;
  } finally {
    pick.dispose();
  }
}

/** The network of a new sandbox: only those its runtime has, the setting's first. */
async function pickNetwork(runtime: RuntimeKind, preferred: NetworkMode): Promise<NetworkMode | undefined> {
  const networks = [...RUNTIME_NETWORKS[runtime]].sort((a, b) => Number(b === preferred) - Number(a === preferred));
  const items = networks.map((network) => ({ label: networkLabel(network), description: network === preferred ? vscode.l10n.t("setting paddock.sandbox.network") : "", detail: vscode.l10n.t(NETWORK_DETAILS[network]), network }));
  return (await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t("Network for the sandbox: a command that downloads (npm install, pip, git clone) needs one") }))?.network;
}

/**
 * The image of a new container sandbox: asked only when there is a choice (the setting's
 * image first); undefined is the default image, null a cancelled pick.
 */
async function pickImage(client: AgentClient, preferred: string): Promise<string | undefined | null> {
  const { images } = await client.request("image/list", {});
  const others = images.filter((i) => i.name !== DEFAULT_IMAGE);
  if (others.length === 0) return undefined;
  const items = [
    ...others.map((i) => ({ label: i.name, description: i.digest.slice(0, 19), detail: vscode.l10n.t("{0} layer(s), added {1}", i.layers, i.importedAt.slice(0, 10)), image: i.name as string | undefined })),
    { label: DEFAULT_IMAGE, description: vscode.l10n.t("default"), detail: vscode.l10n.t("Debian's busybox-static, built on this machine"), image: undefined },
  ].sort((a, b) => Number(b.label === preferred) - Number(a.label === preferred));
  const pick = await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t("Image for the container (paddock image pull or import adds more)") });
  return pick ? pick.image : null;
}

async function pickFolder(): Promise<string | undefined> {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === "file");
  if (folders.length === 0) throw new PaddockError("E_INVALID_WORKSPACE", vscode.l10n.t("Open a folder first: a sandbox is a copy-on-write view of a folder."), vscode.l10n.t("File > Open Folder…"));
  if (folders.length === 1) return folders[0]!.uri.fsPath;
  return (await vscode.window.showWorkspaceFolderPick({ placeHolder: vscode.l10n.t("Create a sandbox of which folder?") }))?.uri.fsPath;
}
