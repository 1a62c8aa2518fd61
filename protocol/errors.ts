/**
 * Every error the agent can return, mapped once to its JSON-RPC code.
 *
 * Standard JSON-RPC codes are used where the spec has one; everything the agent itself
 * refuses lives in the server range -32000..-32099 and carries `data.code` ("E_...") so that
 * clients branch on a stable name rather than on a message.
 */

export const JsonRpcCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
} as const;

export const errorCatalog = {
  // Framing and envelope problems (standard codes).
  E_PARSE: JsonRpcCode.ParseError,
  E_INVALID_UTF8: JsonRpcCode.ParseError,
  E_FRAME_HEADER: JsonRpcCode.ParseError,
  E_FRAME_TOO_LARGE: JsonRpcCode.ParseError,
  E_NESTING_TOO_DEEP: JsonRpcCode.InvalidRequest,
  E_INVALID_REQUEST: JsonRpcCode.InvalidRequest,
  E_METHOD_NOT_FOUND: JsonRpcCode.MethodNotFound,
  E_INVALID_PARAMS: JsonRpcCode.InvalidParams,
  E_INTERNAL: JsonRpcCode.InternalError,
  // As LSP: after shutdown, requests are invalid.
  E_SHUTTING_DOWN: JsonRpcCode.InvalidRequest,
  E_RESPONSE_TOO_LARGE: -32001,
  // Server errors.
  E_NOT_INITIALIZED: -32002,
  E_ALREADY_INITIALIZED: -32003,
  E_PROTOCOL_VERSION: -32004,
  E_PERMISSION_DENIED: -32010,
  E_STATE_DIR_LOCKED: -32020,
  E_STATE_DIR: -32021,
  E_SOCKET: -32022,
  // One client may not hold more than its share of the agent: connections, time, memory.
  E_TOO_MANY_CONNECTIONS: -32023,
  E_FRAME_TIMEOUT: -32024,
  E_FRAME_BUDGET: -32025,
  E_INPUT_BUSY: -32026,
  E_AGENT_UNREACHABLE: -32030,
  E_NOT_FOUND: -32040,
  E_INVALID_WORKSPACE: -32041,
  E_INVALID_STATE: -32042,
  E_IDEMPOTENCY_CONFLICT: -32043,
  E_MOUNT: -32050,
  E_CGROUP: -32051,
  E_SPAWN: -32052,
  E_RUNTIME_UNAVAILABLE: -32053,
  E_CONTAINER: -32054,
  E_UNSUPPORTED_CHANGE: -32060,
  E_HUNK_MISMATCH: -32061,
  E_FILE_TOO_LARGE: -32062,
  E_UNSAFE_PATH: -32063,
  E_IO: -32064,
  // Undo would lose what changed since the operation it undoes.
  E_CHANGED_SINCE: -32065,
  E_IMAGE: -32070,
  E_IMAGE_IN_USE: -32071,
  E_PULL: -32072,
} as const;

export type ErrorCode = keyof typeof errorCatalog;

export interface ErrorData {
  code: ErrorCode;
  hint?: string;
  /** For E_INVALID_PARAMS: the dotted path of the field that is wrong. */
  field?: string;
  [extra: string]: unknown;
}

/** A failure the agent reports to a client (or the CLI to a person) on purpose. */
export class PaddockError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "PaddockError";
  }

  get rpcCode(): number {
    return errorCatalog[this.code];
  }

  toData(): ErrorData {
    const data: ErrorData = { code: this.code, ...this.extra };
    if (this.hint !== undefined) data.hint = this.hint;
    return data;
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(errorCatalog, value);
}

/**
 * An unexpected failure (a file system's, most often) while the agent works in its state dir,
 * as an error a person can act on; a PaddockError passes as it is.
 */
export function stateDirFailure(err: unknown, what: string, code: ErrorCode = "E_IO", hint = "check the state dir's disk and permissions"): PaddockError {
  if (err instanceof PaddockError) return err;
  const errno = (err as NodeJS.ErrnoException).code;
  return new PaddockError(code, `${what}: ${errno ?? (err as Error).message}`, errno === "ENOSPC" ? "the state dir's disk is full" : hint);
}
