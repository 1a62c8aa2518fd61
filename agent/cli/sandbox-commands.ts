/** `paddock create | ls | exec | stop | start | rm | gc`: sandboxes from the command line. */
import * as os from "node:os";
import * as path from "node:path";
import { StringDecoder } from "node:string_decoder";
import { PaddockError } from "../../protocol/errors";
import type { AgentClient } from "../../protocol/client";
import type { AgentNotificationArgs, Limits, Sandbox } from "../../protocol/methods";
import { NETWORK_MODES, RUNTIME_KINDS } from "../../protocol/runtime-kinds";
import { renderTable } from "./table";
import { print } from "./output";

export interface SandboxCommandOptions {
  json: boolean;
  name?: string;
  network?: string;
  runtime?: string;
  image?: string;
  memory?: string;
  pids?: string;
  cpus?: string;
  tmp?: string;
  ttl?: string;
}

function number(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new PaddockError("E_INVALID_PARAMS", `--${flag} ${JSON.stringify(value)} is not a number`, `e.g. --${flag} 512`);
  return n;
}


function sandboxRows(sandboxes: Sandbox[]): string {
  if (sandboxes.length === 0) return "No sandboxes. Create one with: paddock create [DIR]";
  return renderTable(
    ["ID", "NAME", "STATE", "RUNTIME", "NETWORK", "CREATED", "WORKSPACE"],
    sandboxes.map((s) => [s.id, s.name, s.state, s.image ? `container (${s.image.name})` : s.vm ? `vm (${s.vm.accelerator})` : s.runtime, s.network, s.createdAt.replace("T", " ").slice(0, 19), s.workspace]),
  );
}

/** The limits in force, as sandbox/create reports them, and those the agent could not enforce. */
function limitsLine(sandbox: Sandbox): string {
  const { memoryMiB, pids, cpus, tmpMiB } = sandbox.limits;
  const parts = [
    ...(memoryMiB !== undefined ? [`memory ${memoryMiB} MiB`] : []),
    ...(cpus !== undefined ? [`${cpus} CPUs`] : []),
    ...(pids !== undefined ? [`${pids} processes`] : []),
    ...(tmpMiB !== undefined ? [`/tmp ${tmpMiB} MiB`] : []),
  ];
  const missing = sandbox.limitsUnavailable?.length ? `; not enforced (no cgroups): ${sandbox.limitsUnavailable.join(", ")}` : "";
  return `Limits: ${parts.join(", ") || "none"}${missing}`;
}

export async function createCommand(client: AgentClient, dir: string | undefined, o: SandboxCommandOptions): Promise<number> {
  const limits: Limits = {};
  const memoryMiB = number("memory", o.memory);
  const pids = number("pids", o.pids);
  const cpus = number("cpus", o.cpus);
  const tmpMiB = number("tmp", o.tmp);
  if (memoryMiB !== undefined) limits.memoryMiB = memoryMiB;
  if (pids !== undefined) limits.pids = pids;
  if (cpus !== undefined) limits.cpus = cpus;
  if (tmpMiB !== undefined) limits.tmpMiB = tmpMiB;
  const network = o.network;
  if (network !== undefined && !isOneOf(NETWORK_MODES, network)) {
    throw new PaddockError("E_INVALID_PARAMS", `--network ${JSON.stringify(network)} is not ${orList(NETWORK_MODES)}`, "use --network none (default), host, or nat (containers)");
  }
  const asked = o.runtime;
  if (asked !== undefined && !isOneOf(RUNTIME_KINDS, asked)) {
    throw new PaddockError("E_INVALID_PARAMS", `--runtime ${JSON.stringify(asked)} is not ${orList(RUNTIME_KINDS)}`, `use --runtime process (default), ${orList(RUNTIME_KINDS.filter((k) => k !== "process"))}`);
  }
  const runtime = asked ?? (o.image !== undefined ? "container" : undefined);
  const sandbox = await client.request("sandbox/create", {
    workspace: path.resolve(dir ?? "."),
    ...(runtime !== undefined ? { runtime } : {}),
    ...(o.image !== undefined ? { image: o.image } : {}),
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(network !== undefined ? { network } : {}),
    ...(Object.keys(limits).length > 0 ? { limits } : {}),
    ...(o.ttl !== undefined ? { ttlSeconds: number("ttl", o.ttl) } : {}),
  });
  print(o.json, sandbox, () => `${sandbox.id}  (${sandbox.name}, ${sandbox.workspace})\n${limitsLine(sandbox)}\nOpen a shell in it: paddock exec ${sandbox.id}`);
  return 0;
}

