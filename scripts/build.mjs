// Builds dist/: the CLI and agent bundle, the extension bundle, and the native helpers.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, statSync, existsSync } from "node:fs";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  logLevel: "warning",
  define: { __PADDOCK_VERSION__: JSON.stringify(pkg.version) },
};

await build({ ...common, entryPoints: ["agent/cli/main.ts"], outfile: "dist/paddock.js", external: ["koffi", "node-pty"] });
chmodSync("dist/paddock.js", 0o755);
// Banner and footer time the bundle's own evaluation: part of the activation time it reports.
await build({
  ...common,
  entryPoints: ["extension/extension.ts"],
  outfile: "dist/extension.js",
  external: ["vscode", "koffi", "node-pty"],
  banner: { js: '"use strict"; var __paddockLoadStart = performance.now();' },
  footer: { js: "globalThis.__paddockLoadMs = performance.now() - __paddockLoadStart;" },
});

// Native helpers: the probe guest's /init, the containers' PID 1 and the VMs' guest agent
// (static: the guests and images have no libc of ours), and paddock-enter, the privileged
// steps before bubblewrap.
mkdirSync("dist/native", { recursive: true });
const natives = [
  { source: "native/probe-init.c", binary: "dist/native/probe-init", flags: ["-static", "-Os", "-s"] },
  { source: "native/container-init.c", binary: "dist/native/container-init", flags: ["-static", "-Os", "-s"] },
  { source: "native/guest-agent.c", binary: "dist/native/guest-agent", flags: ["-static", "-Os", "-s"] },
  { source: "native/paddock-enter.c", binary: "dist/native/paddock-enter", flags: ["-O2", "-s"] },
];
for (const { source, binary, flags } of natives) {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) continue;
  try {
    execFileSync("gcc", [...flags, "-Wall", "-Wextra", "-Werror", "-o", binary, source], { stdio: "inherit" });
    // Said once, when it is built: what the VMs' guests (and the containers' PID 1) carry.
    if (flags.includes("-static")) console.log(`build: ${binary} ${Math.round(statSync(binary).size / 1024)} KiB (static)`);
  } catch {
    console.error(`build: could not compile ${source} with gcc; install gcc and libc6-dev (npm run setup does)`);
    process.exit(1);
  }
}
