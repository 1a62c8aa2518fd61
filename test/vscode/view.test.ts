/**
 * The Paddock view and what a sandbox leaves behind, in a real workbench: rows that say the
 * runtime, the network and the changes, with room for their label; actions only where they
 * do something; each sandbox's changed files under it; the multi-file review following
 * approve and reject; deleting a sandbox closes its terminal, diffs and review without an
 * error, asks only when changes would be lost, and never makes Delete the default button
 * (the default shows what would be lost).
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { Workbench, workbenchSteps } from "./workbench";

let wb: Workbench;
const { step, failed } = workbenchSteps();
let boxed = "";

before(async () => {
  wb = await Workbench.open("view", { files: { "a.txt": "workspace a\n", "b.txt": "workspace b\n", "c.txt": "workspace c\n" }, settings: { "paddock.review.confirmReject": false } });
  await wb.client.request("sandbox/create", { workspace: wb.folder, name: "plain" });
  ({ id: boxed } = await wb.client.request("sandbox/create", { workspace: wb.folder, runtime: "container", name: "boxed" }));
  const made = await wb.client.request("sandbox/exec", { id: boxed, argv: ["sh", "-c", "echo sandbox a > a.txt; echo sandbox b > b.txt; echo sandbox c > c.txt"] });
  assert.equal(made.exitCode, 0, made.stderr);
});
after(async () => wb.close(failed()));


const sandboxRow = (name: string) => wb.page.locator(".pane-body .monaco-list-row", { has: wb.page.locator(".label-name", { hasText: new RegExp(`^${name}$`) }) }).first();

/** The inline actions a row shows on hover. */
async function hoverActions(name: string): Promise<string[]> {
  const row = sandboxRow(name);
  await row.hover();
  await row.locator(".actions .action-label").first().waitFor({ timeout: 10_000 });
  return row.locator(".actions .action-label").evaluateAll((els) => els.filter((e) => (e as unknown as { offsetParent: unknown }).offsetParent !== null).map((e) => e.getAttribute("aria-label") ?? ""));
}

step("rows say runtime, network and changes; hover actions fit beside the name and exist only where they do something", async () => {
  await sandboxRow("boxed").locator(".label-description", { hasText: "3 changes" }).waitFor({ timeout: 30_000 });
  assert.equal(await sandboxRow("boxed").locator(".label-description").innerText(), "container busybox:latest · offline · 3 changes");
  assert.equal(await sandboxRow("plain").locator(".label-description").innerText(), "process · offline · 0 changes");
  assert.deepEqual(await hoverActions("plain"), ["New Sandbox Terminal", "Delete Sandbox"], "nothing to review or approve");
  assert.deepEqual(await hoverActions("boxed"), ["New Sandbox Terminal", "Review All Changes", "Delete Sandbox"]);
  const label = await sandboxRow("boxed").locator(".label-name").boundingBox();
  const actions = await sandboxRow("boxed").locator(".actions").boundingBox();
  assert.ok(label && actions && label.x + label.width <= actions.x, "the name is not under the actions");
  await wb.shot("view-rows");
  await sandboxRow("plain").click({ button: "right" });
  const menu = wb.page.locator(".context-view .monaco-menu");
  await menu.waitFor();
  assert.equal(await menu.getByText("Approve All", { exact: true }).count(), 0, "no Approve All without changes");
  await wb.page.keyboard.press("Escape");
  await sandboxRow("boxed").click({ button: "right" });
  await menu.getByText("Approve All", { exact: true }).waitFor();
  await wb.page.keyboard.press("Escape");
});

step("the Explorer marks a sandbox's files with its own letters; the Source Control badge can leave them out", async () => {
  await wb.activity("Explorer");
  const row = wb.row(".explorer-folders-view", /^a\.txt/);
  await row.waitFor({ timeout: 30_000 });
  // File decorations are drawn as a label's ::after content.
  const badges = () =>
    row.evaluate((el) => {
      // Runs in the page: its DOM, typed loosely here (the tests' TypeScript has no DOM library).
      const page = globalThis as unknown as { getComputedStyle(e: unknown, pseudo: string): { content: string } };
      const all = (el as unknown as { querySelectorAll(s: string): ArrayLike<unknown> }).querySelectorAll("*");
      return Array.from(all).map((e) => page.getComputedStyle(e, "::after").content).filter((c) => c && c !== "none" && c !== '""' && c !== "normal");
    });
  await wb.until("the sandbox's badge on a.txt", async () => ((await badges()).some((b) => b.includes("SM")) ? true : undefined), 10_000);
  await wb.shot("explorer-decorations");
  const scmBadge = wb.page.locator(".activitybar .action-item:has([aria-label^='Source Control']) .badge-content");
  await wb.until("3 in the Source Control badge", async () => (await scmBadge.count()) > 0 && (await scmBadge.innerText()) === "3");
  // The setting, as a person turns it off: the Settings editor, its search, its checkbox.
  await wb.command("Preferences: Open User Settings");
  await wb.page.locator(".settings-editor").waitFor({ timeout: 30_000 });
  await wb.page.keyboard.type("paddock.review.countInSourceControlBadge");
  const checkbox = wb.page.locator(".settings-editor .setting-item-bool .setting-value-checkbox").first();
  await checkbox.waitFor({ timeout: 30_000 });
  // A click while the Settings editor still lays out its search results can be lost: the
  // checkbox then stays checked, and is clicked again (never once it shows unchecked).
  const unchecked = async () => (await checkbox.getAttribute("aria-checked")) === "false";
  for (let attempt = 0; attempt < 3 && !(await unchecked()); attempt++) {
    await checkbox.click();
    for (const deadline = Date.now() + 3_000; Date.now() < deadline && !(await unchecked()); ) await new Promise((r) => setTimeout(r, 100));
  }
  await wb.until("no count in the Source Control badge", async () => (await scmBadge.count()) === 0 || !(await scmBadge.isVisible()) || (await scmBadge.innerText()) === "");
  await wb.shot("badge-setting-off");
  await wb.page.keyboard.press("Control+w");
  await wb.activity("Paddock");
});

