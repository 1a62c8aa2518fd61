/**
 * How a sandbox's runtime hands the process module a command to run: a command line for a
 * process on the host (bubblewrap's, or an OCI runtime's exec), or a start for a command
 * that a guest runs (a VM's guest agent). The process module runs both the same way.
 */

export interface GuestExit {
  exitCode: number;
  /** The signal that ended the program, if one did (its exitCode is then 128+N). */
  signal: string | null;
}

/** A command that runs in a guest, as the agent drives it. */
export interface GuestProcess {
  readonly channel: number;
  /** Resolves with the exit after the last output; rejects when the command could not start or the guest went away. */
  readonly exited: Promise<GuestExit>;
  write(data: Buffer | string): void;
  /** Input bytes written and not yet sent to the guest (its port is shared: all of its channels' input counts). */
  unsentInput(): number;
  /** End of input (pipes). */
  end(): void;
  resize(cols: number, rows: number): void;
  signal(signal: NodeJS.Signals): void;
  /** Back-pressure: the guest's whole channel waits while one of its clients is behind. */
  pause(): void;
  resume(): void;
  /** No longer waits for the command (a guest that never reported its end): what it says later is dropped. */
  abandon(): void;
}

export type OutputSink = (stream: "stdout" | "stderr", data: Buffer) => void;

export type Launch =
  /** A process on the host: this command line enters the sandbox and runs the program. */
  | { host: string[] }
  /** A command in a guest, started with the sink its output goes to. */
  | { guest: (onOutput: OutputSink) => GuestProcess };
