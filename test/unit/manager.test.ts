/**
 * The sandbox manager's lifecycle against fake runtimes: what it records, in which order it
 * asks a runtime to start, halt and stop, and how it puts things in order after a restart.
 * The changeset is a fake too (no mount): this is the manager's logic, not the kernel's.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { SandboxManager } from "../../agent/sandbox/manager";
import { SandboxStore } from "../../agent/sandbox/store";
import { ProcessTable } from "../../agent/process/process-table";
import { Logger } from "../../agent/log/logger";
import { UpperFormat } from "../../agent/changeset/upper-format";
import { Runtimes } from "../../agent/runtimes";
import type { Changesets, EnterSpec } from "../../agent/changeset/changesets";
import type { SandboxPaths } from "../../agent/state/sandbox-layout";
import type { ProcessRecord, RuntimePart, SandboxRecord, VmRecord } from "../../agent/state/sandbox-record";
import type { CreateRequest, Leftover, SandboxRuntime, StartContext, Validated } from "../../agent/runtime/runtime";
import type { LaunchSpec } from "../../agent/runtime/launch-spec";
import type { Launch } from "../../agent/process/launch";
import type { Completed } from "../../agent/process/run-to-completion";
import type { CheckResult, Limits, RuntimeReadiness } from "../../protocol/methods";
import { PaddockError } from "../../protocol/errors";

const root: { uid: number } = { uid: 0 };
const quiet = new Logger([], "error");

/** A changeset that mounts nothing: the view is the merged folder itself. */
class FakeChangesets implements Changesets {
  readonly kind = "kernel overlayfs" as const;
  readonly upperFormat = UpperFormat.kernel;
  readonly mounted = new Set<string>();
  async mount(id: string): Promise<void> {
    this.mounted.add(id);
  }
  async unmount(id: string): Promise<void> {
    this.mounted.delete(id);
  }
  isMounted(id: string): boolean {
    return this.mounted.has(id);
  }
  viewPath(_id: string, paths: SandboxPaths): string {
    return paths.merged;
  }
  enter(spec: EnterSpec) {
    return { before: [], bwrapFirst: [], view: spec.merged };
  }
  mountedIds(): string[] {
    return [...this.mounted];
  }
}

/** A runtime that runs commands as plain host processes and writes down what it was asked. */
class FakeRuntime<R extends SandboxRecord> implements SandboxRuntime<R> {
  readonly networks = ["none"] as const;
  readonly supported = true;
  readonly calls: string[] = [];
  contexts: StartContext[] = [];
  failStart: Error | undefined;
  orphanIds: string[] = [];

  constructor(
    readonly kind: R["runtime"],
    private readonly part: RuntimePart<R>,
    readonly survivesAgentRestart: boolean,
    readonly startsSlowly: boolean,
  ) {}

  readiness(_checks: CheckResult[]): RuntimeReadiness {
    return { available: true, missing: [] };
  }
  validate(request: CreateRequest): Validated {
    this.calls.push("validate");
    if (request.network && request.network !== "none") throw new PaddockError("E_INVALID_PARAMS", "no network", "none");
    return { limits: { memoryMiB: 64 }, unavailable: [] };
  }
  async prepare(): Promise<RuntimePart<R>> {
    this.calls.push("prepare");
    return this.part;
  }
  cgroupLimits(record: R): Limits {
    return record.limits;
  }
  async start(record: R, context: StartContext): Promise<void> {
    this.calls.push(`start ${record.id}`);
    this.contexts.push(context);
    if (this.failStart) throw this.failStart;
  }
  async halt(record: R): Promise<void> {
    this.calls.push(`halt ${record.id}`);
  }
  async stop(record: R): Promise<void> {
    this.calls.push(`stop ${record.id}`);
  }
  deleted(record: R): void {
    this.calls.push(`deleted ${record.id}`);
  }
  launch(_record: R, spec: LaunchSpec): Launch {
    return { host: ["/bin/sh", "-c", 'cd "$1" && shift && exec "$@"', "sh", spec.merged, ...spec.argv] };
  }
  async checkExec(_record: R, done: Completed): Promise<void> {
    this.calls.push(`checkExec ${done.exitCode}`);
  }
  async removeLeftovers(id: string): Promise<void> {
    this.calls.push(`removeLeftovers ${id}`);
  }
  async orphans(known: (id: string) => boolean): Promise<Leftover[]> {
    return this.orphanIds.filter((id) => !known(id)).map((id) => ({ what: `thing of ${id}`, remove: async () => void this.calls.push(`orphan removed ${id}`) }));
  }
  imageOf(): undefined {
    return undefined;
  }
}