step("a sandbox's changed files are listed under it: a click opens the diff, a row's Approve writes the file", async () => {
  const fileRow = (name: string) => wb.row(".pane-body", new RegExp(`^${name}`));
  await fileRow("a.txt").click();
  await wb.page.locator(".tab", { hasText: "a.txt (Workspace ↔ Sandbox boxed)" }).waitFor({ timeout: 30_000 });
  await wb.inline(".pane-body", /^b\.txt/, "Approve");
  await wb.until("b.txt approved", () => wb.onDisk("b.txt") === "sandbox b\n");
  await wb.row(".pane-body", /^b\.txt/).waitFor({ state: "detached", timeout: 30_000 });
});

step("the multi-file review follows a reject made elsewhere: the file leaves it, in the same tab", async () => {
  await wb.inline(".pane-body", "boxed", "Review All Changes");
  const review = wb.page.locator(".tab", { hasText: "Sandbox boxed: all changes" });
  await review.filter({ hasText: "(2 files)" }).waitFor({ timeout: 30_000 });
  await wb.activity("Paddock");
  await wb.inline(".pane-body", /^c\.txt/, "Reject");
  await review.filter({ hasText: "(1 file)" }).waitFor({ timeout: 30_000 });
  assert.equal(await review.count(), 1, "the same tab, not a second one");
  assert.equal(await wb.page.locator(".multiDiffEntry", { hasText: "c.txt" }).filter({ visible: true }).count(), 0, "c.txt left the review");
  assert.equal(await wb.inSandbox(boxed, "c.txt"), "workspace c\n");
});

step("deleting a sandbox with changes asks, its default button safe; then its terminal, diff and review close without an error", async () => {
  await wb.activity("Paddock");
  await wb.inline(".pane-body", "boxed", "New Sandbox Terminal");
  await wb.terminalTab("boxed").waitFor({ timeout: 30_000 });
  await wb.inline(".pane-body", "boxed", "Delete Sandbox");
  const buttons = wb.dialog().locator(".monaco-button");
  await buttons.first().waitFor();
  assert.deepEqual((await buttons.allInnerTexts()).sort(), ["Cancel", "Delete", "Review Changes"]);
  assert.deepEqual(await wb.dialog().locator(".monaco-button:not(.secondary)").allInnerTexts(), ["Review Changes"], "the default button is the safe one");
  await wb.shot("delete-confirm");
  // Enter takes the default button: the safe one, which shows what would be lost.
  await wb.page.keyboard.press("Enter");
  await wb.dialog().waitFor({ state: "detached" });
  await wb.page.locator(".tab", { hasText: "Sandbox boxed: all changes" }).waitFor();
  assert.ok(await sandboxRow("boxed").isVisible(), "Enter deleted nothing");
  // The approve and reject before left their Undo notifications; the delete must add none.
  const toastsBefore = await wb.page.locator(".notification-toast").allInnerTexts();
  await wb.inline(".pane-body", "boxed", "Delete Sandbox");
  await wb.dialogButton("Delete");
  await sandboxRow("boxed").waitFor({ state: "detached", timeout: 60_000 });
  await wb.until("its tabs and terminal closed", async () => (await wb.page.locator(".tab", { hasText: "Sandbox boxed" }).count()) === 0 && (await wb.page.locator(".tab", { hasText: "a.txt (Workspace" }).count()) === 0 && (await wb.terminalTab("boxed").count()) === 0);
  await new Promise((r) => setTimeout(r, 1000));
  const toastsAfter = await wb.page.locator(".notification-toast").allInnerTexts();
  assert.deepEqual(toastsAfter.filter((t) => !toastsBefore.includes(t)), [], "no notification from the delete");
});

step("deleting a sandbox without changes does not ask", async () => {
  await wb.inline(".pane-body", "plain", "Delete Sandbox");
  await sandboxRow("plain").waitFor({ state: "detached", timeout: 30_000 });
  assert.equal(await wb.dialog().count(), 0);
});
