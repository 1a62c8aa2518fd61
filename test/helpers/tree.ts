/** Describing and copying directory trees, to compare what a user would compare. */
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Every entry below `root`: path, type, permission bits, and content hash or link target. */
export function describeTree(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const childRel = rel ? `${rel}/${name}` : name;
      const full = path.join(root, childRel);
      const st = fs.lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${childRel} symlink -> ${fs.readlinkSync(full)}`);
      else if (st.isDirectory()) {
        out.push(`${childRel} dir ${mode}`);
        walk(childRel);
      } else if (st.isFile()) out.push(`${childRel} file ${mode} ${createHash("sha256").update(fs.readFileSync(full)).digest("hex").slice(0, 16)}`);
      else out.push(`${childRel} other ${mode}`);
    }
  };
  walk("");
  return out;
}

/** A copy with contents, modes and symlinks as they are. */
export function copyTree(from: string, to: string): void {
  execFileSync("cp", ["-a", "--", from, to]);
}
