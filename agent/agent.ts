/**
 * The agent: the method table and the lifecycle rules (initialize first, nothing after
 * shutdown but exit), independent of how clients reach it.
 */
import type { Readable, Writable } from "node:stream";
import type { z } from "zod/v3";
import { PaddockError } from "../protocol/errors";
import {
  PROTOCOL_VERSION,
  requests,
  clientNotifications,
  type AgentNotificationMethod,
  type AgentNotifications,
  type InitializeResult,
  type RequestMethod,
  type RequestResults,
  type RuntimeKind,
} from "../protocol/methods";
import { Dispatcher, type Call, type MethodSpec } from "./server/dispatcher";
import { Connection } from "./server/connection";
import type { Caller, Session, TransportKind } from "./session";
import type { Logger } from "./log/logger";
import type { SystemChecker } from "./check/system-check";
import type { SandboxManager } from "./sandbox/manager";
import type { SandboxReview } from "./sandbox/sandbox-review";
import type { ProcessTable } from "./process/process-table";
import { AGENT_VERSION } from "./version";
import { summary, type Images } from "./image/images";
import { AnswerGate } from "./server/answer-gate";
import { loginShellArgv } from "./runtime/login-shell";

export interface AgentOptions {
  stateDir: string;
  log: Logger;
  checker: SystemChecker;
  sandboxes: SandboxManager;
  review: SandboxReview;
  processes: ProcessTable;
  images: Images;
  vmPool: () => RequestResults["vm/pool"];
  /** The runtimes this agent can run (capabilities.runtimes). */
  runtimes: RuntimeKind[];
  /** Called when a client sends `exit`; the transport decides what that ends. */
  onExit: (session: Session, connection: Connection<Session>) => void;
  maxFrameBytes?: number;
}

/** Methods that may be called before `initialize`. */
const PRE_INIT_METHODS = new Set(["initialize", "exit"]);
type Handler<M extends RequestMethod> = (
  params: z.output<(typeof requests)[M]>,
  call: Call,
  session: Session,
) => RequestResults[M] | Promise<RequestResults[M]>;

/** Images are shared by every user of the agent: only root adds or removes them (and reads any source path). */
function requireRoot(session: Session, what: string): void {
  if (session.caller.uid !== 0 || process.getuid?.() !== 0) {
    throw new PaddockError("E_PERMISSION_DENIED", `${what} needs root (the agent and its client)`, "run the agent as root and this command with sudo");
  }
}

export class Agent {
  private readonly dispatcher: Dispatcher<Session>;
  private nextSessionId = 1;
  private readonly connections = new Map<Session, Connection<Session>>();

  constructor(private readonly options: AgentOptions) {
    const methods = new Map<string, MethodSpec<z.ZodType, Session>>();
    const request = <M extends RequestMethod>(method: M, handler: Handler<M>) =>
      methods.set(method, { params: requests[method], handler: handler as MethodSpec["handler"] });

    request("initialize", (params, _call, session) => this.initialize(params, session));
    request("shutdown", (_params, _call, session) => {
      session.shutdownRequested = true;
      return null;
    });
    request("system/ping", (params) => (params?.data === undefined ? {} : { data: params.data }));
    request("system/check", (params, call) => options.checker.run({ refresh: params?.refresh ?? false, log: call.log }));
    const { sandboxes, review, processes } = options;
    request("sandbox/create", (params, _call, session) => sandboxes.create(session.caller, params));
    request("sandbox/list", (params, _call, session) => ({ sandboxes: sandboxes.list(session.caller, params?.workspace) }));
    request("sandbox/get", (params, _call, session) => sandboxes.get(session.caller, params.id));
    request("sandbox/stop", (params, _call, session) => sandboxes.stop(session.caller, params.id));
    request("sandbox/start", (params, _call, session) => sandboxes.start(session.caller, params.id));
    request("sandbox/delete", (params, _call, session) => sandboxes.delete(session.caller, params.id));
    request("sandbox/gc", (_params, _call, session) => sandboxes.gc(session.caller));
    request("sandbox/exec", (params, _call, session) => sandboxes.exec(session.caller, params.id, params, session));
    request("sandbox/changes", (params, _call, session) => session.bigAnswer(async () => ({ changes: await review.changes(session.caller, params.id) })));
    request("sandbox/readFile", (params, _call, session) => session.bigAnswer(() => review.readFile(session.caller, params.id, params.path, params.base)));
    request("sandbox/writeFile", (params, _call, session) => review.writeFile(session.caller, params.id, params.path, params.content));
    request("sandbox/diff", (params, _call, session) => session.bigAnswer(() => review.diff(session.caller, params.id, params.paths, params.context)));
    request("sandbox/approve", (params, _call, session) => review.approve(session.caller, params.id, params));
    request("sandbox/reject", (params, _call, session) => review.reject(session.caller, params.id, params));
    request("sandbox/undo", (params, _call, session) => review.undo(session.caller, params.id, params.undo));
    request("sandbox/undoList", (params, _call, session) => review.undoList(session.caller, params.id));
    const { images } = options;
    request("image/list", () => ({ images: images.list().map(summary) }));
    request("image/import", async (params, _call, session) => {
      requireRoot(session, "importing images");
      return summary(await images.import(params.source, params.name));
    });
    request("image/pull", async (params, _call, session) => {
      requireRoot(session, "pulling images");
      return summary(await images.pull(params.reference, params.name ?? params.reference, params.insecure ?? false));
    });
    request("image/remove", (params, _call, session) => {
      requireRoot(session, "removing images");
      return { name: params.name, removed: images.remove(params.name) };
    });
    request("vm/pool", () => options.vmPool());
    request("sandbox/console", (params, _call, session) => ({ id: params.id, text: sandboxes.console(session.caller, params.id) }));
    request("image/default", async (_params, _call, session) => {
      requireRoot(session, "building the default image");
      return summary(await images.rebuildDefault());
    });
    request("process/spawn", async (params, _call, session) => ({ pid: await sandboxes.spawn(session.caller, params.id, { ...params, argv: params.argv ?? loginShellArgv() }, session) }));
    request("process/write", async (params, _call, session) => {
      await processes.write(session.caller, params.pid, params.data, params.eof ?? false, session);
      return null;
    });
    request("process/resize", (params, _call, session) => {
      processes.resize(session.caller, params.pid, params.cols, params.rows);
      return null;
    });
    request("process/kill", (params, _call, session) => {
      processes.kill(session.caller, params.pid, params.signal ?? "SIGTERM");
      return null;
    });
    request("process/list", (params, _call, session) => ({ processes: processes.list(session.caller, params?.id) }));
    methods.set("exit", {
      params: clientNotifications.exit,
      handler: (_params, _call, session: Session) => this.exit(session),
    });

    this.dispatcher = new Dispatcher(methods, guard);
  }

