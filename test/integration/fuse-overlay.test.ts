/** The fuse-overlayfs fallback, forced with PADDOCK_CHANGESET: the same sandbox behaviour through a FUSE mount. */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AgentClient } from "../../agent/protocol/client";
import { makeWorkspace, mountsUnder, startFixture, treeHash, type Fixture } from "../helpers/sandbox-fixture";

let fx: Fixture;
let client: AgentClient;

before(async () => {
  process.env.PADDOCK_CHANGESET = "fuse-overlayfs"; // the agent inherits it
  fx = await startFixture();
  client = await fx.client();
});
after(async () => {
  await fx.stop();
});

test("fuse-overlayfs: writes land only in the sandbox, survive stop and start, and delete unmounts", async () => {
  assert.match(fs.readFileSync(path.join(fx.stateDir, "logs", "agent.log"), "utf8"), /"using":"fuse-overlayfs"/);
  const ws = makeWorkspace(fx.base, "ws-fuse");
  const before = treeHash(ws);
  const { id } = await client.request("sandbox/create", { workspace: ws });
  const merged = path.join(fx.stateDir, "sandboxes", id, "merged");
  assert.match(fs.readFileSync("/proc/self/mounts", "utf8"), new RegExp(`${merged} fuse\\.fuse-overlayfs `));
  const run = await client.request("sandbox/exec", { id, argv: ["sh", "-c", "echo fuse >> README.md; echo new > new.txt; rm delete-me.txt; cat README.md"] });
  assert.equal(run.stdout, "# demo\nfuse\n", run.stderr);
  assert.equal(treeHash(ws), before);
  const upper = path.join(fx.stateDir, "sandboxes", id, "upper");
  assert.equal(fs.readFileSync(path.join(upper, "new.txt"), "utf8"), "new\n");
  await client.request("sandbox/stop", { id });
  assert.deepEqual(mountsUnder(merged), []);
  await client.request("sandbox/start", { id });
  assert.equal((await client.request("sandbox/exec", { id, argv: ["cat", "new.txt"] })).stdout, "new\n");
  await client.request("sandbox/delete", { id });
  assert.deepEqual(mountsUnder(path.join(fx.stateDir, "sandboxes")), []);
});
