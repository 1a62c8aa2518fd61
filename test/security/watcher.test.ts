/**
 * One sandbox making folders by the ten thousand must not use up the host's inotify watches,
 * nor stall the agent for its other clients, nor grow it without bound; and its live updates
 * must keep coming. A real root agent on a socket, a real user (made with useradd) whose
 * sandbox churns, and another client timing its own requests meanwhile.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import type { AgentNotifications } from "../../protocol/methods";
import { UpperWatcher } from "../../agent/changeset/upper-watcher";
import { UpperFormat } from "../../agent/changeset/upper-format";
import { tempDir } from "../helpers/agent-process";
import { callAsInBackground, ensureUser, type CallResult, type TestUser } from "../helpers/users";
import { makeWorkspace, startFixture, waitFor, type Fixture } from "../helpers/sandbox-fixture";
import { inotifyWatches, rssMiB } from "../helpers/proc";

const USER = "paddock-churn";
const GROUP = "paddock-churn-grp";
/** The agent's default allowance of inotify watches for one sandbox. */
const WATCHES_PER_SANDBOX = 2000;
const FOLDERS = 20 * 1000;
/** 20 folders of 1,000 folders each: one mkdir per thousand, so the churn itself takes a second or so. */
const CHURN = "for i in $(seq 1 20); do mkdir d$i && (cd d$i && mkdir $(seq 1 1000)); done";

let fx: Fixture;
let user: TestUser;

before(async () => {
  user = ensureUser(USER, GROUP);
  fx = await startFixture(["--socket-group", GROUP]);
});

after(async () => {
  await fx.stop();
});

type Answer = CallResult;

/** Protocol calls over one connection as the churning user, without blocking this process meanwhile. */
const callAsUser = (calls: [string, unknown][]): Promise<Answer[]> => callAsInBackground(fx.socketPath, user, calls);

function resultOf(answer: Answer | undefined): Record<string, unknown> {
  assert.ok(answer?.result, JSON.stringify(answer));
  return answer.result;
}

/** inotify watches a process holds, over all its inotify descriptors. */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(`a sandbox making ${FOLDERS} folders holds at most ${WATCHES_PER_SANDBOX} inotify watches; other clients are answered, the agent stays small, live updates keep coming`, async (t) => {
  const pid = fx.agent.child.pid!;
  const admin = await fx.client();
  const { id: otherId } = await admin.request("sandbox/create", { workspace: makeWorkspace(fx.base, "ws-other") });
  await admin.request("sandbox/exec", { id: otherId, argv: ["sh", "-c", "echo changed > README.md"] });
  const [created] = await callAsUser([["sandbox/create", { workspace: makeWorkspace(fx.base, "ws-churn", user.uid, user.gid) }]]);
  const id = resultOf(created).id as string;
  const seen: string[] = [];
  admin.onNotification((method, params) => {
    const change = params as AgentNotifications["sandbox/didChange"];
    if (method === "sandbox/didChange" && change.id === id) seen.push(...change.paths);
  });
  const rssBefore = rssMiB(pid);
  // The other sandbox's watches, and the churning one's on its upper directory.
  const watchesBefore = inotifyWatches(pid);

  let churning = true;
  const churn = callAsUser([["sandbox/exec", { id, argv: ["sh", "-c", CHURN] }]]).finally(() => (churning = false));
  const answerMs: number[] = [];
  let watches = 0;
  let rss = 0;
  // While it churns, and a few seconds after (the agent may still be catching up).
  let until = Infinity;
  while (Date.now() < until) {
    const started = performance.now();
    await admin.request("sandbox/list");
    await admin.request("sandbox/changes", { id: otherId });
    answerMs.push(performance.now() - started);
    watches = Math.max(watches, inotifyWatches(pid));
    rss = Math.max(rss, rssMiB(pid));
    if (!churning && until === Infinity) until = Date.now() + 3000;
    await sleep(50);
  }
  const [ran] = await churn;
  assert.equal(resultOf(ran).exitCode, 0, JSON.stringify(ran));
  assert.equal(execFileSync("find", [path.join(fx.stateDir, "sandboxes", id, "upper"), "-mindepth", "1", "-type", "d", "-printf", "."]).length, FOLDERS + 20);
  t.diagnostic(`inotify watches ${watchesBefore} -> ${watches} at most, slowest answer ${Math.round(Math.max(...answerMs))} ms, RSS ${Math.round(rssBefore)} -> ${Math.round(rss)} MiB`);

  assert.ok(watches - watchesBefore <= WATCHES_PER_SANDBOX, `the agent held ${watches} inotify watches, ${watchesBefore} before the churn (at most ${WATCHES_PER_SANDBOX} more)`);
  const slowest = Math.max(...answerMs);
  assert.ok(slowest < 3000, `another client waited ${Math.round(slowest)} ms for sandbox/list + sandbox/changes while the sandbox churned`);
  assert.ok(rss - rssBefore < 200, `the agent grew from ${Math.round(rssBefore)} to ${Math.round(rss)} MiB`);

  // A file written afterwards, deep in a folder past the watched ones, is reported by name. A
  // write while the churn's own tail is still being rescanned may be folded into "list
  // everything again" ([""]): the next one is then reported by name.
  for (let attempt = 1; ; attempt++) {
    const late = `d20/1000/late-${attempt}.txt`;
    const from = seen.length;
    const [written] = await callAsUser([["sandbox/exec", { id, argv: ["sh", "-c", `echo late > ${late}`] }]]);
    assert.equal(resultOf(written).exitCode, 0, JSON.stringify(written));
    const heard = await waitFor(`sandbox/didChange naming ${late}`, () => (seen.slice(from).includes(late) ? "by name" : seen.slice(from).includes("") ? "everything" : undefined), 60_000);
    if (heard === "by name") break;
    assert.ok(attempt < 4, `written files were only ever reported as "list everything again"`);
  }
});

