/** The real agent process over stdio, as the extension and LSP-style clients use it. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { runCli, startStdioAgent, tempDir } from "../helpers/agent-process";
import type { RpcMessage } from "../helpers/raw-peer";

test("stdio: initialize, errors, batch, then shutdown and exit end the process with code 0", async () => {
  const stateDir = path.join(tempDir(), "state");
  const agent = startStdioAgent(stateDir);
  const { peer } = agent;
  const init = await peer.call("initialize", { clientName: "stdio-test", protocolVersion: "1.0" });
  const result = init.result as { client: { uid: number; transport: string }; agent: { pid: number; stateDir: string } };
  assert.equal(result.client.transport, "stdio");
  assert.equal(result.client.uid, process.getuid!(), "stdio inherits the spawning user's identity");
  assert.equal(result.agent.pid, agent.child.pid);
  assert.equal(result.agent.stateDir, stateDir);

  peer.sendBytes("Content-Length: 3\r\n\r\n{x}");
  assert.equal(((await peer.next()) as RpcMessage).error?.code, -32700);
  assert.equal((await peer.call("nope")).error?.code, -32601);
  peer.sendJson([{ jsonrpc: "2.0", id: "a", method: "system/ping", params: { data: "1" } }]);
  assert.deepEqual(((await peer.next()) as RpcMessage[]).map((r) => r.result), [{ data: "1" }]);

  assert.equal((await peer.call("shutdown")).result, null);
  peer.sendJson({ jsonrpc: "2.0", method: "exit" });
  const { code } = await agent.exited;
  assert.equal(code, 0);

  // The log is JSON lines, and request lines carry their request id.
  const lines = fs.readFileSync(path.join(stateDir, "logs", "agent.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.some((l) => l.msg === "agent starting" && l.level === "info"));
  assert.ok(lines.some((l) => l.msg === "request" && l.method === "system/ping" && l.requestId === "a" && typeof l.connectionId === "number"));
  assert.match(agent.stderr(), /INFO\s+agent starting/);
});

test("stdio: exit without shutdown ends the process with code 1", async () => {
  const agent = startStdioAgent(path.join(tempDir(), "state"));
  await agent.peer.call("initialize", {});
  agent.peer.sendJson({ jsonrpc: "2.0", method: "exit" });
  assert.equal((await agent.exited).code, 1);
});

test("stdio: closing stdin stops the agent and releases the state dir", async () => {
  const stateDir = path.join(tempDir(), "state");
  const first = startStdioAgent(stateDir);
  await first.peer.call("initialize", {});
  first.child.stdin!.end();
  assert.equal((await first.exited).code, 0);
  const second = startStdioAgent(stateDir);
  assert.ok((await second.peer.call("initialize", {})).result, "the lock was released");
  await second.stop();
});

test("a state dir owned by someone else is refused clearly", async () => {
  const dir = tempDir();
  const foreign = path.join(dir, "foreign");
  fs.mkdirSync(foreign);
  fs.chownSync(foreign, 65534, 65534);
  const agent = startStdioAgent(foreign);
  const { code } = await agent.exited;
  assert.equal(code, 2);
  assert.match(agent.stderr(), /belongs to uid 65534/);
  assert.match(agent.stderr(), /hint:/);
});

test("a second CLI on a state dir held by a private stdio agent says who holds it", async () => {
  const stateDir = path.join(tempDir(), "state");
  const holder = startStdioAgent(stateDir);
  await holder.peer.call("initialize", {});
  const out = await runCli(["check", "--json", "--state-dir", stateDir], { env: { PADDOCK_SOCKET: "" } });
  assert.equal(out.code, 2);
  const error = (JSON.parse(out.stderr.trim().split("\n").pop()!) as { error: { code: string; message: string } }).error;
  assert.equal(error.code, "E_AGENT_UNREACHABLE");
  assert.match(error.message, new RegExp(`pid ${holder.child.pid}`));
  assert.equal(out.stderr.trim().split("\n").length, 1, "with --json, stderr holds only the JSON error");
  await holder.stop();
});
