/**
 * Answers that may be megabytes (a file's content, a diff, a long list) are built one at a time
 * per client, each once the client has read what came before: a client that asks for sixty big
 * reads at once and reads no answer holds about one answer in the agent, not sixty. Small
 * answers are not gated, so pipelined requests keep their pace.
 */
export class AnswerGate {
  private tail: Promise<void> = Promise.resolve();

  /** `whenRead` calls back once the client's unread answers are under the connection's threshold. */
  constructor(private readonly whenRead: (listener: () => void) => void) {}

  async run<T>(build: () => T | Promise<T>): Promise<T> {
    const previous = this.tail;
    let done!: () => void;
    this.tail = new Promise((resolve) => (done = resolve));
    try {
      await previous;
      await new Promise<void>((resolve) => this.whenRead(resolve));
      return await build();
    } finally {
      // The connection writes the answer in the microtasks that follow the return: the next
      // one starts after a turn, when this one already counts as unread.
      setImmediate(done);
    }
  }
}
