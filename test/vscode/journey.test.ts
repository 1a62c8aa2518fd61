/**
 * The whole journey once per runtime, as a person makes it in a real workbench: Create
 * Sandbox from the Paddock view (runtime, network, name), a terminal in it that edits the
 * folder, the changes in the view and in Source Control, one change approved in the diff's
 * gutter and another rejected there, both undone (the notification's Undo, the command), then
 * Delete. After each step, what is on disk.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { Workbench, workbenchSteps } from "./workbench";

const LINES = Array.from({ length: 30 }, (_, i) => `line ${i + 1}\n`).join("");
const RUNTIMES = [
  { runtime: "process", pick: "Process (bubblewrap)" },
  { runtime: "container", pick: "Container (OCI)" },
  { runtime: "vm", pick: "Micro-VM (QEMU)" },
] as const;

let wb: Workbench;
const { step, failed } = workbenchSteps();

before(async () => {
  wb = await Workbench.open("journey", { files: Object.fromEntries(RUNTIMES.map(({ runtime }) => [`${runtime}.txt`, LINES])), settings: { "paddock.review.confirmReject": false } });
});
after(async () => wb.close(failed()));

for (const { runtime, pick } of RUNTIMES) {
  step(`the journey in a ${runtime} sandbox: create, terminal, review, approve a change, reject one, undo both, delete`, async () => {
    const file = `${runtime}.txt`;
    const name = `trip-${runtime}`;
    await wb.activity("Paddock");
    // The + in the view's title (the sidebar's own, as the view is alone in it).
    await wb.page.locator(".sidebar .title-actions .action-label[aria-label^='Create Sandbox']").first().click();
    await wb.quickPick(pick);
    await wb.quickPickAsking("Network for the sandbox");
    await wb.quickPick("offline");
    await wb.quickPickAsking("a name is made up");
    await wb.answer(name);
    await wb.row(".pane-body", name).waitFor({ timeout: 120_000 });

    await wb.inline(".pane-body", name, "New Sandbox Terminal");
    await wb.terminalTab(name).waitFor({ timeout: 60_000 });
    await wb.typeInTerminal(`sed -i 's/^line 3$/line three/; s/^line 27$/line twenty-seven/' ${file}; echo done-$((6*7))\n`);
    await wb.until("the command's end in the terminal", async () => (await wb.terminalText()).includes("done-42"), 60_000);
    await wb.row(".pane-body", name).locator(".label-description", { hasText: "1 change" }).waitFor({ timeout: 30_000 });
    assert.equal(wb.onDisk(file), LINES, "nothing reached the workspace");
    await wb.shot(`${runtime}-terminal`);

    // The panel away, as a person makes room to read the diff (the terminal keeps running).
    await wb.page.keyboard.press("Control+j");
    await wb.row(".pane-body", new RegExp(`^${file.replace(".", "\\.")}`)).click();
    await wb.page.locator(".tab", { hasText: `${file} (Workspace ↔ Sandbox ${name})` }).waitFor({ timeout: 30_000 });
    await wb.gutterAction("line twenty-seven", "Approve This Change");
    await wb.until("the approved change on disk", () => wb.onDisk(file) === LINES.replace("line 27\n", "line twenty-seven\n"));
    await wb.gutterAction("line three", "Reject This Change");
    await wb.row(".pane-body", name).locator(".label-description", { hasText: "0 changes" }).waitFor({ timeout: 30_000 });
    assert.equal(wb.onDisk(file), LINES.replace("line 27\n", "line twenty-seven\n"), "reject never touches the workspace");
    await wb.shot(`${runtime}-reviewed`);

    // Undo: the reject from its notification, the approve from the command's list.
    await wb.notification(`Rejected ${file}.`).getByRole("button", { name: "Undo", exact: true }).click();
    await wb.row(".pane-body", name).locator(".label-description", { hasText: "1 change" }).waitFor({ timeout: 30_000 });
    const { sandboxes } = await wb.client.request("sandbox/list", {});
    const id = sandboxes.find((sb) => sb.name === name)!.id;
    assert.match((await wb.inSandbox(id, file)) ?? "", /^line three$/m, "the sandbox has its rejected change back");
    await wb.command("Paddock: Undo Approve or Reject…");
    await wb.quickPickAsking("Undo which approve or reject?");
    await wb.shot(`${runtime}-undo-list`);
    await wb.quickPick("Approved 1 file");
    await wb.until("the workspace's own version back", () => wb.onDisk(file) === LINES);
    await wb.row(".pane-body", name).locator(".label-description", { hasText: "1 change" }).waitFor({ timeout: 30_000 });
    await wb.notification(`Undid the approve of ${file}`).waitFor({ timeout: 10_000 });

    await wb.inline(".pane-body", name, "Delete Sandbox");
    // The undone approve is a change again: deleting asks, and the safe look is the default.
    await wb.dialogButton("Delete");
    await wb.row(".pane-body", name).waitFor({ state: "detached", timeout: 60_000 });
    // The panel back (it shows the terminals): the sandbox's is gone.
    await wb.page.keyboard.press("Control+j");
    await wb.page.locator(".panel").first().waitFor();
    await wb.until("its terminal closed", async () => (await wb.terminalTab(name).count()) === 0, 10_000);
    assert.equal(await wb.page.locator(".tab", { hasText: `Sandbox ${name})` }).count(), 0, "its diff closed");
    assert.equal(wb.onDisk(file), LINES, "the undone approve stays undone");
  });
}
