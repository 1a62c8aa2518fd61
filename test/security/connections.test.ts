/**
 * One client must never stall or starve the agent on its socket: framing that never goes
 * silent after a refused header. A real root agent on a real socket.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { socketPeer, startSocketAgent, tempDir, type AgentProcess } from "../helpers/agent-process";
import type { RpcMessage } from "../helpers/raw-peer";

const agents: AgentProcess[] = [];
after(async () => {
  for (const a of agents) await a.stop();
});

async function startAgent(env: NodeJS.ProcessEnv = {}): Promise<{ agent: AgentProcess; socketPath: string }> {
  const base = tempDir("paddock-sec-conn-");
  fs.chmodSync(base, 0o755);
  const socketPath = path.join(base, "run", "agent.sock");
  const agent = await startSocketAgent(path.join(base, "state"), socketPath, [], env);
  agents.push(agent);
  return { agent, socketPath };
}

function errorCode(m: RpcMessage | undefined): string | undefined {
  return m?.error?.data?.code;
}

/** A ping request, framed. */
function pingFrame(id: string): string {
  const body = JSON.stringify({ jsonrpc: "2.0", id, method: "system/ping", params: { data: id } });
  return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

test("after a header refused for its charset, the announced body is skipped and the next request answered", async () => {
  const { socketPath } = await startAgent();
  const client = await socketPeer(socketPath);
  assert.ok((await client.peer.call("initialize", {})).result);
  const latin1Body = JSON.stringify({ jsonrpc: "2.0", id: "latin1", method: "system/ping" });
  client.peer.sendBytes(`Content-Length: ${latin1Body.length}\r\nContent-Type: application/vscode-jsonrpc; charset=latin1\r\n\r\n${latin1Body}${pingFrame("after-charset")}`);
  const refusal = (await client.peer.next()) as RpcMessage;
  assert.equal(errorCode(refusal), "E_FRAME_HEADER");
  assert.match(refusal.error!.message, /UTF-8/);
  const answer = (await client.peer.next()) as RpcMessage;
  assert.deepEqual(answer.result, { data: "after-charset" }, `the next request is answered, got ${JSON.stringify(answer)}`);
  client.socket.destroy();
});

test("after a header with two different Content-Lengths, the client gets an error and the connection closes, never silence", async () => {
  const { socketPath } = await startAgent();
  const client = await socketPeer(socketPath);
  assert.ok((await client.peer.call("initialize", {})).result);
  client.peer.sendBytes(`Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}${pingFrame("after-two-lengths")}`);
  const refusal = (await client.peer.next()) as RpcMessage;
  assert.equal(errorCode(refusal), "E_FRAME_HEADER");
  assert.match(refusal.error!.message, /two different Content-Length/);
  assert.ok(refusal.error!.data?.hint);
  // Where that frame ends cannot be known, so nothing after it can be trusted: the next thing
  // the client sees is its answer or the end of the connection, not a wait.
  const after = await client.peer.next(5000).then(
    (m) => m as RpcMessage,
    (err: Error) => err,
  );
  if (after instanceof Error) assert.match(after.message, /ended/, "the connection closes");
  else assert.deepEqual(after.result, { data: "after-two-lengths" }, `got ${JSON.stringify(after)}`);
  client.socket.destroy();
});