interface Rig {
  dir: string;
  workspace: string;
  store: SandboxStore;
  changesets: FakeChangesets;
  process: FakeRuntime<ProcessRecord>;
  vm: FakeRuntime<VmRecord>;
  manager: SandboxManager;
  notes: { method: string; params: unknown }[];
}

function rig(t: { after(fn: () => unknown): void }, base?: Pick<Rig, "dir" | "workspace">, bootId = "boot-1"): Rig {
  const dir = base?.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "paddock-manager-"));
  const workspace = base?.workspace ?? path.join(dir, "ws");
  fs.mkdirSync(workspace, { recursive: true });
  const store = new SandboxStore(path.join(dir, "state", "sandboxes"));
  const changesets = new FakeChangesets();
  const process = new FakeRuntime<ProcessRecord>("process", { runtime: "process" }, true, false);
  const vm = new FakeRuntime<VmRecord>("vm", { runtime: "vm", vm: { accelerator: "tcg" } }, false, true);
  // The container runtime is not exercised here: the process fake stands in for its slot's type.
  const container = new FakeRuntime<ProcessRecord>("process", { runtime: "process" }, false, false) as unknown as SandboxRuntime<Extract<SandboxRecord, { runtime: "container" }>>;
  const notes: Rig["notes"] = [];
  const manager = new SandboxManager({
    store,
    stateDir: path.join(dir, "state"),
    bootId,
    cgroups: undefined,
    processes: new ProcessTable(quiet),
    log: quiet,
    changesets,
    runtimes: new Runtimes({ process, container, vm }),
    broadcast: (_uid, method, params) => notes.push({ method, params }),
  });
  t.after(async () => {
    await manager.closeWatchers();
    if (!base) fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, workspace, store, changesets, process, vm, manager, notes };
}

function onDisk(r: Rig, id: string): SandboxRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(r.store.paths(id).record, "utf8")) as SandboxRecord;
  } catch {
    return undefined;
  }
}

test("create: validated, prepared, recorded, mounted and started in that order; the runtime's part is in the record", async (t) => {
  const r = rig(t);
  const sandbox = await r.manager.create(root, { workspace: r.workspace, runtime: "vm" });
  assert.equal(sandbox.state, "running");
  assert.deepEqual(r.vm.calls, ["validate", "prepare", `start ${sandbox.id}`]);
  assert.deepEqual(r.process.calls, [], "only the sandbox's own runtime is asked");
  const record = onDisk(r, sandbox.id);
  assert.equal(record?.state, "running");
  assert.deepEqual(record?.runtime === "vm" && record.vm, { accelerator: "tcg" });
  assert.deepEqual(record?.limits, { memoryMiB: 64 }, "the limits the runtime validated");
  assert.equal(r.changesets.isMounted(sandbox.id), true);
  const context = r.vm.contexts[0]!;
  assert.equal(context.view, r.store.paths(sandbox.id).merged);
  assert.equal(context.owner.uid, 0);
  assert.deepEqual(
    r.notes.filter((n) => n.method === "sandbox/didChangeState").map((n) => (n.params as { state: string }).state),
    ["running"],
  );
});

