/** JSON-RPC behaviour of the whole stack (framing, connection, dispatcher, lifecycle) over in-memory streams. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { startInMemoryAgent, connect } from "../helpers/in-memory-agent";
import type { RpcMessage } from "../helpers/raw-peer";
import { PROTOCOL_VERSION } from "../../protocol/methods";
import { MAX_BATCH } from "../../agent/server/dispatcher";
import { encodeFrame } from "../../protocol/framing";

async function initialized() {
  const pair = startInMemoryAgent();
  const res = await pair.peer.call("initialize", { clientName: "test", protocolVersion: PROTOCOL_VERSION });
  assert.equal(res.error, undefined);
  return pair;
}

test("initialize answers with versions, capabilities and the caller's uid", async () => {
  const { peer, close } = startInMemoryAgent();
  const res = await peer.call("initialize", { clientName: "t", protocolVersion: "1.0", processId: 1, capabilities: {} });
  const result = res.result as { protocolVersion: string; capabilities: { methods: string[] }; client: { uid: number } };
  assert.equal(result.protocolVersion, PROTOCOL_VERSION);
  assert.ok(result.capabilities.methods.includes("system/check"));
  assert.equal(result.client.uid, 4242);
  close();
});

test("a request before initialize is refused with E_NOT_INITIALIZED", async () => {
  const { peer, close } = startInMemoryAgent();
  const res = await peer.call("system/ping");
  assert.equal(res.error?.code, -32002);
  assert.equal(res.error?.data?.code, "E_NOT_INITIALIZED");
  assert.match(res.error?.data?.hint ?? "", /initialize/);
  close();
});

test("a different major protocol version is refused with a hint", async () => {
  const { peer, close } = startInMemoryAgent();
  const res = await peer.call("initialize", { protocolVersion: "2.0" });
  assert.equal(res.error?.data?.code, "E_PROTOCOL_VERSION");
  assert.ok(res.error!.code <= -32000 && res.error!.code >= -32099);
  close();
});

test("parse error: -32700 with id null, and the connection goes on", async () => {
  const { peer, close } = await initialized();
  peer.sendBytes("Content-Length: 5\r\n\r\n{oops");
  const err = (await peer.next()) as RpcMessage;
  assert.equal(err.id, null);
  assert.equal(err.error?.code, -32700);
  assert.equal(err.error?.data?.code, "E_PARSE");
  assert.deepEqual((await peer.call("system/ping", { data: "still here" })).result, { data: "still here" });
  close();
});

test("invalid UTF-8 is a parse error naming the encoding", async () => {
  const { peer, close } = await initialized();
  const body = Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]);
  peer.sendBytes(Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body]));
  const err = (await peer.next()) as RpcMessage;
  assert.equal(err.error?.code, -32700);
  assert.equal(err.error?.data?.code, "E_INVALID_UTF8");
  assert.ok((await peer.call("system/ping")).result);
  close();
});

test("absurd nesting is refused before parsing", async () => {
  const { peer, close } = await initialized();
  peer.sendJson(JSON.parse("[".repeat(1000) + "]".repeat(1000)));
  const err = (await peer.next()) as RpcMessage;
  assert.equal(err.error?.code, -32600);
  assert.equal(err.error?.data?.code, "E_NESTING_TOO_DEEP");
  peer.sendBytes(`Content-Length: 200000\r\n\r\n${"[".repeat(100000)}${"]".repeat(100000)}`);
  assert.equal(((await peer.next()) as RpcMessage).error?.data?.code, "E_NESTING_TOO_DEEP");
  assert.ok((await peer.call("system/ping")).result);
  close();
});

test("invalid requests: -32600, with the id when it could be read", async () => {
  const { peer, close } = await initialized();
  const cases: [unknown, string | number | null, RegExp][] = [
    [42, null, /JSON object/],
    [{ jsonrpc: "1.0", id: 7, method: "system/ping" }, 7, /jsonrpc/],
    [{ jsonrpc: "2.0", id: 8, method: 5 }, 8, /method/],
    [{ jsonrpc: "2.0", id: { x: 1 }, method: "system/ping" }, null, /id/],
    [{ jsonrpc: "2.0", id: 9, method: "system/ping", params: "str" }, 9, /params/],
  ];
  for (const [message, id, pattern] of cases) {
    peer.sendJson(message);
    const res = (await peer.next()) as RpcMessage;
    assert.equal(res.error?.code, -32600, JSON.stringify(message));
    assert.equal(res.id, id);
    assert.match(res.error?.message ?? "", pattern);
  }
  close();
});

test("method not found: -32601", async () => {
  const { peer, close } = await initialized();
  const res = await peer.call("no/such/method", {});
  assert.equal(res.error?.code, -32601);
  assert.match(res.error?.message ?? "", /no\/such\/method/);
  close();
});

test("invalid params: -32602 naming the wrong field", async () => {
  const { peer, close } = await initialized();
  const wrongType = await peer.call("system/check", { refresh: "yes" });
  assert.equal(wrongType.error?.code, -32602);
  assert.equal(wrongType.error?.data?.field, "refresh");
  assert.match(wrongType.error?.message ?? "", /"refresh"/);
  const unknown = await peer.call("system/ping", { data: "x", colour: "red" });
  assert.equal(unknown.error?.code, -32602);
  assert.equal(unknown.error?.data?.field, "colour");
  const notObject = await peer.call("system/check", [1, 2]);
  assert.equal(notObject.error?.code, -32602);
  close();
});

test("batches are answered as arrays, notifications inside are not answered", async () => {
  const { peer, close } = await initialized();
  peer.sendJson([
    { jsonrpc: "2.0", id: 1, method: "system/ping", params: { data: "a" } },
    { jsonrpc: "2.0", method: "system/ping" },
    { jsonrpc: "2.0", id: 2, method: "nope" },
    17,
  ]);
  const batch = (await peer.next()) as RpcMessage[];
  assert.ok(Array.isArray(batch));
  assert.equal(batch.length, 3);
  assert.deepEqual(batch.find((r) => r.id === 1)?.result, { data: "a" });
  assert.equal(batch.find((r) => r.id === 2)?.error?.code, -32601);
  assert.equal(batch.find((r) => r.id === null)?.error?.code, -32600);

  peer.sendJson([{ jsonrpc: "2.0", id: 3, method: "system/ping" }]);
  const single = await peer.next();
  assert.ok(Array.isArray(single), "a batch of one is still answered with an array");
  close();
});

test("an empty batch is one invalid-request error; an all-notification batch gets no answer", async () => {
  const { peer, close } = await initialized();
  peer.sendJson([]);
  const res = (await peer.next()) as RpcMessage;
  assert.equal(Array.isArray(res), false);
  assert.equal(res.error?.code, -32600);
  peer.sendJson([{ jsonrpc: "2.0", method: "system/ping" }, { jsonrpc: "2.0", method: "unknown" }]);
  peer.sendJson({ jsonrpc: "2.0", method: "system/ping" });
  assert.deepEqual((await peer.call("system/ping", { data: "after" })).result, { data: "after" });
  assert.deepEqual(peer.unread, [], "notifications were never answered");
  close();
});

test("after shutdown only exit is accepted; exit after shutdown is a clean exit", async () => {
  const { peer, exits } = await initialized();
  assert.equal((await peer.call("shutdown")).result, null);
  const refused = await peer.call("system/ping");
  assert.equal(refused.error?.code, -32600, "LSP: requests after shutdown are invalid");
  assert.equal(refused.error?.data?.code, "E_SHUTTING_DOWN");
  peer.sendJson({ jsonrpc: "2.0", method: "exit" });
  await peer.waitFor(() => false, 200).catch(() => undefined);
  assert.deepEqual(exits, [0]);
});

test("exit without shutdown is reported as an unclean exit (LSP)", async () => {
  const { peer, exits } = await initialized();
  peer.sendJson({ jsonrpc: "2.0", method: "exit" });
  await peer.waitFor(() => false, 200).catch(() => undefined);
  assert.deepEqual(exits, [1]);
});

test("initialize twice on one connection is refused; another connection is independent", async () => {
  const { agent, peer, close } = await initialized();
  assert.equal((await peer.call("initialize", {})).error?.data?.code, "E_ALREADY_INITIALIZED");
  const other = connect(agent);
  assert.equal((await other.peer.call("system/ping")).error?.data?.code, "E_NOT_INITIALIZED");
  assert.ok((await other.peer.call("initialize", {})).result);
  other.close();
  close();
});

test("a bad frame on one connection does not disturb another", async () => {
  const { agent, peer, close } = await initialized();
  const other = connect(agent);
  await other.peer.call("initialize", {});
  peer.sendBytes("Content-Length: 99999999999\r\n\r\nxxxx");
  assert.equal(((await peer.next()) as RpcMessage).error?.data?.code, "E_FRAME_TOO_LARGE");
  assert.deepEqual((await other.peer.call("system/ping", { data: "b" })).result, { data: "b" });
  other.close();
  close();
});

test("a batch over the limit is refused whole with one error", async () => {
  const { peer, close } = await initialized();
  peer.sendJson(Array.from({ length: MAX_BATCH + 1 }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "system/ping" })));
  const res = (await peer.next()) as RpcMessage;
  assert.equal(Array.isArray(res), false);
  assert.equal(res.error?.code, -32600);
  assert.match(res.error?.message ?? "", /over the limit/);
  peer.sendJson(Array.from({ length: MAX_BATCH }, (_, i) => ({ jsonrpc: "2.0", id: i, method: "system/ping" })));
  assert.equal(((await peer.next()) as RpcMessage[]).length, MAX_BATCH, "a batch at the limit is served");
  close();
});

test("an answer bigger than a frame is replaced by an error, not sent", async () => {
  const { peer, close } = startInMemoryAgent({ maxFrameBytes: 4000 });
  await peer.call("initialize", {});
  peer.sendJson(Array.from({ length: 100 }, () => 1)); // 100 small invalid items, 100 long errors
  const res = (await peer.next()) as RpcMessage;
  assert.equal(res.error?.data?.code, "E_RESPONSE_TOO_LARGE");
  assert.ok((await peer.call("system/ping")).result);
  close();
});

test("a client that stops sending still gets the answers to what it sent", async () => {
  const { peer, close } = await initialized();
  peer.sendJson({ jsonrpc: "2.0", id: "last", method: "system/ping", params: { data: "before end" } });
  close(); // half-close: no more input
  const res = (await peer.next()) as RpcMessage;
  assert.deepEqual(res.result, { data: "before end" });
});

test("shutdown and exit in one write: the shutdown is still answered", async () => {
  const { peer, exits } = await initialized();
  peer.sendBytes(Buffer.concat([encodeFrame(JSON.stringify({ jsonrpc: "2.0", id: "s", method: "shutdown" })), encodeFrame(JSON.stringify({ jsonrpc: "2.0", method: "exit" }))]));
  const res = (await peer.next()) as RpcMessage;
  assert.equal(res.id, "s");
  assert.equal(res.result, null);
  await peer.waitFor(() => false, 100).catch(() => undefined);
  assert.equal(peer.ended, true, "the connection closed after answering");
  assert.deepEqual(exits, [0]);
});

test("client: an agent that refuses a frame and closes says why to every pending request", async () => {
  const { PassThrough } = await import("node:stream");
  const { AgentClient } = await import("../../protocol/client");
  const fromAgent = new PassThrough();
  const client = new AgentClient(fromAgent, new PassThrough());
  const pending = client.request("system/ping", {});
  fromAgent.write(encodeFrame(JSON.stringify({ jsonrpc: "2.0", id: null, error: { code: -32024, message: "no complete frame header within 10000 ms", data: { code: "E_FRAME_TIMEOUT", hint: "send whole frames" } } })));
  fromAgent.end();
  await assert.rejects(pending, (err: { code?: string; message: string }) => err.code === "E_FRAME_TIMEOUT" && /10000 ms/.test(err.message));
});
