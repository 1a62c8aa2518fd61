import { test } from "node:test";
import assert from "node:assert/strict";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import { FrameReader, MAX_HEADER_BYTES, decodeUtf8, encodeFrame, jsonNestingDepth, type FrameBudget, type FrameEvent } from "../../protocol/framing";

const frames = (events: FrameEvent[]) => events.filter((e) => e.kind === "frame").map((e) => (e.kind === "frame" ? e.body.toString("utf8") : ""));
const errors = (events: FrameEvent[]) => events.filter((e) => e.kind === "error").map((e) => (e.kind === "error" ? e.code : ""));
const fatal = (events: FrameEvent[]) => events.some((e) => e.kind === "error" && e.fatal);

test("a frame split into single bytes is reassembled", () => {
  const reader = new FrameReader();
  const bytes = encodeFrame('{"a":"é"}');
  const events = [...bytes].flatMap((b) => reader.push(Buffer.from([b])));
  assert.deepEqual(frames(events), ['{"a":"é"}']);
  assert.equal(reader.pendingBytes, 0);
});

test("several frames in one chunk all come out, in order", () => {
  const reader = new FrameReader();
  const events = reader.push(Buffer.concat([encodeFrame("1"), encodeFrame("[2]"), encodeFrame('"three"')]));
  assert.deepEqual(frames(events), ["1", "[2]", '"three"']);
});

test("Content-Length counts bytes, not characters", () => {
  const body = "€€€";
  assert.equal(encodeFrame(body).toString("latin1").startsWith("Content-Length: 9\r\n\r\n"), true);
});

test("header names are case-insensitive and other headers are ignored", () => {
  const reader = new FrameReader();
  const events = reader.push(Buffer.from('content-length: 2\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{}'));
  assert.deepEqual(frames(events), ["{}"]);
});

test("a header without Content-Length is an error, and the next frame still reads", () => {
  const reader = new FrameReader();
  const events = reader.push(Buffer.concat([Buffer.from("X-Foo: 1\r\n\r\n"), encodeFrame("{}")]));
  assert.deepEqual(errors(events), ["E_FRAME_HEADER"]);
  assert.deepEqual(frames(events), ["{}"]);
});

test("a non-numeric or negative Content-Length is an error after which nothing is read", () => {
  for (const value of ["abc", "-1", "1e3", ""]) {
    const reader = new FrameReader();
    const events = reader.push(Buffer.from(`Content-Length: ${value}\r\n\r\n{}`));
    assert.deepEqual(errors(events), ["E_FRAME_HEADER"], value);
    assert.ok(fatal(events), "where the frame ends cannot be known");
    assert.deepEqual(reader.push(encodeFrame("{}")), [], "nothing after it is read");
    assert.equal(reader.pendingBytes, 0);
  }
});

test("two different Content-Length headers are refused, and nothing after them is read", () => {
  const reader = new FrameReader();
  const events = reader.push(Buffer.concat([Buffer.from("Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"), encodeFrame("[1]")]));
  assert.deepEqual(errors(events), ["E_FRAME_HEADER"]);
  assert.ok(fatal(events));
  assert.deepEqual(frames(events), []);
  assert.equal(reader.pendingBytes, 0);
});

test("the same Content-Length twice is one length", () => {
  const events = new FrameReader().push(Buffer.from("Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}"));
  assert.deepEqual(frames(events), ["{}"]);
});

test("a charset other than UTF-8 is refused, its body skipped, and the next frame read", () => {
  const reader = new FrameReader();
  const events = reader.push(Buffer.concat([Buffer.from('Content-Length: 9\r\nContent-Type: text/plain; charset=latin1\r\n\r\n{"a":"b"}'), encodeFrame("[2]")]));
  assert.deepEqual(errors(events), ["E_FRAME_HEADER"]);
  assert.ok(!fatal(events));
  assert.deepEqual(frames(events), ["[2]"]);
});

