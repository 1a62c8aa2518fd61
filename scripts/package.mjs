// `npm run package`: builds, stages what the .vsix holds in .package/ (dist/ is never touched,
// so tests running the agent meanwhile are safe), with the agent's two native modules beside
// it (only the Linux x64 files it loads) and no source maps, and makes paddock-VERSION.vsix
// with @vscode/vsce.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

if (process.env.PADDOCK_PACKAGE_PREBUILT !== "1") execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" });
const stage = ".package";
rmSync(stage, { recursive: true, force: true });
const copy = (from, to = from) => {
  mkdirSync(path.dirname(path.join(stage, to)), { recursive: true });
  cpSync(from, path.join(stage, to), { recursive: true, filter: (src) => !/\.(test\.js|map)$/.test(src) });
};
for (const file of ["package.json", "package.nls.json", "LICENSE", ".vscodeignore", "media", "dist/extension.js", "dist/paddock.js", "dist/native"]) copy(file);
// vsce wants images and links at absolute URLs, and there is no public one: the packaged
// README goes without the images, and links to the project's own files become plain text.
const readme = readFileSync("README.md", "utf8")
  .replace(/^[ \t]*!\[[^\]]*\]\([^)]*\)\n/gm, "")
  .replace(/\[([^\]]+)\]\((?!https?:|#)[^)]*\)/g, "$1");
writeFileSync(path.join(stage, "README.md"), readme);
rmSync(path.join(stage, "media", "screenshots"), { recursive: true, force: true });
const runtime = [
  "koffi/package.json",
  "koffi/index.cjs",
  "koffi/indirect.cjs",
  "koffi/LICENSE.txt",
  "koffi/src/koffi/index.cjs",
  "koffi/src/koffi/indirect.cjs",
  "koffi/src/koffi/src/static.cjs",
  "koffi/src/koffi/src/trampolines.cjs",
  "@koromix/koffi-linux-x64/package.json",
  "@koromix/koffi-linux-x64/index.js",
  "@koromix/koffi-linux-x64/linux_x64/koffi.node",
  "node-pty/package.json",
  "node-pty/LICENSE",
  "node-pty/lib",
  "node-pty/build/Release/pty.node",
];
for (const file of runtime) copy(path.join("node_modules", file), path.join("dist/node_modules", file));
const { version } = JSON.parse(readFileSync("package.json", "utf8"));
const out = path.resolve(`paddock-${version}.vsix`);
try {
  execFileSync(path.resolve("node_modules/.bin/vsce"), ["package", "--no-dependencies", "--allow-missing-repository", "--out", out], { cwd: stage, stdio: process.env.PADDOCK_PACKAGE_QUIET === "1" ? "pipe" : "inherit" });
} finally {
  // A failed package leaves no stage behind (lint and the next run would read it).
  rmSync(stage, { recursive: true, force: true });
}
console.log(`${path.basename(out)}: ${(statSync(out).size / 1024 / 1024).toFixed(1)} MiB`);
