/**
 * JSON-RPC 2.0 dispatch: envelope validation, batches, notifications, params validation and
 * the one place where thrown errors become error responses.
 */
import type { z } from "zod/v3";
import { PaddockError, errorCatalog, type ErrorCode, type ErrorData } from "../../protocol/errors";
import type { Logger } from "../log/logger";
import { DEFAULT_MAX_FRAME_BYTES } from "../../protocol/framing";

export type JsonRpcId = string | number | null;

export interface ErrorResponse {
  jsonrpc: "2.0";
  id: JsonRpcId;
  error: { code: number; message: string; data?: ErrorData };
}
export interface SuccessResponse {
  jsonrpc: "2.0";
  id: JsonRpcId;
  result: unknown;
}
export type Response = ErrorResponse | SuccessResponse;

export interface Call {
  method: string;
  /** Absent for notifications. */
  id?: JsonRpcId;
  log: Logger;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface MethodSpec<S extends z.ZodType = any, C = any> {
  params: S;
  handler: (params: z.output<S>, call: Call, context: C) => unknown;
}

/** Decides whether a call may run now (e.g. not before `initialize`); throws PaddockError if not. */
export type Guard<C> = (method: string, context: C) => void;

/** Most requests in a batch; a bigger batch is refused whole. */
export const MAX_BATCH = 1000;
/** A batch's answers together, past which the rest of it is not run (its answer could not be sent anyway). */
const MAX_BATCH_ANSWER_CHARS = DEFAULT_MAX_FRAME_BYTES;

/** Builds an error response directly (no Error object, no stack: this runs per bad message). */
export function errorResponse(id: JsonRpcId, code: ErrorCode, message: string, hint?: string): ErrorResponse {
  const data: ErrorData = hint === undefined ? { code } : { code, hint };
  return { jsonrpc: "2.0", id, error: { code: errorCatalog[code], message, data } };
}

function toErrorResponse(id: JsonRpcId, error: PaddockError): ErrorResponse {
  return { jsonrpc: "2.0", id, error: { code: error.rpcCode, message: error.message, data: error.toData() } };
}

export class Dispatcher<C> {
  constructor(
    private readonly methods: ReadonlyMap<string, MethodSpec<z.ZodType, C>>,
    private readonly guard: Guard<C>,
  ) {}

  /** Handles one parsed message: a request, a notification or a batch. Null means "send nothing". */
  async handle(message: unknown, context: C, log: Logger): Promise<Response | Response[] | null> {
    if (!Array.isArray(message)) return this.handleOne(message, context, log);
    if (message.length === 0) {
      return errorResponse(null, "E_INVALID_REQUEST", "empty batch", "a batch must contain at least one request");
    }
    if (message.length > MAX_BATCH) {
      return errorResponse(null, "E_INVALID_REQUEST", `batch of ${message.length} requests is over the limit of ${MAX_BATCH}`, "split it into smaller batches");
    }
    // One at a time, and none once the answers so far are more than one frame holds: a batch of
    // a thousand big reads never holds more than a frame's worth of answers.
    const responses: Response[] = [];
    let chars = 0;
    for (const [n, m] of message.entries()) {
      const answer = await this.handleOne(m, context, log);
      if (answer === null) continue;
      responses.push(answer);
      try {
        chars += JSON.stringify(answer).length;
      } catch {
        // Not encodable: the connection answers the batch with E_INTERNAL when it sends it.
      }
      if (chars > MAX_BATCH_ANSWER_CHARS) {
        return errorResponse(
          null,
          "E_RESPONSE_TOO_LARGE",
          `the answers to this batch's first ${n + 1} requests are over ${MAX_BATCH_ANSWER_CHARS} bytes, more than one message may hold; the other ${message.length - n - 1} were not run`,
          "ask for less at once (smaller batches, fewer paths)",
        );
      }
    }
    return responses.length > 0 ? responses : null;
  }

  private async handleOne(message: unknown, context: C, connectionLog: Logger): Promise<Response | null> {
    const envelope = validateEnvelope(message);
    if ("invalid" in envelope) {
      return errorResponse(envelope.id, "E_INVALID_REQUEST", `invalid request: ${envelope.invalid}`, ENVELOPE_HINT);
    }
    const { method, id, params, isNotification } = envelope;
    const log = connectionLog.child(isNotification ? { method } : { requestId: id, method });
    const call: Call = isNotification ? { method, log } : { method, id, log };
    try {
      const spec = this.methods.get(method);
      if (!spec) {
        throw new PaddockError("E_METHOD_NOT_FOUND", `method not found: ${method}`, "see the protocol section of README.md for the methods");
      }
      this.guard(method, context);
      const parsed = spec.params.safeParse(params);
      if (!parsed.success) throw invalidParams(parsed.error);
      log.debug("request");
      const result = await spec.handler(parsed.data, call, context);
      if (isNotification) return null;
      return { jsonrpc: "2.0", id: id ?? null, result: result === undefined ? null : result };
    } catch (err) {
      const error = asPaddockError(err);
      if (error.code === "E_INTERNAL") log.error("request failed", { error: describe(err) });
      else log.debug("request refused", { code: error.code, message: error.message });
      return isNotification ? null : toErrorResponse(id ?? null, error);
    }
  }
}

const ENVELOPE_HINT = 'a request is {"jsonrpc": "2.0", "id": 1, "method": "...", "params": {...}}';

type Envelope =
  | { method: string; id?: JsonRpcId; params: unknown; isNotification: boolean }
  | { invalid: string; id: JsonRpcId };

function validateEnvelope(message: unknown): Envelope {
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    return { invalid: "a request must be a JSON object", id: null };
  }
  const m = message as Record<string, unknown>;
  const hasId = Object.prototype.hasOwnProperty.call(m, "id");
  const idOk = !hasId || m.id === null || typeof m.id === "string" || (typeof m.id === "number" && Number.isFinite(m.id));
  const id = hasId && idOk ? (m.id as JsonRpcId) : null;
  if (!idOk) return { invalid: '"id" must be a string, a number or null', id: null };
  if (m.jsonrpc !== "2.0") return { invalid: '"jsonrpc" must be "2.0"', id };
  if (typeof m.method !== "string") return { invalid: '"method" must be a string', id };
  if (m.params !== undefined && (typeof m.params !== "object" || m.params === null)) {
    return { invalid: '"params" must be an object or an array when present', id };
  }
  return hasId
    ? { method: m.method, id, params: m.params, isNotification: false }
    : { method: m.method, params: m.params, isNotification: true };
}

function invalidParams(error: z.ZodError): PaddockError {
  const issue = error.issues[0];
  let field = issue && issue.path.length > 0 ? issue.path.map(String).join(".") : "params";
  let what = issue?.message ?? "invalid";
  if (issue?.code === "unrecognized_keys") {
    const key = (issue as { keys?: string[] }).keys?.[0] ?? "";
    field = issue.path.length > 0 ? `${field}.${key}` : key;
    what = "unknown field";
  }
  return new PaddockError("E_INVALID_PARAMS", `invalid params: "${field}": ${what}`, "see the protocol section of README.md for this method's params", { field });
}

export function asPaddockError(err: unknown): PaddockError {
  if (err instanceof PaddockError) return err;
  return new PaddockError("E_INTERNAL", `internal error: ${describe(err)}`, "this is a bug in the Paddock agent; the agent log has details");
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