test("a malformed header line beside a clear Content-Length skips that body", () => {
  const reader = new FrameReader();
  const events = [...reader.push(Buffer.from("Content-Length: 4\r\nnonsense\r\n\r\n[1]")), ...reader.push(Buffer.concat([Buffer.from(" "), encodeFrame("[3]")]))];
  assert.deepEqual(errors(events), ["E_FRAME_HEADER"]);
  assert.deepEqual(frames(events), ["[3]"]);
});

test("blank lines between frames are no header: the next frame is read whole", () => {
  const reader = new FrameReader();
  const events = [...reader.push(Buffer.concat([encodeFrame("[1]"), Buffer.from("\r\n")])), ...reader.push(Buffer.from("\r\n\r\n")), ...reader.push(encodeFrame("[2]"))];
  assert.deepEqual(errors(events), []);
  assert.deepEqual(frames(events), ["[1]", "[2]"]);
  // A blank line split across two reads.
  const split = [...reader.push(Buffer.from("\r")), ...reader.push(Buffer.concat([Buffer.from("\n"), encodeFrame("[3]")]))];
  assert.deepEqual(errors(split), []);
  assert.deepEqual(frames(split), ["[3]"]);
});

test("an over-long header is reported once and reading resumes after the next blank line", () => {
  const reader = new FrameReader();
  const garbage = Buffer.alloc(MAX_HEADER_BYTES * 3, "x");
  const events = [...reader.push(garbage), ...reader.push(Buffer.from("\r\n\r\n")), ...reader.push(encodeFrame("[1]"))];
  assert.deepEqual(errors(events), ["E_FRAME_HEADER"]);
  assert.deepEqual(frames(events), ["[1]"]);
  assert.ok(reader.pendingBytes < MAX_HEADER_BYTES);
});

test("a frame over the cap is skipped without being buffered", () => {
  const reader = new FrameReader(100);
  const events = reader.push(Buffer.from("Content-Length: 1000\r\n\r\n"));
  assert.deepEqual(errors(events), ["E_FRAME_TOO_LARGE"]);
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(reader.push(Buffer.alloc(100, "z")), []);
    assert.equal(reader.pendingBytes, 0, "skipped bytes are not kept");
  }
  assert.deepEqual(frames(reader.push(encodeFrame("{}"))), ["{}"]);
});

/** A budget of `limit` bytes that records what it was asked. */
function budget(limit: number): FrameBudget & { held: number } {
  const b = {
    held: 0,
    reserve(bytes: number) {
      if (b.held + bytes > limit) return { code: "E_FRAME_BUDGET" as const, message: `over ${limit}`, hint: "less" };
      b.held += bytes;
      return undefined;
    },
    release(bytes: number) {
      b.held -= bytes;
    },
  };
  return b;
}

test("a body is reserved from the budget at its header and given back when it is complete", () => {
  const b = budget(1000);
  const reader = new FrameReader(undefined, b);
  assert.deepEqual(reader.push(Buffer.from("Content-Length: 600\r\n\r\n")), []);
  assert.equal(b.held, 600);
  assert.deepEqual(reader.progress, { stage: "body", frame: 0, length: 600, received: 0 });
  reader.push(Buffer.alloc(300, 0x20));
  assert.deepEqual(reader.progress, { stage: "body", frame: 0, length: 600, received: 300 });
  const events = reader.push(Buffer.concat([Buffer.alloc(300, 0x20), Buffer.from("Content-Len")]));
  assert.equal(frames(events).length, 1);
  assert.equal(b.held, 0);
  assert.deepEqual(reader.progress, { stage: "header", frame: 1 });
});

test("a body over the budget is refused for good, and dispose gives back what was held", () => {
  const b = budget(1000);
  const first = new FrameReader(undefined, b);
  first.push(Buffer.from("Content-Length: 700\r\n\r\nabc"));
  const second = new FrameReader(undefined, b);
  const events = second.push(Buffer.from("Content-Length: 400\r\n\r\nabc"));
  assert.deepEqual(errors(events), ["E_FRAME_BUDGET"]);
  assert.ok(fatal(events));
  assert.equal(second.pendingBytes, 0);
  assert.equal(b.held, 700);
  first.dispose();
  assert.equal(b.held, 0);
  assert.equal(first.pendingBytes, 0);
  assert.deepEqual(first.push(encodeFrame("{}")), [], "a disposed reader reads nothing");
});

