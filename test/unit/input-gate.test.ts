/** A program's input queue (agent/process/input-gate.ts): order, waiting, dropping, bounds. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { InputGate, MAX_UNREAD_INPUT_BYTES } from "../../agent/process/input-gate";
import { PaddockError } from "../../protocol/errors";

/** A client connection that can go away. */
function writer() {
  const listeners = new Set<() => void>();
  const w = {
    closed: false,
    onClose(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      w.closed = true;
      for (const l of listeners) l();
    },
  };
  return w;
}

const settledWithin = (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);

test("writes go in order, each once the program has read; one whose client goes is dropped at once, wherever it waits", async () => {
  let unread = 0;
  let ended!: () => void;
  const gate = new InputGate(() => unread, new Promise<void>((r) => (ended = r)));
  const put: string[] = [];
  const first = writer();
  await gate.write(1, first, () => {
    put.push("a");
    unread = MAX_UNREAD_INPUT_BYTES + 1; // the program reads none of it
  });
  const [b, c, d] = [writer(), writer(), writer()];
  const waitingB = gate.write(1, b, () => put.push("b"));
  const waitingC = gate.write(1, c, () => put.push("c"));
  const waitingD = gate.write(1, d, () => put.push("d"));
  assert.equal(await settledWithin(waitingB, 100), false, "b waits for the program to read");
  c.close();
  assert.equal(await settledWithin(waitingC, 50), true, "c, behind b, is dropped as soon as its client goes");
  unread = 0;
  await waitingB;
  await waitingD;
  assert.deepEqual(put, ["a", "b", "d"]);
  ended();
});

test("what waits is bounded: past it a write is refused at once; the program's end drops the rest", async () => {
  let ended!: () => void;
  const gate = new InputGate(() => MAX_UNREAD_INPUT_BYTES + 1, new Promise<void>((r) => (ended = r)));
  const w = writer();
  const put: number[] = [];
  // One write may always wait, however big; more bytes than the bound behind it may not.
  const big = gate.write(8 * 1024 * 1024, w, () => put.push(0));
  await assert.rejects(gate.write(1, w, () => put.push(1)), (err: PaddockError) => err.code === "E_INPUT_BUSY" && /already wait/.test(err.message) && err.hint !== undefined);
  ended();
  await big;
  assert.deepEqual(put, [], "nothing is given to a program that has ended");

  let ended2!: () => void;
  const many = new InputGate(() => MAX_UNREAD_INPUT_BYTES + 1, new Promise<void>((r) => (ended2 = r)));
  const waiting = Array.from({ length: 64 }, () => many.write(1, w, () => undefined));
  await assert.rejects(many.write(1, w, () => undefined), (err: PaddockError) => err.code === "E_INPUT_BUSY");
  ended2();
  await Promise.all(waiting);
});
