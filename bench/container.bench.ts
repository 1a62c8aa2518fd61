/**
 * Container sandboxes: create + exec `true` through the agent, beside a raw `runc run` of an
 * equivalent bundle (the same image layers mounted the same way, the same config, `true`
 * as its process) in the same run; and a container of a big image beside one of a tiny
 * image once both are unpacked (creation must not grow with the image).
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { AgentClient } from "../protocol/client";
import { containerConfig } from "../agent/runtime/container/container-spec";
import { percentile, ratio, round, startBenchAgent, timeMs, writeResults, type Row } from "./lib";
import { busyboxFiles, layerTar, ociLayoutOf } from "../test/helpers/images";

const ROUNDS = Number(process.env.BENCH_CONTAINER_ROUNDS ?? 15);
const BIG_FILES = Number(process.env.BENCH_BIG_IMAGE_FILES ?? 20_000);

/** An image whose second layer holds `files` files of 4 KiB (none when 0). */
function image(work: string, name: string, files: number): string {
  const base = path.join(work, name);
  fs.mkdirSync(base, { recursive: true });
  const layers = [{ tar: layerTar(base, "os", { ...busyboxFiles(["sh", "true"]), "etc/os-release": `ID=${name}\n` }) }];
  if (files > 0) {
    const data: Record<string, string> = {};
    const block = "x".repeat(4096);
    for (let i = 0; i < files; i++) data[`data/d${Math.floor(i / 500)}/f${i}`] = block;
    layers.push({ tar: layerTar(base, "data", data) });
  }
  return ociLayoutOf(path.join(base, "layout"), layers, { Env: ["PATH=/bin"] });
}

async function agentRounds(client: AgentClient, ws: string, imageName: string): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    let id = "";
    samples.push(
      await timeMs(async () => {
        id = (await client.request("sandbox/create", { workspace: ws, runtime: "container", image: imageName })).id;
        const done = await client.request("sandbox/exec", { id, argv: ["true"] });
        if (done.exitCode !== 0) throw new Error(`true failed: ${done.stderr}`);
      }),
    );
    await client.request("sandbox/delete", { id });
  }
  return samples;
}

