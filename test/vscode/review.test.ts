/**
 * Review where the diff is, in a real workbench: a sandbox's change is approved or rejected on
 * the change itself (the diff editor's gutter), by keys at the cursor, per file from the
 * editor's title and from each file of the multi-file review, and in the sandbox's own file,
 * whose gutter peek reads the sandbox's version as the new one. The diff's sandbox side is
 * read-only: no revert arrow edits the sandbox behind the user's back.
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { Workbench, wholeLine, workbenchSteps } from "./workbench";

const LINES = Array.from({ length: 40 }, (_, i) => `line ${i + 1}\n`).join("");
const edit = (text: string, replacements: [number, string][]) => replacements.reduce((t, [n, line]) => t.replace(`line ${n}\n`, `${line}\n`), text);

let wb: Workbench;
const { step, failed } = workbenchSteps();
let id = "";

before(async () => {
  wb = await Workbench.open("review", {
    files: { "hunks.txt": LINES, "keys.txt": LINES, "title.txt": "workspace\n", "multi-a.txt": LINES, "multi-b.txt": "workspace\n", "peek.txt": LINES, "apart.txt": LINES, "based.txt": LINES, "clash.txt": LINES },
    settings: { "paddock.review.confirmReject": false },
  });
  ({ id } = await wb.client.request("sandbox/create", { workspace: wb.folder, name: "review" }));
});
after(async () => wb.close(failed()));


/** What a command in the sandbox writes (as an agent or a person in its terminal would). */
async function sandboxWrites(files: Record<string, string>): Promise<void> {
  const script = Object.entries(files).map(([rel, content]) => `printf '%s' '${content}' > ${rel}`).join("; ");
  const result = await wb.client.request("sandbox/exec", { id, argv: ["sh", "-c", script] });
  assert.equal(result.exitCode, 0, result.stderr);
}

