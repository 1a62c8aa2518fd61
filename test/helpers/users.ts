/** Real users for tests about rights: made with useradd, and a client that runs as one of them. */
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO, tempDir } from "./agent-process";

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

/** A user (made if missing, without a home), member of `group` when one is named. */
export function ensureUser(name: string, group?: string): TestUser {
  if (group && spawnSync("getent", ["group", group]).status !== 0) execFileSync("groupadd", [group]);
  if (spawnSync("id", [name]).status !== 0) execFileSync("useradd", ["--no-create-home", "--shell", "/usr/sbin/nologin", name]);
  if (group) execFileSync("usermod", ["-aG", group, name]);
  const id = (flag: string) => Number(execFileSync("id", [flag, name]).toString().trim());
  return { name, uid: id("-u"), gid: id("-g") };
}

let publicClient: string | undefined;

/** The Python client, copied where any user can run it (the checkout may not be readable). */
function client(): string {
  if (publicClient) return publicClient;
  const dir = tempDir("paddock-pyclient-");
  fs.chmodSync(dir, 0o755);
  publicClient = path.join(dir, "client.py");
  fs.copyFileSync(path.join(REPO, "test", "clients", "paddock_client.py"), publicClient);
  fs.chmodSync(publicClient, 0o755);
  return publicClient;
}

export interface CallResult {
  result?: Record<string, unknown>;
  error?: { message: string; data?: { code: string; hint?: string; field?: string } };
}

function clientArgv(socketPath: string, user: Pick<TestUser, "uid" | "gid">, calls: [string, unknown][]): string[] {
  return [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "/usr/bin/python3", client(), socketPath, "calls", JSON.stringify(calls)];
}

/** Makes the calls over one connection, as `user` (with all of the user's groups), in order. */
export function callAs(socketPath: string, user: Pick<TestUser, "uid" | "gid">, calls: [string, unknown][]): CallResult[] {
  const r = spawnSync("setpriv", clientArgv(socketPath, user, calls), { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as CallResult[];
}

/** callAs without blocking this process meanwhile (to time other requests while it runs). */
export function callAsInBackground(socketPath: string, user: Pick<TestUser, "uid" | "gid">, calls: [string, unknown][]): Promise<CallResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn("setpriv", clientArgv(socketPath, user, calls), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as CallResult[]) : reject(new Error(`the client exited ${code}: ${err}`))));
  });
}

/** Runs a program as `user` (with all of the user's groups); its output and status. */
export function runAs(user: TestUser, argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync("setpriv", [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", ...argv], { encoding: "utf8", timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