/** The anchor: mount the same layers under a fresh upper, `runc run` the bundle with `true`, unmount. */
function rawRuncRounds(work: string, layerDirs: string[], ws: string, init: string): number[] {
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const dir = path.join(work, `raw-${i}`);
    const [upper, wk, rootfs, bundle] = ["upper", "work", "rootfs", "bundle"].map((d) => path.join(dir, d)) as [string, string, string, string];
    for (const d of [upper, wk, rootfs, bundle]) fs.mkdirSync(d, { recursive: true });
    const config = containerConfig({ rootfs, workspaceView: ws, initBinary: init, imageConfig: { config: { Env: ["PATH=/bin"] } }, network: "none", limits: {}, hostname: "paddock" }) as { process: { args: string[] } };
    config.process.args = ["/bin/true"];
    fs.writeFileSync(path.join(bundle, "config.json"), JSON.stringify(config));
    const started = performance.now();
    execFileSync("mount", ["-t", "overlay", "raw", "-o", `lowerdir=${[...layerDirs].reverse().join(":")},upperdir=${upper},workdir=${wk}`, rootfs]);
    const run = spawnSync("runc", ["--root", path.join(work, "raw-runc"), "run", "--bundle", bundle, `bench-raw-${i}`], { stdio: "ignore" });
    execFileSync("umount", [rootfs]);
    samples.push(performance.now() - started);
    if (run.status !== 0) throw new Error(`raw runc run failed with ${run.status}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return samples;
}

/** The second anchor where podman is installed: `podman run --rootfs` of the same layers, merged, with `true`. */
function podmanRounds(work: string, layerDirs: string[]): number[] | undefined {
  if (spawnSync("podman", ["--version"], { stdio: "ignore" }).status !== 0) return undefined;
  const rootfs = path.join(work, "podman-rootfs");
  fs.mkdirSync(rootfs, { recursive: true });
  // podman's --rootfs takes a folder: the image's layers copied into one, bottom first.
  for (const layer of layerDirs) execFileSync("cp", ["-a", `${layer}/.`, rootfs]);
  const samples: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const started = performance.now();
    const run = spawnSync("podman", ["run", "--rm", "--network", "none", "--rootfs", rootfs, "/bin/true"], { stdio: "ignore" });
    samples.push(performance.now() - started);
    if (run.status !== 0) return undefined;
  }
  return samples;
}

async function main(): Promise<void> {
  const agent = await startBenchAgent("paddock-bench-container-");
  try {
    const client = await agent.client();
    const ws = path.join(agent.work, "ws");
    fs.mkdirSync(ws);
    fs.writeFileSync(path.join(ws, "README.md"), "# bench\n");
    await client.request("image/import", { source: image(agent.work, "tiny", 0), name: "bench/tiny:1" });
    const bigImport = await timeMs(() => client.request("image/import", { source: image(agent.work, "big", BIG_FILES), name: "bench/big:1" }));
    // One container first: the runtime is chosen (system/check) and caches are warm for both sides.
    await agentRounds(client, ws, "bench/tiny:1");

    const tiny = await agentRounds(client, ws, "bench/tiny:1");
    const big = await agentRounds(client, ws, "bench/big:1");
    const store = path.join(agent.stateDir, "images");
    const images = JSON.parse(fs.readFileSync(path.join(store, "images.json"), "utf8")) as { name: string; layers: string[] }[];
    const tinyLayers = images.find((i) => i.name === "bench/tiny:1")!.layers.map((d) => path.join(store, "layers", d.slice("sha256:".length)));
    const raw = rawRuncRounds(agent.work, tinyLayers, ws, path.join(__dirname, "..", "dist", "native", "container-init"));
    const podman = podmanRounds(agent.work, tinyLayers);

    // One more command in a running container: through the agent, and runc exec by hand.
    const { id } = await client.request("sandbox/create", { workspace: ws, runtime: "container", image: "bench/tiny:1" });
    const execs: number[] = [];
    const runcExecs: number[] = [];
    for (let i = 0; i < ROUNDS * 2; i++) {
      execs.push(await timeMs(() => client.request("sandbox/exec", { id, argv: ["true"] })));
      runcExecs.push(await timeMs(() => spawnSync("runc", ["--root", path.join(agent.stateDir, "runc"), "exec", `paddock-${id}`, "/bin/true"], { stdio: "ignore" })));
    }
    await client.request("sandbox/delete", { id });

    const [t, b, r, e, re] = [tiny, big, raw, execs, runcExecs].map((s) => round(percentile(s, 50))) as [number, number, number, number, number];
    const rows: Row[] = [
      ["sandbox/create (container) + sandbox/exec true (p50)", `${t} ms`, `raw runc run of the same bundle ${r} ms (×${ratio(t, r)})`, "≤ 1.2× raw runc run", t <= 1.2 * r],
      ...(podman ? [["sandbox/create (container) + sandbox/exec true (p50), second anchor", `${t} ms`, `podman run --rootfs of the same layers ${round(percentile(podman, 50))} ms (×${ratio(t, percentile(podman, 50))})`, "", undefined] as Row] : []),
      ["sandbox/exec true in a running container (p50)", `${e} ms`, `runc exec of /bin/true ${re} ms (×${ratio(e, re)})`, "", undefined],
      [`the same with an image of ${BIG_FILES} more files (${Math.round((BIG_FILES * 4) / 1024)} MiB), unpacked (p50)`, `${b} ms`, `tiny image ${t} ms (×${ratio(b, t)}); its import and unpacking, once: ${round(bigImport)} ms`, "O(1) in image size", b <= 1.2 * t],
    ];
    writeResults("container", "Container sandboxes", `${ROUNDS} rounds each, runc. The raw run includes its teardown (runc run deletes its container when true exits) and Paddock's create does not include sandbox/delete (the sandbox stays for more commands); ${podman ? "podman run --rootfs is the second anchor." : "podman is not installed here (or could not run a container), so raw runc is the only anchor."}`, { containerCreateExecP50Ms: t, bigImageCreateExecP50Ms: b, rawRuncRunP50Ms: r, bigImageImportMs: round(bigImport), ratioToRaw: ratio(t, r), execTrueP50Ms: e, runcExecTrueP50Ms: re }, rows);
  } finally {
    agent.stop();
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
