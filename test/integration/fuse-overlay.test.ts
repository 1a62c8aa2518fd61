/** The fuse-overlayfs fallback, forced with PADDOCK_CHANGESET: the same sandbox behaviour through a FUSE mount. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { fixtureForFile, makeWorkspace, mountsUnder, treeHash } from "../helpers/sandbox-fixture";

process.env.PADDOCK_CHANGESET = "fuse-overlayfs"; // the agent inherits it
const shared = fixtureForFile();

test("fuse-overlayfs: writes land only in the sandbox, survive stop and start, and delete unmounts", async () => {
  assert.match(fs.readFileSync(path.join(shared.fx.stateDir, "logs", "agent.log"), "utf8"), /"using":"fuse-overlayfs"/);
  const ws = makeWorkspace(shared.fx.base, "ws-fuse");
  const before = treeHash(ws);
  const { id } = await shared.client.request("sandbox/create", { workspace: ws });
  const merged = path.join(shared.fx.stateDir, "sandboxes", id, "merged");
  assert.match(fs.readFileSync("/proc/self/mounts", "utf8"), new RegExp(`${merged} fuse\\.fuse-overlayfs `));
  const run = await shared.client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo fuse >> README.md; echo new > new.txt; rm delete-me.txt; cat README.md"] });
  assert.equal(run.stdout, "# demo\nfuse\n", run.stderr);
  assert.equal(treeHash(ws), before);
  const upper = path.join(shared.fx.stateDir, "sandboxes", id, "upper");
  assert.equal(fs.readFileSync(path.join(upper, "new.txt"), "utf8"), "new\n");
  await shared.client.request("sandbox/stop", { id });
  assert.deepEqual(mountsUnder(merged), []);
  await shared.client.request("sandbox/start", { id });
  assert.equal((await shared.client.request("sandbox/exec", { id, argv: ["cat", "new.txt"] })).stdout, "new\n");
  await shared.client.request("sandbox/delete", { id });
  assert.deepEqual(mountsUnder(path.join(shared.fx.stateDir, "sandboxes")), []);
});