/** Source Control's row of a file opens its diff. */
async function openDiff(rel: string, left = "Workspace"): Promise<void> {
  await wb.activity("Source Control");
  const tab = wb.page.locator(".tab", { hasText: `${rel} (${left} ↔ Sandbox review)` });
  // A click on a row that Source Control re-renders just then (a change listed) is lost: click again.
  for (let attempt = 1; ; attempt++) {
    await wb.row(".scm-view", rel).click({ timeout: 30_000 });
    try {
      await tab.waitFor({ timeout: 5_000 });
      break;
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
  await wb.page.locator(".monaco-diff-editor .editor.modified .view-lines").first().waitFor();
}

step("the diff's sandbox side is read-only: no revert arrows", async () => {
  await sandboxWrites({ "hunks.txt": edit(LINES, [[2, "line two"], [35, "line thirty-five"]]) });
  await openDiff("hunks.txt");
  await wb.page.locator(".monaco-diff-editor .editor.modified .view-line", { hasText: "line thirty-five" }).waitFor();
  assert.equal(await wb.page.locator(".monaco-diff-editor .arrow-revert-change").count(), 0, "no revert arrows");
  await wb.page.locator(".monaco-diff-editor .editor.modified .view-line", { hasText: "line two" }).click();
  await wb.page.keyboard.type("typed");
  await wb.until("the read-only message", async () => (await wb.page.getByText("Editor is read-only").count()) > 0, 5_000);
  assert.equal(await wb.inSandbox(id, "hunks.txt"), edit(LINES, [[2, "line two"], [35, "line thirty-five"]]));
});

step("Approve This Change in the diff's gutter writes that change only", async () => {
  await wb.gutterAction("line thirty-five", "Approve This Change");
  await wb.until("the change on disk", () => wb.onDisk("hunks.txt") === edit(LINES, [[35, "line thirty-five"]]));
  await wb.page.locator(".monaco-diff-editor .editor.original .view-line", { hasText: "line thirty-five" }).waitFor({ timeout: 10_000 });
  await wb.shot("review");
});

step("Reject This Change in the diff's gutter gives the sandbox the workspace's line back", async () => {
  await wb.gutterAction("line two", "Reject This Change");
  await wb.until("the sandbox's line back", async () => (await wb.inSandbox(id, "hunks.txt")) === edit(LINES, [[35, "line thirty-five"]]));
  assert.equal(wb.onDisk("hunks.txt"), edit(LINES, [[35, "line thirty-five"]]), "reject never touches the workspace");
  await wb.row(".scm-view", "hunks.txt").waitFor({ state: "detached", timeout: 30_000 });
});

step("keys: Alt+F5 to the next change, Ctrl+Alt+Enter approves it, Ctrl+Alt+Backspace rejects the next", async () => {
  await sandboxWrites({ "keys.txt": edit(LINES, [[5, "line five"], [30, "line thirty"]]) });
  await openDiff("keys.txt");
  await wb.page.locator(".monaco-diff-editor .editor.modified .view-line", { hasText: "line 1" }).first().click();
  await wb.page.keyboard.press("Control+Home");
  await wb.page.keyboard.press("Alt+F5");
  await wb.page.keyboard.press("Control+Alt+Enter");
  await wb.until("the first change approved", () => wb.onDisk("keys.txt") === edit(LINES, [[5, "line five"]]));
  await wb.page.keyboard.press("Alt+F5");
  await wb.page.keyboard.press("Control+Alt+Backspace");
  await wb.until("the second change rejected", async () => (await wb.inSandbox(id, "keys.txt")) === edit(LINES, [[5, "line five"]]));
  assert.equal(wb.onDisk("keys.txt"), edit(LINES, [[5, "line five"]]));
});

step("Approve File in the diff editor's title", async () => {
  await sandboxWrites({ "title.txt": "sandbox\n" });
  await openDiff("title.txt");
  await wb.page.locator(".editor-actions .action-label[aria-label^='Approve']").first().click();
  await wb.until("title.txt approved", () => wb.onDisk("title.txt") === "sandbox\n");
});

step("Review All Changes: each file's Approve and Reject, and a change's gutter action", async () => {
  await sandboxWrites({ "multi-a.txt": edit(LINES, [[3, "line three"], [33, "line thirty-three"]]), "multi-b.txt": "sandbox\n" });
  await wb.until("both in Source Control", async () => (await wb.row(".scm-view", "multi-b.txt").count()) > 0);
  await wb.command("Paddock: Review All Changes");
  await wb.page.locator(".tab", { hasText: "Sandbox review: all changes" }).waitFor({ timeout: 30_000 });
  const fileHeader = (rel: string) => wb.page.locator(".multiDiffEntry", { hasText: rel }).first();
  await fileHeader("multi-b.txt").waitFor({ timeout: 30_000 });
  await wb.shot("review-all");
  await fileHeader("multi-b.txt").locator(".action-label[aria-label^='Reject']").click();
  await wb.until("multi-b.txt rejected", async () => (await wb.inSandbox(id, "multi-b.txt")) === "workspace\n");
  await wb.gutterAction("line thirty-three", "Approve This Change", fileHeader("multi-a.txt"));
  await wb.until("one change of multi-a.txt approved", () => wb.onDisk("multi-a.txt") === edit(LINES, [[33, "line thirty-three"]]));
  assert.equal(wb.onDisk("multi-b.txt"), "workspace\n");
});

step("the sandbox's own file: its gutter peek shows the sandbox's line as the new one; Ctrl+Alt+Enter there approves it", async () => {
  await sandboxWrites({ "peek.txt": edit(LINES, [[8, "line eight"]]) });
  await openDiff("peek.txt");
  await wb.page.locator(".editor-actions .action-label[aria-label^='Edit in Sandbox']").first().click();
  await wb.page.locator(".tab.active", { hasText: "peek.txt" }).waitFor({ timeout: 30_000 });
  const glyph = wb.page.locator(".editor-instance .margin-view-overlays .dirty-diff-glyph").first();
  await glyph.waitFor({ timeout: 30_000 });
  await glyph.click({ position: { x: 2, y: 5 } });
  const peek = wb.page.locator(".dirty-diff").first();
  await peek.waitFor({ timeout: 10_000 });
  // The sandbox's line is the inserted (green) one, the workspace's the removed (red) one.
  await peek.locator(".line-insert, .char-insert").first().waitFor({ timeout: 10_000 });
  const inserted = await peek.locator(".editor.modified .view-line").allInnerTexts();
  assert.ok(inserted.some((l) => wholeLine("line eight").test(l)), `the sandbox's side of the peek: ${inserted.join(" | ")}`);
  await wb.shot("peek");
  await wb.page.keyboard.press("Escape");
  await wb.page.locator(".editor-instance .view-line", { hasText: "line eight" }).first().click();
  await wb.page.keyboard.press("Control+Alt+Enter");
  await wb.until("the change on disk", () => wb.onDisk("peek.txt") === edit(LINES, [[8, "line eight"]]));
});

/** Waits until the agent has the base of a path (the workspace's version when the sandbox first changed it). */
async function changed(rel: string): Promise<void> {
  await wb.until(`${rel} changed in the sandbox`, async () => (await wb.client.request("sandbox/changes", { id })).changes.some((c) => c.path === rel));
  await new Promise((r) => setTimeout(r, 500)); // the watcher records the base just after
}

/**
 * The user edits a workspace file the sandbox changed too: the agent then diffs it against the
 * sandbox's base, and the extension hears of the edit and lists the changes again.
 */
async function userEdits(rel: string, content: string): Promise<void> {
  fs.writeFileSync(wb.file(rel), content);
  await wb.until(`the agent diffs ${rel} against the base`, async () => (await wb.client.request("sandbox/changes", { id })).changes.find((c) => c.path === rel)?.againstBase === true);
  await new Promise((r) => setTimeout(r, 1000));
}

step("edits in lines apart: Approve merges the workspace's and the sandbox's, and says so", async () => {
  await sandboxWrites({ "apart.txt": edit(LINES, [[30, "line thirty, from the sandbox"]]) });
  await changed("apart.txt");
  await userEdits("apart.txt", edit(LINES, [[1, "# my heading"]]));
  await openDiff("apart.txt", "Base");
  await wb.page.locator(".editor-actions .action-label[aria-label^='Approve']").first().click();
  await wb.until("both edits on disk", () => wb.onDisk("apart.txt") === edit(LINES, [[1, "# my heading"], [30, "line thirty, from the sandbox"]]));
  await wb.notification("Merged with your own edits").waitFor({ timeout: 10_000 });
  await wb.shot("merged");
  assert.equal(await wb.inSandbox(id, "apart.txt"), wb.onDisk("apart.txt"), "the sandbox has the merge too");
});

/** The cursor to a line of the open diff's sandbox side, as a person does with Go to Line (a click can land on a line that scrolls away). */
async function cursorTo(line: number): Promise<void> {
  await wb.page.locator(".monaco-diff-editor .editor.modified .view-line").first().click();
  await wb.page.keyboard.press("Control+g");
  await wb.answer(`:${line}`);
  await wb.until(`the cursor on line ${line}`, async () => (await wb.page.locator(".statusbar").innerText()).includes(`Ln ${line},`), 5_000);
}

step("a file the user edited too: its diff is against the sandbox's base; a change approved there merges with the user's edit", async () => {
  const sandboxEdits: [number, string][] = [[5, "line five, sandbox"], [30, "line thirty, sandbox"]];
  await sandboxWrites({ "based.txt": edit(LINES, sandboxEdits) });
  await changed("based.txt");
  const mine = edit(LINES, [[15, "line fifteen, mine"]]);
  await userEdits("based.txt", mine);
  await openDiff("based.txt", "Base");
  await wb.page.locator(".monaco-diff-editor .editor.modified .view-line", { hasText: "line thirty, sandbox" }).waitFor();
  assert.equal(await wb.page.locator(".monaco-diff-editor .view-line", { hasText: "fifteen, mine" }).count(), 0, "the user's own line is not shown as the sandbox removing it");
  await wb.shot("against-base");
  // The keys on the change (the gutter's buttons act through the same selectors, tested above).
  await cursorTo(5);
  await wb.page.keyboard.press("Control+Alt+Enter");
  const merged = edit(mine, [[5, "line five, sandbox"]]);
  await wb.until("the change merged with the user's edit on disk", () => wb.onDisk("based.txt") === merged);
  await wb.notification("Merged with your own edits").waitFor({ timeout: 10_000 });
  // The sandbox keeps its other change, on top of both; rejecting it there gives the sandbox the workspace's file.
  await wb.until("the sandbox's copy rebased", async () => (await wb.inSandbox(id, "based.txt")) === edit(merged, [[30, "line thirty, sandbox"]]));
  await cursorTo(30);
  await wb.page.keyboard.press("Control+Alt+Backspace");
  await wb.until("the sandbox has the workspace's file", async () => (await wb.inSandbox(id, "based.txt")) === merged);
  assert.equal(wb.onDisk("based.txt"), merged, "reject never touches the workspace");
});

step("a real conflict opens VS Code's 3-way merge editor; the workspace gets the result only when the merge is completed", async () => {
  await sandboxWrites({ "clash.txt": edit(LINES, [[10, "line ten by the sandbox"]]) });
  await changed("clash.txt");
  const mine = edit(LINES, [[10, "line ten by me"]]);
  await userEdits("clash.txt", mine);
  await openDiff("clash.txt", "Base");
  await wb.page.locator(".editor-actions .action-label[aria-label^='Approve']").first().click();
  await wb.notification("changed in the workspace too").waitFor({ timeout: 10_000 });
  assert.equal(wb.onDisk("clash.txt"), mine, "a conflict never overwrites");
  await wb.activity("Source Control");
  await wb.inline(".scm-view", "clash.txt", "Merge");
  await wb.page.locator(".merge-editor").first().waitFor({ timeout: 30_000 });
  await wb.page.getByText("Sandbox review").first().waitFor();
  await wb.shot("merge-editor");
  assert.equal(wb.onDisk("clash.txt"), mine, "nothing written before the merge is completed");
  // The result starts as the workspace's version: the person takes the sandbox's line instead.
  await wb.page.getByText("Remove Workspace").first().click();
  await wb.page.getByText("Accept Sandbox review").first().click();
  await wb.page.locator(".editor-actions .action-label[aria-label^='Complete Merge']").first().click();
  await wb.until("the sandbox's line in the workspace", () => wb.onDisk("clash.txt") === edit(LINES, [[10, "line ten by the sandbox"]]));
  await wb.row(".scm-view", "clash.txt").waitFor({ state: "detached", timeout: 30_000 });
  assert.equal(await wb.inSandbox(id, "clash.txt"), wb.onDisk("clash.txt"), "the sandbox took the result");
});
