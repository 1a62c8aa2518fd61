/**
 * Create Sandbox in a real workbench, on a state dir whose first system check takes seconds:
 * the runtime pick shows at once (what works fills in when the check is in), the network is
 * asked with only the runtime's own, the view says the network; a command that cannot
 * resolve a host in a sandbox without network says why, with a way to get one.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { Workbench, workbenchSteps } from "./workbench";

let wb: Workbench;
const { step, failed } = workbenchSteps();

before(async () => {
  wb = await Workbench.open("create", { files: { "README.md": "hello\n" } });
});
after(async () => wb.close(failed()));


const picker = () => wb.page.locator(".quick-input-widget");

step("Create Sandbox shows the runtimes at once; each says what it uses once the check is in", async () => {
  const create = wb.page.locator(".welcome-view-content").getByRole("button", { name: "Create Sandbox" });
  await create.click();
  // No waiting for the check: the pick is there while it runs (the first check here boots a
  // VM, seconds), and says so.
  await picker().getByText("Process (bubblewrap)").waitFor({ timeout: 60_000 });
  assert.ok((await picker().getByText("checking what works here").count()) > 0, "the pick came before the check's answer");
  await wb.shot("runtime-pick");
  await picker().getByText(/using bwrap|using /).first().waitFor({ timeout: 60_000 });
  await wb.shot("runtime-pick-checked");
});

step("the network pick offers the runtime's own networks, offline first; the view shows the choice", async () => {
  await wb.quickPick("Process (bubblewrap)");
  await wb.quickPickAsking("Network for the sandbox");
  const rows = await picker().locator(".quick-input-list .monaco-list-row").allInnerTexts();
  assert.equal(rows.length, 2, `a process sandbox has no NAT: ${rows.join(" | ")}`);
  assert.match(rows[0]!, /^offline/);
  assert.match(rows[1]!, /^host network/);
  await wb.shot("network-pick");
  await wb.quickPick("host network");
  await wb.quickPickAsking("a name is made up");
  await wb.answer("online");
  await wb.row(".pane-body", "online").locator(".label-description", { hasText: "process · host network" }).waitFor({ timeout: 60_000 });
});

step("a sandbox without network: a command that cannot resolve a host says why, with a way to get one", async () => {
  await wb.client.request("sandbox/create", { workspace: wb.folder, name: "offline-one" });
  await wb.row(".pane-body", "offline-one").locator(".label-description", { hasText: "offline" }).waitFor({ timeout: 30_000 });
  await wb.inline(".pane-body", "offline-one", "New Sandbox Terminal");
  await wb.terminalTab("offline-one").waitFor({ timeout: 30_000 });
  await wb.typeInTerminal("curl -sS https://registry.npmjs.org/ >/dev/null\n");
  const hint = wb.notification("has no network");
  await hint.waitFor({ timeout: 30_000 });
  assert.match(await hint.innerText(), /Sandbox offline-one has no network/);
  await wb.shot("offline-hint");
  await hint.getByRole("button", { name: "Create a Sandbox with Network" }).click();
  await picker().getByText("Process (bubblewrap)").waitFor({ timeout: 10_000 });
  await wb.page.keyboard.press("Escape");
});
