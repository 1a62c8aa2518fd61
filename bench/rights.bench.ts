/**
 * What acting with a user's rights costs: approve of 1,000 modified files of a user's
 * workspace, done with the owner's rights (a thread credential switch around each file
 * operation, agent/sys/credentials.ts) beside the same approve with the agent's own rights,
 * on fresh copies of the same files in the same run. The review code is called directly on an
 * upper directory made by hand, so that only the switching differs.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { approve } from "../agent/review/approve";
import { BaseStore } from "../agent/review/bases";
import { listChanges } from "../agent/changeset/changes";
import { UpperFormat } from "../agent/changeset/upper-format";
import { Logger } from "../agent/log/logger";
import type { UserRights } from "../agent/sys/credentials";
import { userRights } from "../agent/sys/users";
import { withUserRights } from "../agent/sys/credentials";
import { percentile, ratio, round, timeMs, writeResults, type Row } from "./lib";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const FILES = 1000;
const USER = "paddock-bench";

function benchUser(): UserRights {
  if (spawnSync("id", [USER]).status !== 0) execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", USER]);
  const rights = userRights(Number(execFileSync("id", ["-u", USER]).toString().trim()));
  if (!rights) throw new Error(`${USER} is not in the user database`);
  return rights;
}

/** A workspace of the user's and an upper directory in which every file was modified. */
function makeRound(work: string, n: number, owner: UserRights): { ws: string; upper: string; state: string } {
  const ws = path.join(work, `ws-${n}`);
  const upper = path.join(work, `upper-${n}`);
  const state = path.join(work, `state-${n}`);
  fs.mkdirSync(state);
  for (const [root, suffix] of [[ws, ""], [upper, "approved\n"]] as const) {
    for (let d = 0; d < 10; d++) fs.mkdirSync(path.join(root, `d${d}`), { recursive: true });
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(root, `d${i % 10}`, `f${i}.txt`), `file ${i}\n`.repeat(50) + suffix);
  }
  execFileSync("chown", ["-R", `${owner.uid}:${owner.gid}`, ws, upper]);
  return { ws, upper, state };
}

async function approveOnce(work: string, n: number, owner: UserRights, rights: UserRights | undefined): Promise<number> {
  const { ws, upper, state } = makeRound(work, n, owner);
  const st = fs.statSync(ws);
  const changes = await listChanges(upper, ws, UpperFormat.kernel);
  execFileSync("sync");
  let applied = 0;
  const ms = await timeMs(async () => {
    const result = await approve(
      {
        sandboxId: `bench-${n}`,
        workspace: ws,
        workspaceId: `${st.dev}:${st.ino}`,
        upper,
        upperFormat: UpperFormat.kernel,
        journal: path.join(state, "journal.json"),
        bases: new BaseStore(path.join(state, "bases.json")),
        rights,
        chown: false,
        log: new Logger([], "error"),
      },
      changes,
      // No bases were recorded, and the chown made every workspace file newer than its change.
      { force: true },
    );
    applied = result.applied.length;
  });
  if (applied !== FILES) throw new Error(`approve applied ${applied} of ${FILES} files`);
  return ms;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("the rights benchmark needs root (it acts for another user)");
  const owner = benchUser();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-bench-rights-"));
  // The owner reaches their workspace through it, as a user reaches their home.
  fs.chmodSync(work, 0o755);
  const asUser: number[] = [];
  const asAgent: number[] = [];
  try {
    for (let n = 0; n < ROUNDS; n++) {
      // Alternated, so that the file system's state drifts the same way for both.
      asUser.push(await approveOnce(work, 2 * n, owner, owner));
      asAgent.push(await approveOnce(work, 2 * n + 1, owner, undefined));
    }
    const switches = 10_000;
    const switchMs = await timeMs(() => {
      for (let i = 0; i < switches; i++) withUserRights(owner, () => undefined);
    });
    const userP50 = round(percentile(asUser, 50));
    const agentP50 = round(percentile(asAgent, 50));
    const switchUs = round((switchMs * 1000) / switches);
    const rows: Row[] = [
      [`approve of ${FILES} modified files with the owner's rights (p50)`, `${userP50} ms`, `the same with the agent's own rights ${agentP50} ms (×${ratio(userP50, agentP50)})`, "≤ ×1.5", userP50 <= agentP50 * 1.5],
      ["one switch to a user's rights and back", `${switchUs} µs`, "", "", undefined],
    ];
    writeResults("rights", "Acting with a user's rights", "Anchors are measured on fresh copies of the same files in the same run.", { files: FILES, ownerRightsMs: asUser.map(round), agentRightsMs: asAgent.map(round), switchUs }, rows);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

void main();
