/** An Agent wired to in-memory streams: the whole protocol stack without a process. */
import { PassThrough } from "node:stream";
import { Agent } from "../../agent/agent";
import type { SystemChecker } from "../../agent/check/system-check";
import type { SandboxManager } from "../../agent/sandbox/manager";
import type { SandboxReview } from "../../agent/sandbox/sandbox-review";
import type { ProcessTable } from "../../agent/process/process-table";
import type { Images } from "../../agent/image/images";
import { silentLogger } from "../../agent/log/logger";
import { RawPeer } from "./raw-peer";

export interface InMemoryPair {
  agent: Agent;
  peer: RawPeer;
  exits: number[];
  close(): void;
}

/** Parts that fail the test if used: these tests are about the protocol, not probes or sandboxes. */
function unused<T>(what: string): T {
  return new Proxy({}, { get: () => () => Promise.reject(new Error(`${what} is not part of this test`)) }) as T;
}

export function startInMemoryAgent(options: { maxFrameBytes?: number; agent?: Agent } = {}): InMemoryPair {
  const exits: number[] = [];
  const agent =
    options.agent ??
    new Agent({
      stateDir: "/nonexistent/state",
      log: silentLogger,
      checker: unused<SystemChecker>("system/check"),
      sandboxes: unused<SandboxManager>("sandboxes"),
      review: unused<SandboxReview>("review"),
      processes: unused<ProcessTable>("processes"),
      images: unused<Images>("images"),
      vmPool: () => ({ target: 0, ready: 0, booting: 0, hits: 0, misses: 0, bootMs: [] }),
      runtimes: ["process"],
      onExit: (session, connection) => {
        exits.push(session.shutdownRequested ? 0 : 1);
        connection.closeWhenIdle();
      },
      maxFrameBytes: options.maxFrameBytes,
    });
  return { agent, exits, ...connect(agent) };
}

export function connect(agent: Agent): { peer: RawPeer; close(): void } {
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  agent.attach(toAgent, fromAgent, { uid: 4242 }, "socket");
  return { peer: new RawPeer(fromAgent, toAgent), close: () => toAgent.end() };
}
