/**
 * Two sinks: JSON lines in the state dir (for tools) and short human lines on stderr (for
 * people). Bindings such as requestId, connectionId and sandboxId ride on every line of a
 * child logger, so that a line about a sandbox always names it.
 */
import * as fs from "node:fs";

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Whether a line at `level` passes a threshold of `threshold`. */
export function passes(level: LogLevel, threshold: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(threshold);
}

export type Fields = Record<string, unknown>;

export interface LogSink {
  write(level: LogLevel, message: string, fields: Fields): void;
}

const MAX_LOG_BYTES = 16 * 1024 * 1024;

export class Logger {
  constructor(
    private readonly sinks: LogSink[],
    private readonly level: LogLevel,
    private readonly bindings: Fields = {},
  ) {}

  child(bindings: Fields): Logger {
    return new Logger(this.sinks, this.level, { ...this.bindings, ...bindings });
  }

  enabled(level: LogLevel): boolean {
    return passes(level, this.level);
  }

  error(message: string, fields?: Fields): void {
    this.emit("error", message, fields);
  }
  warn(message: string, fields?: Fields): void {
    this.emit("warn", message, fields);
  }
  info(message: string, fields?: Fields): void {
    this.emit("info", message, fields);
  }
  debug(message: string, fields?: Fields): void {
    this.emit("debug", message, fields);
  }

  private emit(level: LogLevel, message: string, fields?: Fields): void {
    if (!this.enabled(level)) return;
    const all = fields ? { ...this.bindings, ...fields } : this.bindings;
    for (const sink of this.sinks) sink.write(level, message, all);
  }
}

/** Appends JSON lines; rotates once to `<file>.1` when the file grows past 16 MiB. */
export class JsonFileSink implements LogSink {
  private fd: number;
  private size: number;

  constructor(private readonly file: string) {
    this.fd = fs.openSync(file, "a", 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  write(level: LogLevel, message: string, fields: Fields): void {
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields }) + "\n";
    if (this.size + line.length > MAX_LOG_BYTES) this.rotate();
    try {
      this.size += fs.writeSync(this.fd, line);
    } catch {
      // A full disk must not take the agent down; stderr still has the line.
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private rotate(): void {
    try {
      fs.closeSync(this.fd);
      fs.renameSync(this.file, `${this.file}.1`);
    } catch {
      // Keep appending to whatever we can open.
    }
    this.fd = fs.openSync(this.file, "a", 0o600);
    this.size = 0;
  }
}

/** `15:04:05.123 INFO  message key=value ...` */
export class HumanSink implements LogSink {
  constructor(private readonly out: NodeJS.WritableStream = process.stderr) {}

  write(level: LogLevel, message: string, fields: Fields): void {
    const time = new Date().toISOString().slice(11, 23);
    const rest = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      // Plain words print as they are; anything else is JSON-quoted, so a client's control
      // characters never reach the operator's terminal raw.
      .map(([k, v]) => `${k}=${typeof v === "string" && /^[\w./:@+-]*$/.test(v) ? v : JSON.stringify(v)}`)
      .join(" ");
    this.out.write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${rest ? " " + rest : ""}\n`);
  }
}

/** Passes on only lines at `level` or more severe (e.g. a quieter stderr than the file). */
export class LevelFilterSink implements LogSink {
  constructor(
    private readonly inner: LogSink,
    private readonly level: LogLevel,
  ) {}

  write(level: LogLevel, message: string, fields: Fields): void {
    if (passes(level, this.level)) this.inner.write(level, message, fields);
  }
}

/** A logger that drops everything (unit tests, one-shot CLI paths). */
export const silentLogger = new Logger([], "error");