test("create: a refusal of the runtime records nothing; a start that fails leaves nothing behind", async (t) => {
  const r = rig(t);
  await assert.rejects(r.manager.create(root, { workspace: r.workspace, network: "host" }), /no network/);
  assert.deepEqual(r.manager.list(root), []);
  r.process.failStart = new PaddockError("E_CONTAINER", "it would not start", "none");
  await assert.rejects(r.manager.create(root, { workspace: r.workspace }), /it would not start/);
  assert.deepEqual(r.manager.list(root), []);
  assert.deepEqual(fs.readdirSync(r.store.root), [], "its folder is gone");
  assert.equal(r.changesets.mounted.size, 0, "and its view unmounted");
  const id = r.process.calls.find((c) => c.startsWith("start "))!.slice("start ".length);
  assert.deepEqual(r.process.calls.slice(-4), [`start ${id}`, `halt ${id}`, `stop ${id}`, `deleted ${id}`], "what was started is stopped, once");
});

test("exec runs what the runtime launches, in the sandbox's view, and lets the runtime check the end", async (t) => {
  const r = rig(t);
  const { id } = await r.manager.create(root, { workspace: r.workspace });
  fs.writeFileSync(path.join(r.store.paths(id).merged, "hello"), "hi\n");
  const done = await r.manager.exec(root, id, { argv: ["cat", "hello"] });
  assert.equal(done.stdout, "hi\n");
  assert.equal(done.exitCode, 0);
  assert.equal(r.process.calls.at(-1), "checkExec 0");
});

test("stop halts and stops the runtime and unmounts; start starts it again; exec meanwhile is refused", async (t) => {
  const r = rig(t);
  const { id } = await r.manager.create(root, { workspace: r.workspace });
  r.process.calls.length = 0;
  const stopped = await r.manager.stop(root, id);
  assert.equal(stopped.state, "stopped");
  assert.deepEqual(r.process.calls, [`halt ${id}`, `stop ${id}`]);
  assert.equal(r.changesets.isMounted(id), false);
  assert.equal(onDisk(r, id)?.state, "stopped");
  await assert.rejects(r.manager.exec(root, id, { argv: ["true"] }), (err: PaddockError) => err.code === "E_INVALID_STATE" && /start it first/.test(err.hint ?? ""));
  assert.equal((await r.manager.start(root, id)).state, "running");
  assert.equal(r.process.calls.at(-1), `start ${id}`);
});

test("delete: halted, stopped, its folder and record gone, then the runtime is told; deleting again is no error", async (t) => {
  const r = rig(t);
  const { id } = await r.manager.create(root, { workspace: r.workspace });
  r.process.calls.length = 0;
  assert.deepEqual(await r.manager.delete(root, id), { id, deleted: true });
  assert.deepEqual(r.process.calls, [`halt ${id}`, `stop ${id}`, `deleted ${id}`]);
  assert.equal(fs.existsSync(r.store.paths(id).dir), false);
  assert.deepEqual(await r.manager.delete(root, id), { id, deleted: false });
  assert.equal(r.notes.at(-1)?.method, "sandbox/didChangeState");
  assert.deepEqual(r.notes.at(-1)?.params, { id, state: "deleted" });
});

