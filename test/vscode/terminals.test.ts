/**
 * Terminals and tasks in a real workbench, as a person opens them: from the Paddock view's
 * row, from the terminal panel's profile menu and from the command palette, into a process,
 * a container and a VM sandbox; each runs the sandbox's own shell and writes into the
 * sandbox only. A sandbox without a shell says so in its terminal. Tasks of type "paddock"
 * fail at once when their sandbox is missing, ask when several could run them, and name the
 * sandbox in their output.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import * as path from "node:path";
import type { Sandbox } from "../../protocol/methods";
import { layerTar, ociLayoutOf } from "../helpers/images";
import { Workbench, workbenchSteps } from "./workbench";

let wb: Workbench;
const { step, failed } = workbenchSteps();
const sandboxes: Record<"process" | "container" | "vm", Sandbox> = {} as never;
/** The login shell each runtime's sandbox gives root here: the host's for a process sandbox, busybox's sh in the image and the guest. */
const SHELLS = { process: "/bin/bash", container: "/bin/sh", vm: "/bin/sh" };

const TASKS = {
  version: "2.0.0",
  tasks: [
    { label: "in a missing sandbox", type: "paddock", command: "echo never", sandbox: "no-such-sandbox" },
    { label: "in whichever sandbox", type: "paddock", command: "echo from-task > task.txt" },
  ],
};

before(async () => {
  wb = await Workbench.open("terminals", { files: { "README.md": "hello\n", ".vscode/tasks.json": JSON.stringify(TASKS, null, 2) } });
  for (const runtime of ["process", "container", "vm"] as const) {
    sandboxes[runtime] = await wb.client.request("sandbox/create", { workspace: wb.folder, runtime, name: `term-${runtime}` });
  }
});
after(async () => wb.close(failed()));

/** A step of the file: a failure keeps its screenshot and the agent's log. */

/** Types a command in the visible terminal; it writes a file in the sandbox, whose content comes back. */
async function writesInSandbox(runtime: keyof typeof sandboxes, marker: string): Promise<void> {
  const id = sandboxes[runtime].id;
  await wb.typeInTerminal(`echo "shell=$SHELL"; echo ${marker} > ${marker}.txt\n`);
  await wb.until(`${marker}.txt in the ${runtime} sandbox`, async () => (await wb.inSandbox(id, `${marker}.txt`)) === `${marker}\n`);
  const text = await wb.until("the shell's answer on screen", async () => ((await wb.terminalText()).includes(`shell=${SHELLS[runtime]}`) ? wb.terminalText() : undefined), 10_000);
  assert.doesNotMatch(text, /exit code/);
  assert.equal(wb.onDisk(`${marker}.txt`), undefined, "the terminal wrote into the sandbox only");
}

/** The terminal of a sandbox, as the panel names it. */
const terminalTab = (name: string) => wb.terminalTab(name);

async function exitTerminal(name: string): Promise<void> {
  await wb.typeInTerminal("exit\n");
  await terminalTab(name).waitFor({ state: "detached", timeout: 30_000 });
}

/**
 * The row's New Sandbox Terminal, clicked again if the click was lost (the view re-rendered as
 * a VM sandbox came up meanwhile): only while the agent started no program in the sandbox, so
 * a slow first terminal (node-pty loads) is never opened twice.
 */
async function terminalFromView(runtime: keyof typeof sandboxes): Promise<void> {
  const name = `term-${runtime}`;
  for (let attempt = 1; ; attempt++) {
    await wb.inline(".pane-body", name, "New Sandbox Terminal");
    try {
      await terminalTab(name).waitFor({ timeout: 20_000 });
      return;
    } catch {
      const { processes } = await wb.client.request("process/list", { id: sandboxes[runtime].id });
      if (processes.length > 0 || attempt === 3) return void (await terminalTab(name).waitFor({ timeout: 40_000 }));
    }
  }
}

for (const runtime of ["process", "container", "vm"] as const) {
  step(`from the Paddock view: a terminal in the ${runtime} sandbox runs the sandbox's own shell`, async () => {
    await wb.activity("Paddock");
    await terminalFromView(runtime);
    await writesInSandbox(runtime, `view-${runtime}`);
    await wb.shot(`terminal-${runtime}`);
    await exitTerminal(`term-${runtime}`);
  });
}