test("a body assembled from many chunks comes out whole, and only the bytes after it stay", () => {
  const reader = new FrameReader();
  const body = Buffer.alloc(1 << 20, 0x20);
  const tail = Buffer.from("Content-Length: 5");
  const pieces = [Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), ...Array.from({ length: 15 }, (_, i) => body.subarray(i << 16, (i + 1) << 16)), Buffer.concat([body.subarray(15 << 16), tail])];
  const events = pieces.flatMap((p) => reader.push(p));
  assert.deepEqual(errors(events), []);
  assert.equal(frames(events)[0]?.length, body.length);
  assert.equal(reader.pendingBytes, tail.length);
  assert.deepEqual(reader.progress, { stage: "header", frame: 1 });
});

test("an over-long header that names a length is fatal: its body is never read as the next request", () => {
  const reader = new FrameReader();
  const header = `Content-Length: 11\r\nX-Padding: ${"x".repeat(MAX_HEADER_BYTES)}\r\n\r\n`;
  // Whole, or in pieces that put the blank line only past the cap.
  for (const pieces of [[header], [header.slice(0, 5000), header.slice(5000)]]) {
    const reader = new FrameReader();
    const events = [...pieces.flatMap((p) => reader.push(Buffer.from(p))), ...reader.push(Buffer.from('{"a":"b"}\r\n')), ...reader.push(encodeFrame("[1]"))];
    assert.deepEqual(errors(events), ["E_FRAME_HEADER"]);
    assert.ok(fatal(events), "the connection is closed with the error, not left silent");
    assert.deepEqual(frames(events), []);
  }
  // One where the length comes only after the cap is caught while it is skipped.
  const late = `X-Padding: ${"x".repeat(MAX_HEADER_BYTES)}\r\nContent-Length: 3\r\n\r\n[2]`;
  const events = [...reader.push(Buffer.from(late.slice(0, MAX_HEADER_BYTES + 1))), ...reader.push(Buffer.from(late.slice(MAX_HEADER_BYTES + 1)))];
  assert.deepEqual(errors(events), ["E_FRAME_HEADER", "E_FRAME_HEADER"]);
  assert.ok(fatal(events));
  assert.deepEqual(frames(events), []);
});

test("a body sent a byte at a time costs its size, not a buffer per byte", () => {
  v8.setFlagsFromString("--expose-gc");
  const gc = vm.runInNewContext("gc") as () => void;
  const length = 1 << 20;
  const body = Buffer.alloc(length, 0x31);
  const reader = new FrameReader();
  reader.push(Buffer.from(`Content-Length: ${length}\r\n\r\n`));
  gc();
  const before = process.memoryUsage().heapUsed;
  // Every piece is a Buffer object of its own (about 100 bytes of heap), as a socket would deliver them.
  for (let i = 0; i < length - 1; i++) reader.push(body.subarray(i, i + 1));
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 8 * 1024 * 1024, `the reader's heap grew by ${Math.round(grown / 1024 / 1024)} MiB for a 1 MiB body`);
  const events = reader.push(body.subarray(length - 1));
  assert.equal(frames(events)[0], body.toString());
});

test("decodeUtf8 refuses invalid UTF-8 and accepts valid text", () => {
  assert.equal(decodeUtf8(Buffer.from([0x7b, 0xff, 0x7d])), null);
  assert.equal(decodeUtf8(Buffer.from([0xc3, 0x28])), null);
  assert.equal(decodeUtf8(Buffer.from("{\"ok\":\"ü\"}")), '{"ok":"ü"}');
});

test("jsonNestingDepth counts brackets outside strings only", () => {
  assert.equal(jsonNestingDepth('{"a":[1,{"b":2}]}'), 3);
  assert.equal(jsonNestingDepth('"[[[[[[[["'), 0);
  assert.equal(jsonNestingDepth('{"a":"\\"[[["}'), 1);
  assert.equal(jsonNestingDepth("[".repeat(10000), 64), 65, "stops counting once over the limit");
});