test("what a runtime runs on ends by itself: the sandbox is stopped, its record says so", async (t) => {
  const r = rig(t);
  const { id } = await r.manager.create(root, { workspace: r.workspace, runtime: "vm" });
  r.vm.contexts[0]!.onEnded("QEMU was killed");
  for (let i = 0; i < 100 && r.manager.get(root, id).state !== "stopped"; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(r.manager.get(root, id).state, "stopped");
  assert.equal(onDisk(r, id)?.state, "stopped");
});

test("another user's sandbox does not exist for them", async (t) => {
  const r = rig(t);
  const { id } = await r.manager.create(root, { workspace: r.workspace });
  assert.deepEqual(r.manager.list({ uid: 4242 }), []);
  assert.throws(() => r.manager.get({ uid: 4242 }, id), (err: PaddockError) => err.code === "E_NOT_FOUND");
  assert.deepEqual(await r.manager.delete({ uid: 4242 }, id), { id, deleted: false });
  assert.equal(r.manager.get(root, id).state, "running");
});

test("reconcile after an agent restart: a runtime that survives it is adopted, one that does not is started again (a slow one in the background)", async (t) => {
  const first = rig(t);
  const kept = await first.manager.create(root, { workspace: first.workspace });
  const booted = await first.manager.create(root, { workspace: first.workspace, runtime: "vm" });
  const stopped = await first.manager.create(root, { workspace: first.workspace });
  await first.manager.stop(root, stopped.id);
  await first.manager.closeWatchers();

  const second = rig(t, first);
  // The mounts outlived the agent (as the kernel's do).
  for (const id of [kept.id, booted.id]) second.changesets.mounted.add(id);
  await second.manager.reconcile();
  assert.deepEqual(second.process.calls, [`stop ${stopped.id}`], "the process sandbox runs on untouched; the stopped one is made sure of");
  for (let i = 0; i < 100 && !second.vm.calls.includes(`start ${booted.id}`); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(second.vm.calls, [`start ${booted.id}`], "the VM boots again");
  assert.deepEqual(second.manager.list(root).map((s) => [s.id, s.state]).sort(), [[kept.id, "running"], [booted.id, "running"], [stopped.id, "stopped"]].sort());
});

test("reconcile: an interrupted creation is finished off; a folder without a record and a runtime's orphans are removed", async (t) => {
  const first = rig(t);
  const { id } = await first.manager.create(root, { workspace: first.workspace });
  await first.manager.closeWatchers();
  // As if the agent died while creating it.
  const record = onDisk(first, id)!;
  first.store.save({ ...record, state: "creating" });
  fs.mkdirSync(path.join(first.store.root, "sbx-00000000dead"));

  const second = rig(t, first);
  second.process.orphanIds = ["sbx-0000000000aa", id];
  await second.manager.reconcile();
  assert.deepEqual(second.manager.list(root), []);
  assert.deepEqual(fs.readdirSync(second.store.root), []);
  assert.equal(second.process.calls.includes("removeLeftovers sbx-00000000dead"), true, "each runtime removes what it may hold of the folder");
  assert.equal(second.process.calls.includes("orphan removed sbx-0000000000aa"), true);
  assert.equal(second.process.calls.includes(`orphan removed ${id}`), true, "the interrupted creation's leftovers too, once its record is gone");
});

test("each sandbox's own runtime is asked, by its record's runtime", async (t) => {
  const r = rig(t);
  const p = await r.manager.create(root, { workspace: r.workspace });
  const v = await r.manager.create(root, { workspace: r.workspace, runtime: "vm" });
  r.process.calls.length = 0;
  r.vm.calls.length = 0;
  await r.manager.exec(root, v.id, { argv: ["true"] });
  await r.manager.exec(root, p.id, { argv: ["false"] });
  assert.deepEqual(r.vm.calls, ["checkExec 0"]);
  assert.deepEqual(r.process.calls, ["checkExec 1"]);
});

test("reconcile: a record of a runtime this agent does not know, or without its runtime's part, is left alone and breaks nothing", async (t) => {
  const first = rig(t);
  const { id } = await first.manager.create(root, { workspace: first.workspace });
  await first.manager.closeWatchers();
  const record = onDisk(first, id)!;
  const foreign = "sbx-0000000000f1";
  const partless = "sbx-0000000000f2";
  for (const [other, shape] of [[foreign, { runtime: "wasm" }], [partless, { runtime: "container" }]] as const) {
    fs.mkdirSync(path.join(first.store.root, other, "upper"), { recursive: true });
    fs.writeFileSync(first.store.paths(other).record, JSON.stringify({ ...record, id: other, ...shape }));
  }

  const second = rig(t, first);
  second.changesets.mounted.add(id);
  await second.manager.reconcile();
  assert.deepEqual(second.manager.list(root).map((s) => s.id), [id], "only the record it knows");
  assert.deepEqual(second.manager.imageUsers("sha256:x"), [], "queries over every record still work");
  assert.equal(fs.existsSync(second.store.paths(foreign).upper), true, "their changes are kept");
  assert.equal(fs.existsSync(second.store.paths(partless).upper), true);
  assert.equal((await second.manager.exec(root, id, { argv: ["true"] })).exitCode, 0);
});