step("the terminal panel's profile menu: Paddock Sandbox asks which sandbox, each with its runtime", async () => {
  await wb.command("Terminal: Create New Terminal (With Profile)");
  await wb.quickPick("Paddock Sandbox");
  const picker = wb.page.locator(".quick-input-widget");
  await picker.getByText("container busybox:latest").waitFor({ timeout: 30_000 });
  await picker.getByText("VM (").first().waitFor();
  await wb.shot("profile-picker");
  await wb.quickPick("term-container");
  await terminalTab("term-container").waitFor({ timeout: 30_000 });
  await writesInSandbox("container", "profile-container");
  await exitTerminal("term-container");
});

step("cancelling the profile's picker opens nothing and reports no error", async () => {
  await wb.command("Terminal: Create New Terminal (With Profile)");
  await wb.quickPick("Paddock Sandbox");
  await wb.page.locator(".quick-input-widget").getByText("term-vm").waitFor({ timeout: 30_000 });
  await wb.page.keyboard.press("Escape");
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await wb.page.locator(".notification-toast").count(), 0, "no notification");
  assert.equal(await wb.terminalTab("").count(), 0, "no terminal left open");
});

step("the command palette: Paddock: New Sandbox Terminal in the VM", async () => {
  await wb.command("Paddock: New Sandbox Terminal");
  await wb.quickPick("term-vm");
  await terminalTab("term-vm").waitFor({ timeout: 30_000 });
  await writesInSandbox("vm", "palette-vm");
  await exitTerminal("term-vm");
});

step("a container whose image has no shell: its terminal says why and stays open until a key", async () => {
  const layer = layerTar(wb.fx.base, "no-shell", { "etc/os-release": "ID=no-shell\n" });
  await wb.client.request("image/import", { source: ociLayoutOf(path.join(wb.fx.base, "no-shell-image"), [{ tar: layer }]), name: "no-shell:1" });
  const { id } = await wb.client.request("sandbox/create", { workspace: wb.folder, runtime: "container", image: "no-shell:1", name: "shell-less" });
  await wb.activity("Paddock");
  await wb.inline(".pane-body", "shell-less", "New Sandbox Terminal");
  // A click while the view refreshes (the new sandbox's row) can reach the command without its
  // row, VS Code having dropped a stale tree handle: it then asks which sandbox, as a person would see.
  const asked = wb.page.locator(".quick-input-widget input[placeholder='Which sandbox?']");
  if (await asked.waitFor({ state: "visible", timeout: 2_000 }).then(() => true, () => false)) await wb.quickPick("shell-less");
  const text = await wb.until("the reason in the terminal", async () => {
    const shown = await wb.terminalText();
    return /Press any key to close/.test(shown) ? shown : undefined;
  });
  assert.match(text, /no such file|not found|not in this sandbox|\/bin\/sh/i);
  await wb.shot("terminal-no-shell");
  await wb.page.keyboard.press("Enter");
  await terminalTab("shell-less").waitFor({ state: "detached", timeout: 30_000 });
  await wb.client.request("sandbox/delete", { id });
});

step("a task naming a sandbox that does not exist fails at once and says so", async () => {
  await wb.command("Tasks: Run Task");
  await wb.quickPick("in a missing sandbox");
  const text = await wb.until("the task's message", async () => {
    const shown = await wb.terminalText();
    return /no sandbox "no-such-sandbox"/.test(shown) ? shown : undefined;
  }, 15_000);
  assert.match(text, /Sandboxes now: .*term-process/);
  await wb.shot("task-missing-sandbox");
  assert.equal(await wb.page.getByText("Continue without scanning the task output").count(), 0, "no problem-matcher question");
});

step("a task with several sandboxes asks which one, runs there, and names it in its output", async () => {
  await wb.command("Tasks: Run Task");
  await wb.quickPick("in whichever sandbox");
  await wb.quickPickAsking("in which sandbox?");
  await wb.quickPick("term-process");
  await wb.until("task.txt in the process sandbox", async () => (await wb.inSandbox(sandboxes.process.id, "task.txt")) === "from-task\n");
  await wb.until("the banner", async () => /In sandbox term-process \(process\): echo from-task/.test(await wb.terminalText()));
  assert.equal(await wb.page.getByText("Continue without scanning the task output").count(), 0, "no problem-matcher question");
  assert.equal(wb.onDisk("task.txt"), undefined);
  await wb.shot("task-in-sandbox");
});