export async function listCommand(client: AgentClient, dir: string | undefined, o: SandboxCommandOptions): Promise<number> {
  const { sandboxes } = await client.request("sandbox/list", dir === undefined ? {} : { workspace: path.resolve(dir) });
  print(o.json, { sandboxes }, () => sandboxRows(sandboxes));
  return 0;
}

export async function lifecycleCommand(client: AgentClient, verb: "stop" | "start" | "rm", id: string | undefined, o: SandboxCommandOptions): Promise<number> {
  if (!id) throw new PaddockError("E_INVALID_PARAMS", `paddock ${verb} needs a sandbox id`, "paddock ls lists them");
  if (verb === "rm") {
    const result = await client.request("sandbox/delete", { id });
    print(o.json, result, () => (result.deleted ? `deleted ${id}` : `${id} was already gone`));
    return 0;
  }
  const sandbox = await client.request(verb === "stop" ? "sandbox/stop" : "sandbox/start", { id });
  print(o.json, sandbox, () => `${sandbox.id} ${sandbox.state}`);
  return 0;
}

export async function gcCommand(client: AgentClient, o: SandboxCommandOptions): Promise<number> {
  const result = await client.request("sandbox/gc", {});
  print(o.json, result, () => `expired and deleted: ${result.deleted.join(", ") || "none"}\ncleaned: ${result.cleaned.join(", ") || "nothing"}`);
  return 0;
}

/**
 * `paddock exec ID -- CMD...`: an interactive terminal when stdin is one (raw mode, resize,
 * Ctrl-C reaching the program), plain pipes otherwise. The program's exit code is ours.
 * Without CMD, the sandbox's own login shell (the agent lets the sandbox choose it).
 */
export async function execCommand(client: AgentClient, id: string | undefined, argv: string[]): Promise<number> {
  if (!id) throw new PaddockError("E_INVALID_PARAMS", "paddock exec needs a sandbox id", "paddock exec ID -- CMD...");
  const interactive = process.stdin.isTTY === true && process.stdout.isTTY === true;
  const size = () => ({ cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 });

  // Output can arrive before the spawn's answer names the pid: hold it until then.
  const spawned: { pid?: number } = {};
  const held: AgentNotificationArgs[] = [];
  let exit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  const handle = (...[method, params]: AgentNotificationArgs) => {
    if (method === "process/output" && params.pid === spawned.pid) (params.stream === "stderr" ? process.stderr : process.stdout).write(params.data);
    if (method === "process/exit" && params.pid === spawned.pid) exit(params.exitCode ?? 128 + (os.constants.signals[params.signal as NodeJS.Signals] ?? 9));
  };
  client.onNotification((...args) => (spawned.pid === undefined ? held.push(args) : handle(...args)));
  const running = (await client.request("process/spawn", { id, ...(argv.length > 0 ? { argv } : { shell: true as const }), ...(interactive ? { pty: size() } : {}) })).pid;
  spawned.pid = running;
  for (const args of held.splice(0)) handle(...args);

  const onResize = () => void client.request("process/resize", { pid: running, ...size() }).catch(() => undefined);
  if (interactive) {
    process.stdin.setRawMode(true);
    process.stdout.on("resize", onResize);
  }
  // One write at a time: input a program reads slowly waits here, in the pipe, not in the agent.
  const decoder = new StringDecoder("utf8");
  let finished = false;
  process.stdin.on("data", (d: Buffer) => {
    process.stdin.pause();
    void client
      .request("process/write", { pid: running, data: decoder.write(d) })
      .catch(() => undefined)
      .finally(() => finished || process.stdin.resume());
  });
  process.stdin.on("end", () => void client.request("process/write", { pid: running, data: decoder.end(), eof: true }).catch(() => undefined));
  try {
    return await exited;
  } finally {
    finished = true;
    if (interactive) {
      process.stdin.setRawMode(false);
      process.stdout.off("resize", onResize);
    }
    process.stdin.pause();
  }
}

function isOneOf<T extends string>(values: readonly T[], value: string): value is T {
  return (values as readonly string[]).includes(value);
}

/** "a, b or c". */
function orList(values: readonly string[]): string {
  return values.length < 2 ? values.join("") : `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
}
