import * as path from "node:path";
import { agentInfoFile } from "../../protocol/discovery";

/** Files inside a state dir. */
export function stateFiles(stateDir: string) {
  return {
    lock: path.join(stateDir, "agent.lock"),
    /** Written while an agent serves a socket, so clients can find it. */
    agentInfo: agentInfoFile(stateDir),
    log: path.join(stateDir, "logs", "agent.log"),
    cache: path.join(stateDir, "cache"),
    checkCache: path.join(stateDir, "cache", "system-check.json"),
    tmp: path.join(stateDir, "tmp"),
    sandboxes: path.join(stateDir, "sandboxes"),
    images: path.join(stateDir, "images"),
  };
}
