#!/usr/bin/env node
/**
 * `paddock`: the command line. `paddock agent` runs the agent; every other command is a
 * client of the same protocol the extension speaks.
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { PaddockError } from "../../protocol/errors";
import { isLogLevel, type LogLevel } from "../log/logger";
import { defaultSocketPath, defaultStateDir } from "../../protocol/discovery";
import { serve } from "../serve";
import { AGENT_VERSION } from "../version";
import { connectToAgent } from "../../connect/connect";
import { printCheck } from "./check-command";
import { createCommand, execCommand, gcCommand, lifecycleCommand, listCommand } from "./sandbox-commands";
import { approveCommand, changesCommand, diffCommand, rejectCommand, undoCommand } from "./review-commands";
import { imageCommand } from "./image-commands";
import { DEFAULT_MEMORY_CAP_MIB, DEFAULT_PIDS, DEFAULT_TMP_MIB, VM_DEFAULTS } from "../runtime/limits";

const USAGE = `Usage: paddock <command> [options]

Commands:
  agent               run the agent (default: on its socket, ${defaultSocketPath()})
    --stdio             serve one client on stdin/stdout instead
    --socket PATH       serve on this Unix socket
    --socket-group G    let group G connect too (socket 0660, directory 0750)
  check               test what this machine can run (overlayfs, bwrap, runc, QEMU, ...)
    --refresh           re-run every probe instead of using this boot's cached results
  create [DIR]        create a sandbox of DIR (default: the current directory)
    --runtime process|container|vm, --image NAME (containers; default: the default image),
    --name N, --network none|host|nat, --memory MiB, --pids N, --cpus N, --tmp MiB (/tmp's size),
    --ttl SECONDS       limits not given are Paddock's defaults (${DEFAULT_PIDS} processes, memory half
                        the host's and at most ${DEFAULT_MEMORY_CAP_MIB / 1024} GiB, /tmp ${DEFAULT_TMP_MIB} MiB; a VM: ${VM_DEFAULTS.memoryMiB} MiB, ${VM_DEFAULTS.cpus} CPU)
  ls [DIR]            list your sandboxes (of DIR only, if given)
  exec ID [-- CMD...] run CMD in a sandbox (a terminal when stdin is one); exits with CMD's code;
                      without CMD, the sandbox's own login shell
  stop ID | start ID  end every process of a sandbox, keeping its changes | run it again
  changes ID          what the sandbox changed: A added, M modified, D deleted
  diff ID [PATH...]   the changes as a patch (git apply takes it); --context N lines
  approve ID [PATH...]
                      bring changes into the workspace (all, or these files and folders);
                      a file that changed in the workspace too is a conflict: --force
  reject ID [PATH...] throw changes away: the sandbox gets the workspace's version back
  undo ID [UNDO]      undo the latest approve or reject (or the one approve/reject named),
                      in the workspace and the sandbox; --list lists what can be undone
  console ID          a VM sandbox's serial console (the guest kernel's and guest agent's messages)
  rm ID               delete a sandbox and its changes
  gc                  delete expired sandboxes and clean what no sandbox owns
  image ls | import SOURCE NAME | pull REFERENCE [NAME] [--insecure] | default | rm NAME
                      the agent's images for container sandboxes: import an OCI image layout
                      (folder or tar) or docker save output, pull from a registry (skopeo);
                      default builds the offline default image from Debian's busybox-static
  version             print the version

Options for every command:
  --state-dir DIR     where state lives (default ${defaultStateDir()})
  --socket PATH       (clients) talk to the agent on this socket
  --json              machine-readable output
  --log-level LEVEL   error, warn, info or debug (default info; PADDOCK_LOG_LEVEL)
  --stderr-log-level LEVEL
                      (agent) a quieter level for stderr than for the log file
  --oci-runtime runc|crun
                      (agent) the OCI runtime for containers (default: the first that
                      \`paddock check\` found working; PADDOCK_OCI_RUNTIME)
  -h, --help          this text

Clients use --socket (or $PADDOCK_SOCKET), else the socket of an agent already serving the
state dir, else the default socket if its agent serves the same state dir; if there is none
they start a private agent over stdio for the one command.`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      stdio: { type: "boolean" },
      socket: { type: "string" },
      "socket-group": { type: "string" },
      "state-dir": { type: "string" },
      json: { type: "boolean" },
      refresh: { type: "boolean" },
      name: { type: "string" },
      network: { type: "string" },
      runtime: { type: "string" },
      image: { type: "string" },
      insecure: { type: "boolean" },
      memory: { type: "string" },
      pids: { type: "string" },
      cpus: { type: "string" },
      tmp: { type: "string" },
      ttl: { type: "string" },
      force: { type: "boolean" },
      list: { type: "boolean" },
      context: { type: "string" },
      "log-level": { type: "string" },
      "stderr-log-level": { type: "string" },
      "oci-runtime": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === "help") {
    console.log(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const logLevel = values["log-level"] ?? process.env.PADDOCK_LOG_LEVEL ?? "info";
  if (!isLogLevel(logLevel)) throw new PaddockError("E_INVALID_PARAMS", `unknown log level ${logLevel}`, "use error, warn, info or debug");
  const stderrLevel = values["stderr-log-level"];
  if (stderrLevel !== undefined && !isLogLevel(stderrLevel)) throw new PaddockError("E_INVALID_PARAMS", `unknown log level ${stderrLevel}`, "use error, warn, info or debug");
  const stateDir = path.resolve(values["state-dir"] ?? defaultStateDir());

  switch (command) {
    case "version":
      console.log(values.json ? JSON.stringify({ version: AGENT_VERSION }) : `paddock ${AGENT_VERSION}`);
      return 0;
    case "agent":
      await serve({
        stateDir,
        logLevel: logLevel as LogLevel,
        stderrLevel,
        nativeDir: path.join(__dirname, "native"),
        ...(values["oci-runtime"] ? { ociRuntime: values["oci-runtime"] } : {}),
        transport: values.stdio ? { kind: "stdio" } : { kind: "socket", path: values.socket ?? defaultSocketPath(), group: values["socket-group"] },
      });
      return -1; // keeps serving
    case "check":
    case "create":
    case "ls":
    case "exec":
    case "stop":
    case "start":
    case "rm":
    case "gc":
    case "changes":
    case "console":
    case "diff":
    case "approve":
    case "reject":
    case "undo":
    case "image": {
      const agent = await connectToAgent({ socket: values.socket, stateDir, selfScript: __filename, logLevel });
      const o = { ...values, json: values.json ?? false };
      const [, first, ...rest] = positionals;
      try {
        switch (command) {
          case "check":
            return printCheck(await agent.client.request("system/check", { refresh: values.refresh ?? false }), o.json);
          case "create":
            return await createCommand(agent.client, first, o);
          case "ls":
            return await listCommand(agent.client, first, o);
          case "exec":
            return await execCommand(agent.client, first, rest);
          case "gc":
            return await gcCommand(agent.client, o);
          case "changes":
            return await changesCommand(agent.client, first, o);
          case "diff":
            return await diffCommand(agent.client, first, rest, o);
          case "approve":
            return await approveCommand(agent.client, first, rest, o);
          case "reject":
            return await rejectCommand(agent.client, first, rest, o);
          case "undo":
            return await undoCommand(agent.client, first, rest, o);
          case "image":
            return await imageCommand(agent.client, positionals.slice(1), o);
          case "console": {
            if (!first) throw new PaddockError("E_INVALID_PARAMS", "paddock console needs a sandbox id", "paddock ls lists them");
            const { text } = await agent.client.request("sandbox/console", { id: first });
            process.stdout.write(o.json ? JSON.stringify({ id: first, text }) + "\n" : text);
            return 0;
          }
          default:
            return await lifecycleCommand(agent.client, command, first, o);
        }
      } finally {
        await agent.close();
      }
    }
    default:
      throw new PaddockError("E_INVALID_PARAMS", `unknown command ${JSON.stringify(command)}`, "run paddock --help");
  }
}

function reportError(err: unknown, json: boolean): void {
  const error = err instanceof PaddockError ? err : new PaddockError("E_INTERNAL", (err as Error)?.message ?? String(err), "this is a bug in Paddock");
  if (json) {
    console.error(JSON.stringify({ error: { code: error.code, message: error.message, hint: error.hint } }));
  } else {
    console.error(`paddock: ${error.message}${error.hint ? `\n  hint: ${error.hint}` : ""}`);
  }
}

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const json = argv.includes("--json");
    if ((err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      reportError(new PaddockError("E_INVALID_PARAMS", (err as Error).message, "run paddock --help"), json);
    } else {
      reportError(err, json);
    }
    process.exitCode = 2;
  },
);