  /** Serves one client over a pair of streams until either side closes. */
  attach(input: Readable, output: Writable, caller: Caller, transport: TransportKind): Connection<Session> {
    const id = this.nextSessionId++;
    const log = this.options.log.child({ connectionId: id });
    const answers = new AnswerGate((listener) => connection.onDrain(listener));
    const session: Session = {
      id,
      caller,
      transport,
      initialized: false,
      shutdownRequested: false,
      // The connection is created just below; these are only called after that.
      notify: (method, params) => connection.notify(method, params),
      notifyLatest: (key, method, params, whenBehind) => connection.notifyLatest(key, method, params, whenBehind),
      onDrain: (listener) => connection.onDrain(listener),
      bigAnswer: (build) => answers.run(build),
      onClose: (listener) => connection.onClose(listener),
      get closed() {
        return connection.closed;
      },
    };
    const connection: Connection<Session> = new Connection({ input, output, dispatcher: this.dispatcher, context: session, log, maxFrameBytes: this.options.maxFrameBytes });
    this.connections.set(session, connection);
    connection.onClose(() => {
      this.connections.delete(session);
      log.debug("client disconnected");
    });
    connection.start();
    log.debug("client connected", { uid: caller.uid, pid: caller.pid, transport });
    return connection;
  }

  /**
   * To every initialized client (what is shared by all, such as images). Notifications to many
   * clients say how something is now (a sandbox's state or changes, an image's progress): a
   * later one of the same method and subject supersedes an earlier one, so a client that is
   * behind on reading gets only the latest (as `whenBehind`, if given).
   */
  broadcastToAll<M extends AgentNotificationMethod>(method: M, params: AgentNotifications[M], whenBehind?: AgentNotifications[M]): void {
    for (const session of this.connections.keys()) if (session.initialized) session.notifyLatest(subjectKey(method, params), method, params, whenBehind);
  }

  /** To every initialized client allowed to see `ownerUid`'s sandboxes; superseded as broadcastToAll's are. */
  broadcast<M extends AgentNotificationMethod>(ownerUid: number, method: M, params: AgentNotifications[M], whenBehind?: AgentNotifications[M]): void {
    for (const session of this.connections.keys()) {
      if (session.initialized && (session.caller.uid === 0 || session.caller.uid === ownerUid)) session.notifyLatest(subjectKey(method, params), method, params, whenBehind);
    }
  }

  private initialize(params: z.output<typeof requests.initialize>, session: Session): InitializeResult {
    if (session.initialized) {
      throw new PaddockError("E_ALREADY_INITIALIZED", "initialize was already called on this connection", "call initialize once per connection");
    }
    const wanted = params.protocolVersion;
    if (wanted !== undefined && wanted.split(".")[0] !== PROTOCOL_VERSION.split(".")[0]) {
      throw new PaddockError(
        "E_PROTOCOL_VERSION",
        `client speaks protocol ${wanted}, this agent speaks ${PROTOCOL_VERSION}`,
        "use a client and an agent from the same Paddock major version",
        { agentProtocolVersion: PROTOCOL_VERSION },
      );
    }
    session.initialized = true;
    const uid = process.getuid?.() ?? -1;
    this.options.log.info("client initialized", {
      connectionId: session.id,
      clientName: params.clientName,
      uid: session.caller.uid,
    });
    return {
      agentVersion: AGENT_VERSION,
      protocolVersion: PROTOCOL_VERSION,
      capabilities: { methods: [...Object.keys(requests), ...Object.keys(clientNotifications)], runtimes: this.options.runtimes },
      client: { uid: session.caller.uid, transport: session.transport },
      agent: { pid: process.pid, uid, rootless: uid !== 0, stateDir: this.options.stateDir },
    };
  }

  private exit(session: Session): void {
    const connection = this.connections.get(session);
    if (connection) this.options.onExit(session, connection);
  }
}

/** What a notification is about: its method and, where it has one, the sandbox or image it names. */
function subjectKey(method: string, params: unknown): string {
  const subject = typeof params === "object" && params !== null ? (params as { id?: unknown; name?: unknown }) : {};
  return `${method} ${String(subject.id ?? subject.name ?? "")}`;
}

function guard(method: string, session: Session): void {
  if (session.shutdownRequested && method !== "exit") {
    throw new PaddockError("E_SHUTTING_DOWN", "the agent is shutting down on this connection", 'after "shutdown" only "exit" is accepted');
  }
  if (!session.initialized && !PRE_INIT_METHODS.has(method)) {
    throw new PaddockError("E_NOT_INITIALIZED", `"${method}" needs "initialize" first`, 'send "initialize" as the first request on a connection');
  }
}
