/** AgentClient.connect against a real Unix socket whose listen queue is full. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { AgentClient } from "../../protocol/client";

/**
 * A listener with a queue of one that stops accepting for `busyMs` (its event loop blocked,
 * as an agent's is while it works), then accepts everything.
 */
async function busyListener(socketPath: string, busyMs: number): Promise<ChildProcess> {
  const script = `
    const net = require("node:net"), fs = require("node:fs");
    const server = net.createServer(() => undefined);
    server.listen({ path: ${JSON.stringify(socketPath)}, backlog: 1 }, () => {
      fs.writeSync(1, "listening\\n");
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${busyMs});
    });`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`listener exited with ${code}`)));
  });
  return child;
}

/** Connects until the kernel answers EAGAIN: the listen queue is then full. */
async function fillQueue(socketPath: string): Promise<net.Socket[]> {
  const held: net.Socket[] = [];
  for (let i = 0; i < 64; i++) {
    const socket = net.connect(socketPath);
    const outcome = await new Promise<string>((resolve) => {
      socket.once("connect", () => resolve("connected"));
      socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
    });
    if (outcome === "EAGAIN") return held;
    assert.equal(outcome, "connected");
    held.push(socket);
  }
  assert.fail("the listen queue never filled");
}

function tempSocket(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "paddock-connect-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, "agent.sock");
}

/** A socket whose listener stops accepting for `busyMs`, with its queue already full. */
async function fullQueue(t: { after: (fn: () => void) => void }, busyMs: number): Promise<string> {
  const socketPath = tempSocket(t);
  const listener = await busyListener(socketPath, busyMs);
  t.after(() => listener.kill("SIGKILL"));
  const held = await fillQueue(socketPath);
  t.after(() => held.forEach((s) => s.destroy()));
  return socketPath;
}

test("connect waits out a full listen queue instead of failing with EAGAIN", async (t) => {
  const client = await AgentClient.connect(await fullQueue(t, 1500));
  client.close();
});

test("connect gives up on a queue that stays full, with the kernel's EAGAIN", async (t) => {
  await assert.rejects(AgentClient.connect(await fullQueue(t, 10_000), 300), (err: NodeJS.ErrnoException) => err.code === "EAGAIN");
});
