/**
 * A running program's input. Writes go in order, one at a time, each once the program has read
 * all but MAX_UNREAD_INPUT_BYTES of what came before, so a program that does not read makes its
 * writers wait rather than the agent's memory grow. What waits is bounded too (past it a write
 * is refused at once with E_INPUT_BUSY), and a waiting write whose client goes away, or whose
 * program ends, is dropped at once, wherever it is in the line.
 */
import { PaddockError } from "../../protocol/errors";
import type { Session } from "../session";

/** Input a program has not read yet, past which the next write waits for it to read. */
export const MAX_UNREAD_INPUT_BYTES = 1024 * 1024;
/** Writes waiting for one program, and their bytes (one write may always wait, however big). */
const MAX_WAITING_WRITES = 64;
const MAX_WAITING_BYTES = 4 * 1024 * 1024;
/** How often the first waiting write looks whether the program has read. */
const POLL_MS = 20;

export class InputGate {
  private readonly line: symbol[] = [];
  private waitingBytes = 0;
  private readonly wakers = new Set<() => void>();
  private ended = false;

  constructor(
    /** Input given to the program and not yet taken by it. */
    private readonly unread: () => number,
    exited: Promise<unknown>,
  ) {
    void exited.then(() => {
      this.ended = true;
      this.wakeAll();
    });
  }

  /** Waits for the write's turn and for room, then calls `put`; returns without it when dropped. */
  async write(bytes: number, writer: Pick<Session, "closed" | "onClose">, put: () => void): Promise<void> {
    if (this.ended || writer.closed) return;
    if (this.line.length > 0 && (this.line.length >= MAX_WAITING_WRITES || this.waitingBytes + bytes > MAX_WAITING_BYTES)) {
      throw new PaddockError(
        "E_INPUT_BUSY",
        `the program has not read its input: ${this.line.length} writes (${this.waitingBytes} bytes) already wait for it`,
        "wait for the earlier process/write requests to be answered before sending more",
      );
    }
    const me = Symbol("write");
    this.line.push(me);
    this.waitingBytes += bytes;
    const stopListening = writer.onClose(() => this.wakeAll());
    try {
      for (;;) {
        if (this.ended || writer.closed) return;
        const first = this.line[0] === me;
        if (first && this.unread() <= MAX_UNREAD_INPUT_BYTES) return put();
        await new Promise<void>((resolve) => {
          const wake = () => {
            this.wakers.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          this.wakers.add(wake);
          // Only the first write looks at the program's reading; the others wait for their turn.
          const timer = first ? setTimeout(wake, POLL_MS) : undefined;
        });
      }
    } finally {
      stopListening();
      this.line.splice(this.line.indexOf(me), 1);
      this.waitingBytes -= bytes;
      this.wakeAll();
    }
  }

  private wakeAll(): void {
    for (const wake of [...this.wakers]) wake();
  }
}
