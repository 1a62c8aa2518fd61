/** The VM guest agent's framing, host side (native/guest-agent.c reads the same bytes). */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { GuestConnection } from "../../agent/guest/guest-connection";
import { socketPair } from "../../agent/sys/libc";
import type { PaddockError } from "../../protocol/errors";
import { FrameDecoder, FrameType, MAX_FRAME, decodeExit, encodeExec, encodeFrame, encodeResize } from "../../agent/guest/guest-protocol";
import { moduleLoadOrder } from "../../agent/guest/guest-image";

test("frames split anywhere come back whole, in order", () => {
  const bytes = Buffer.concat([encodeFrame(FrameType.output, 7, Buffer.from([1, 104, 105])), encodeFrame(FrameType.exit, 7, Buffer.from([0, 0, 0, 3, 0])), encodeFrame(FrameType.ready, 0, Buffer.from("6.1.0"))]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(bytes.subarray(0, cut)), ...decoder.push(bytes.subarray(cut))];
    assert.deepEqual(frames.map((f) => [f.type, f.channel, f.payload.toString("hex")]), [[FrameType.output, 7, "016869"], [FrameType.exit, 7, "0000000300"], [FrameType.ready, 0, Buffer.from("6.1.0").toString("hex")]]);
  }
  assert.deepEqual(decodeExit(Buffer.from([0, 0, 0, 130, 2])), { exitCode: 130, signal: 2 });
});

test("a frame longer than the limit is a broken peer, not a buffer to grow", () => {
  const head = Buffer.alloc(9);
  head.writeUInt32BE(MAX_FRAME + 1, 0);
  assert.throws(() => new FrameDecoder().push(head), /frame of/);
  assert.throws(() => encodeFrame(FrameType.stdin, 1, Buffer.alloc(MAX_FRAME + 1)), /over/);
});

test("an exec request: flags, size, ids, then cwd, argv and env as NUL-terminated strings", () => {
  const frame = encodeExec(3, { argv: ["sh", "-c", "echo hi"], env: { PATH: "/bin", TERM: "xterm" }, cwd: "/workspace", uid: 1000, gid: 100, pty: { cols: 120, rows: 40 } });
  const [decoded] = new FrameDecoder().push(frame);
  const p = decoded!.payload;
  assert.equal(decoded!.type, FrameType.exec);
  assert.deepEqual([p[0], p.readUInt16BE(1), p.readUInt16BE(3), p.readUInt32BE(5), p.readUInt32BE(9), p.readUInt32BE(13), p.readUInt32BE(17)], [1, 120, 40, 1000, 100, 3, 2]);
  assert.deepEqual(p.subarray(21).toString("utf8").split("\0"), ["/workspace", "sh", "-c", "echo hi", "PATH=/bin", "TERM=xterm", ""]);
  assert.throws(() => encodeExec(1, { argv: ["a\0b"], env: {}, cwd: "/", uid: 0, gid: 0 }), /NUL/);
  assert.deepEqual([...encodeResize(3, 80, 24).subarray(9)], [0, 80, 0, 24]);
});

test("guest modules load dependencies first, each once", () => {
  const dep = [
    "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko",
    "kernel/net/9p/9pnet.ko:",
    "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko",
    "kernel/fs/netfs/netfs.ko:",
    "kernel/net/9p/9pnet_virtio.ko: kernel/drivers/virtio/virtio.ko kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko:",
    "kernel/drivers/virtio/virtio_ring.ko:",
  ].join("\n");
  assert.deepEqual(moduleLoadOrder(dep, ["9pnet_virtio", "9p"]).map((f) => f.split("/").pop()), ["virtio.ko", "9pnet.ko", "virtio_ring.ko", "9pnet_virtio.ko", "netfs.ko", "fscache.ko", "9p.ko"]);
});

/** The host's connection on one end of a real socket pair, the test playing the guest on the other. */
function connectionPair(): { connection: GuestConnection; guest: net.Socket } {
  const [host, guest] = socketPair();
  return { connection: new GuestConnection(new net.Socket({ fd: host, readable: true, writable: true })), guest: new net.Socket({ fd: guest, readable: true, writable: true }) };
}

const request = { argv: ["true"], env: {}, cwd: "/", uid: 0, gid: 0 };

test("a guest's malformed or oversized frame ends its connection with a clear error; its commands fail, nothing throws", async () => {
  for (const bad of [encodeFrame(FrameType.output, 1), encodeFrame(FrameType.exit, 1, Buffer.from([0, 0])), Buffer.from([0xff, 0xff, 0xff, 0xff, FrameType.output, 0, 0, 0, 1])]) {
    const { connection, guest } = connectionPair();
    const running = connection.exec(request, () => undefined);
    const closed = new Promise<Error>((resolve) => connection.onClose(resolve));
    guest.write(bad);
    await assert.rejects(running.exited, (err: PaddockError) => err.code === "E_RUNTIME_UNAVAILABLE" && /malformed frame|broke the protocol/.test(err.message) && err.hint !== undefined);
    assert.match((await closed).message, /malformed frame|broke the protocol/);
    assert.throws(() => connection.exec(request, () => undefined), /malformed frame|broke the protocol/, "a broken connection takes no more commands");
    guest.destroy();
  }
});

test("answers for channels nobody asked for, and control answers nobody waits for, are ignored", async () => {
  const { connection, guest } = connectionPair();
  const running = connection.exec(request, () => undefined);
  guest.write(Buffer.concat([encodeFrame(FrameType.exit, 999, Buffer.from([0, 0, 0, 0, 0])), encodeFrame(FrameType.claimed, 0), encodeFrame(FrameType.exit, running.channel, Buffer.from([0, 0, 0, 3, 0]))]));
  assert.deepEqual(await running.exited, { exitCode: 3, signal: null });
  connection.close();
  guest.destroy();
});
