/** Property tests: whatever bytes or JSON a client sends, the agent answers correctly and keeps serving. */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FrameReader, MAX_HEADER_BYTES, encodeFrame } from "../../protocol/framing";
import { startInMemoryAgent } from "../helpers/in-memory-agent";
import type { Received, RpcMessage } from "../helpers/raw-peer";

const RUNS = Number(process.env.PADDOCK_FUZZ_RUNS ?? 200);

/** Splits a buffer at the given (sorted, deduplicated) points. */
function split(bytes: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let last = 0;
  for (const cut of cuts) {
    parts.push(bytes.subarray(last, cut));
    last = cut;
  }
  parts.push(bytes.subarray(last));
  return parts;
}

test("frames survive any split into chunks", () => {
  fc.assert(
    fc.property(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 20 }), (values, points) => {
      const bodies = values.map((v) => JSON.stringify(v));
      const stream = Buffer.concat(bodies.map(encodeFrame));
      const reader = new FrameReader();
      const out = split(stream, points).flatMap((chunk) => reader.push(chunk));
      assert.deepEqual(
        out.map((e) => (e.kind === "frame" ? e.body.toString("utf8") : e.code)),
        bodies,
      );
    }),
    { numRuns: RUNS },
  );
});

const frameish = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
  fc.constantFrom("Content-Length: ", "\r\n", "\r\n\r\n", "Content-Length: 3\r\n\r\n", "Content-Length: -1\r\n\r\n", "Content-Length: 99999999999\r\n\r\n", "{}", "[", "\xff").map((s) => Buffer.from(s, "latin1")),
);

test("random and truncated frames never throw and never make the reader hoard memory", () => {
  fc.assert(
    fc.property(fc.array(frameish, { maxLength: 40 }), (chunks) => {
      const reader = new FrameReader(1024);
      for (const chunk of chunks) {
        const events = reader.push(chunk);
        for (const e of events) if (e.kind === "error") assert.match(e.code, /^E_FRAME_/);
        assert.ok(reader.pendingBytes <= MAX_HEADER_BYTES + 1024 + chunk.length);
      }
    }),
    { numRuns: RUNS * 5 },
  );
});

const SERVER_CODES = new Set(["E_PARSE", "E_INVALID_UTF8", "E_FRAME_HEADER", "E_FRAME_TOO_LARGE", "E_NESTING_TOO_DEEP", "E_INVALID_REQUEST"]);

function assertOnlyFramingErrors(messages: Received[]): void {
  for (const m of messages) {
    assert.ok(!Array.isArray(m), `unexpected batch answer ${JSON.stringify(m)}`);
    assert.equal(m.id, null);
    assert.ok(m.error && SERVER_CODES.has(m.error.data?.code ?? ""), `unexpected ${JSON.stringify(m)}`);
  }
}

test("garbage bytes get framing errors, then a normal request is answered", async () => {
  await fc.assert(
    fc.asyncProperty(
      // Up to 3× the header cap, so the over-long-header path is exercised too.
      fc.uint8Array({ minLength: 1, maxLength: 3 * MAX_HEADER_BYTES }).filter((a) => !Buffer.from(a).toString("latin1").toLowerCase().includes("content-length")),
      async (garbage) => {
        const { peer, close } = startInMemoryAgent();
        await peer.call("initialize", {});
        peer.sendBytes(Buffer.from(garbage));
        peer.sendBytes("\r\n\r\n");
        const pong = await peer.call("system/ping", { data: "alive" }, "after-garbage");
        assert.deepEqual(pong.result, { data: "alive" });
        assertOnlyFramingErrors(peer.unread);
        close();
      },
    ),
    { numRuns: RUNS },
  );
});

test("any JSON value as a message gets a spec-shaped answer, then a normal request is answered", async () => {
  const message = fc.oneof(
    fc.jsonValue({ maxDepth: 6 }),
    fc.record({ jsonrpc: fc.constantFrom("2.0", "1.0", 2), id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.object()), method: fc.oneof(fc.constantFrom("system/ping", "system/check", "initialize", "shutdown", "x"), fc.string()), params: fc.jsonValue({ maxDepth: 4 }) }, { requiredKeys: [] }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 5 }), async (messages) => {
      const { peer, close } = startInMemoryAgent();
      await peer.call("initialize", {});
      for (const m of messages) {
        if (typeof m === "object" && m !== null && !Array.isArray(m) && (m as { method?: unknown }).method === "system/check") continue; // would run real probes
        if (Array.isArray(m) && m.some((x) => typeof x === "object" && x !== null && (x as { method?: unknown }).method === "system/check")) continue;
        peer.sendJson(m);
      }
      const pong = await peer.call("system/ping", { data: "ok" }, "final-ping").catch(() => undefined);
      // A fuzzed "shutdown" or "exit" request legitimately ends the conversation.
      const method = (x: unknown) => (typeof x === "object" && x !== null ? (x as { method?: unknown }).method : undefined);
      const ends = (x: unknown) => method(x) === "shutdown" || method(x) === "exit";
      const ended = messages.some((m) => (Array.isArray(m) ? m.some(ends) : ends(m)));
      if (!ended) assert.deepEqual(pong?.result, { data: "ok" });
      for (const r of peer.unread) {
        for (const one of Array.isArray(r) ? r : [r]) {
          const m = one as RpcMessage;
          assert.equal(m.jsonrpc, "2.0");
          assert.ok("id" in m);
          assert.ok(("result" in m) !== ("error" in m), "exactly one of result and error");
          if (m.error) assert.ok(Number.isInteger(m.error.code) && typeof m.error.message === "string");
        }
      }
      close();
    }),
    { numRuns: RUNS },
  );
});

test("deep nesting at any depth is refused or accepted, never crashes", async () => {
  const { peer, close } = startInMemoryAgent();
  await peer.call("initialize", {});
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 50000 }), async (depth) => {
      const text = `{"jsonrpc":"2.0","id":"deep","method":"system/ping","params":{"data":"x","n":${"[".repeat(depth)}${"]".repeat(depth)}}}`;
      peer.sendBytes(`Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
      const res = (await peer.next()) as RpcMessage;
      assert.ok(res.error, "either nesting or the unknown field is refused");
      assert.equal(res.error.data?.code, depth + 2 > 64 ? "E_NESTING_TOO_DEEP" : "E_INVALID_PARAMS");
    }),
    { numRuns: 50 },
  );
  assert.ok((await peer.call("system/ping")).result);
  close();
});