test("watches are shared out and given back: past the agent's budget a sandbox is rescanned, and removed folders free their watches", async () => {
  const reported = new Map<string, string[]>();
  const watcher = new UpperWatcher(UpperFormat.kernel, (id, paths) => reported.set(id, [...(reported.get(id) ?? []), ...paths]), { perSandbox: 50, total: 60 });
  const reports = (id: string, rel: string) =>
    waitFor(`${id} to report ${rel}`, () => (reported.get(id)?.includes(rel) ? true : undefined), 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; reported: ${JSON.stringify(reported.get(id)?.slice(-10))}`);
    });
  const sh = (dir: string, script: string) => execFileSync("sh", ["-c", script], { cwd: dir });
  const held = () => inotifyWatches(process.pid);
  const before = held();
  const a = tempDir("paddock-upper-a-");
  const b = tempDir("paddock-upper-b-");
  try {
    await watcher.watch("a", a);
    await watcher.watch("b", b);
    sh(a, "mkdir -p x/y/z && echo 1 > x/y/z/f");
    await reports("a", "x/y/z/f"); // made before its folder's watch was set: listed
    sh(a, "mv x moved && echo 2 > moved/y/z/g");
    await reports("a", "moved/y/z/g");

    // Past its allowance: a holds 50 watches, and a folder without one is still reported.
    sh(a, "mkdir $(seq 1 200) && for i in $(seq 1 200); do mkdir $i/sub; done");
    await waitFor("a to use its allowance", () => (held() - before === 51 ? true : undefined)); // 50 of a's, b's upper directory
    sh(a, "echo deep > 150/sub/deep.txt");
    await reports("a", "150/sub/deep.txt");

    // b gets what is left of the agent's 60, and falls back on rescans past that.
    sh(b, "mkdir $(seq 1 30)");
    await waitFor("b to use the rest of the budget", () => (held() - before === 60 ? true : undefined));
    sh(b, "echo late > 25/late.txt");
    await reports("b", "25/late.txt");

    sh(a, "rm -rf moved $(seq 1 200)");
    await waitFor("a's watches given back", () => (held() - before <= 11 ? true : undefined));
  } finally {
    await watcher.closeAll();
  }
  assert.equal(held(), before, "every watch ends with the watcher");
});
