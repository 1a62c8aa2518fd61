/** Creates the state dir (private to its owner) and checks nobody else could tamper with it. */
import * as fs from "node:fs";
import { PaddockError } from "../../protocol/errors";
import { stateFiles } from "./paths";
import * as path from "node:path";

export function prepareStateDir(stateDir: string): void {
  if (!path.isAbsolute(stateDir)) {
    throw new PaddockError("E_STATE_DIR", `state dir ${stateDir} is not an absolute path`, "pass --state-dir with an absolute path");
  }
  try {
    fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new PaddockError("E_STATE_DIR", `cannot create state dir ${stateDir}: ${(err as Error).message}`, "pick a writable --state-dir, or run as root for the default");
  }
  const st = fs.statSync(stateDir);
  const uid = process.getuid?.() ?? 0;
  if (st.uid !== uid) {
    throw new PaddockError("E_STATE_DIR", `state dir ${stateDir} belongs to uid ${st.uid}, not to this agent's uid ${uid}`, "use a state dir of your own");
  }
  // Logs and records are nobody else's business.
  if ((st.mode & 0o077) !== 0) fs.chmodSync(stateDir, 0o700);
  const files = stateFiles(stateDir);
  for (const dir of [path.dirname(files.log), files.cache]) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Scratch space of probes that a killed agent may have left behind.
  fs.rmSync(files.tmp, { recursive: true, force: true });
  fs.mkdirSync(files.tmp, { mode: 0o700 });
}
