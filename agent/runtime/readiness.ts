/**
 * Which runtimes can run here and with what: decided here only, from the system checks and
 * the overrides (--oci-runtime, PADDOCK_OCI_RUNTIME, PADDOCK_ACCELERATOR, PADDOCK_CHANGESET).
 * `system/check` reports these answers and sandboxes are made with them, so what a client
 * is told is what runs. Pure functions, for tests.
 */
import { PaddockError } from "../../protocol/errors";
import type { CheckName, CheckResult, RuntimeReadiness } from "../../protocol/methods";
import type { ChangesetKind } from "../changeset/changesets";
import type { Accelerator, OciRuntimeName } from "../state/sandbox-record";

/** What the container and VM runtimes decide their choices from. */
export interface ChoiceInputs {
  root: boolean;
  overrides: Overrides;
  /** The changeset the agent mounts with: its overlay check is one these runtimes need. */
  changeset: ChangesetKind;
  /** This boot's results of these checks (run now if need be). */
  checks(names: CheckName[]): Promise<CheckResult[]>;
}

/**
 * A choice made when a sandbox is created: the checks it reads run only when nothing else
 * decides it (a rootless agent, an override), and a refusal is the create's error.
 */
export async function choose<T extends string>(decided: boolean, checks: () => Promise<CheckResult[]>, choice: (checks: CheckResult[]) => Choice<T>): Promise<T> {
  const made = choice(decided ? [] : await checks());
  if ("refused" in made) throw new PaddockError("E_RUNTIME_UNAVAILABLE", made.refused.message, made.refused.hint);
  return made.using;
}

/** Choices forced by the agent's options and environment. */
export interface Overrides {
  ociRuntime?: string;
  accelerator?: string;
  changeset?: string;
}

export function overridesFromEnv(env: NodeJS.ProcessEnv, ociRuntimeFlag: string | undefined): Overrides {
  const set = (value: string | undefined) => (value === undefined || value === "" ? undefined : value);
  const overrides: Overrides = {};
  const ociRuntime = set(ociRuntimeFlag) ?? set(env.PADDOCK_OCI_RUNTIME);
  if (ociRuntime) overrides.ociRuntime = ociRuntime;
  const accelerator = set(env.PADDOCK_ACCELERATOR);
  if (accelerator) overrides.accelerator = accelerator;
  const changeset = set(env.PADDOCK_CHANGESET);
  if (changeset) overrides.changeset = changeset;
  return overrides;
}

export const OCI_RUNTIMES: readonly OciRuntimeName[] = ["runc", "crun"];

export const ROOTLESS_CONTAINERS =
  "container sandboxes need the agent as root: rootless runc would need the image's root and the workspace's overlay mounted in one user namespace, which Paddock does not do yet";

export const ROOTLESS_VMS =
  "VM sandboxes need the agent as root for now: a rootless agent's sandbox views live in a user namespace that QEMU's share would have to reach, which Paddock does not do yet";

export const AS_ROOT_HINT = "run the agent as root (sudo paddock agent; in VS Code, paddock.agent.mode: root), or use the process runtime";

/** An implementation chosen (runc, kvm...), or why none can be, with the checks that failed. */
export type Choice<T extends string> = { using: T } | { refused: { message: string; hint: string; missing: CheckName[] } };

const okIn = (checks: CheckResult[] | undefined) => (name: CheckName) => checks?.find((c) => c.name === name)?.ok === true;

/** How sandboxes get their copy-on-write view: overlayfs itself when it mounts, fuse-overlayfs only where it does not (or where forced). */
export function chooseChangeset(checks: CheckResult[] | undefined, root: boolean, overrides: Overrides = {}): ChangesetKind {
  if (overrides.changeset === "fuse-overlayfs") return "fuse-overlayfs";
  const native: ChangesetKind = root ? "kernel overlayfs" : "overlayfs in a user namespace";
  const verdict = (name: CheckName) => checks?.find((c) => c.name === name)?.ok;
  return verdict(root ? "overlayfs" : "overlayfs-rootless") === false && verdict("fuse-overlayfs") === true ? "fuse-overlayfs" : native;
}

/** The check that proves the chosen changeset mounts. */
function overlayCheck(changeset: ChangesetKind): CheckName {
  return changeset === "fuse-overlayfs" ? "fuse-overlayfs" : changeset === "kernel overlayfs" ? "overlayfs" : "overlayfs-rootless";
}

/** The OCI runtime new containers use: the one forced, else the first whose check ran a container here. */
export function ociRuntimeChoice(checks: CheckResult[], root: boolean, overrides: Overrides): Choice<OciRuntimeName> {
  if (!root) return { refused: { message: ROOTLESS_CONTAINERS, hint: AS_ROOT_HINT, missing: [] } };
  const forced = overrides.ociRuntime;
  if (forced === "runc" || forced === "crun") return { using: forced };
  if (forced) {
    return { refused: { message: `the OCI runtime was set to ${JSON.stringify(forced)}, which is not one Paddock runs`, hint: "set it (--oci-runtime, PADDOCK_OCI_RUNTIME or the paddock.agent.ociRuntime setting) to runc or crun, or leave it unset to use the one `paddock check` found working", missing: [] } };
  }
  const works = OCI_RUNTIMES.find(okIn(checks));
  if (works) return { using: works };
  const why = OCI_RUNTIMES.map((name) => checks.find((c) => c.name === name)).filter((c) => c !== undefined).map((c) => `${c.name}: ${c.detail}`).join("; ");
  return { refused: { message: `no OCI runtime works on this machine (${why})`, hint: "install runc (apt-get install runc); `paddock check` shows the details", missing: [...OCI_RUNTIMES] } };
}

/** The accelerator a new VM uses: the one forced, else QEMU's, KVM where its check booted a guest, else TCG. */
export function acceleratorChoice(checks: CheckResult[], root: boolean, overrides: Overrides): Choice<Accelerator> {
  if (root && overrides.accelerator === undefined && !okIn(checks)("qemu")) {
    return { refused: { message: "QEMU is not installed or does not run", hint: "install qemu-system-x86 (npm run setup does); `paddock check` shows the details", missing: ["qemu"] } };
  }
  return pickAccelerator(checks, root, overrides);
}

/** KVM where its check booted a guest, else TCG, unless one is forced. */
function pickAccelerator(checks: CheckResult[], root: boolean, overrides: Overrides): Choice<Accelerator> {
  if (!root) return { refused: { message: ROOTLESS_VMS, hint: AS_ROOT_HINT, missing: [] } };
  const forced = overrides.accelerator;
  if (forced === "kvm" || forced === "tcg") return { using: forced };
  if (forced) {
    return { refused: { message: `PADDOCK_ACCELERATOR is ${JSON.stringify(forced)}, which is not an accelerator`, hint: "set it to kvm or tcg, or unset it to use the one `paddock check` found booting a guest", missing: [] } };
  }
  const ok = okIn(checks);
  if (ok("kvm")) return { using: "kvm" };
  if (ok("tcg")) return { using: "tcg" };
  const why = checks.filter((c) => c.name === "kvm" || c.name === "tcg").map((c) => `${c.name}: ${c.detail}`).join("; ");
  return { refused: { message: `QEMU cannot boot a guest here (${why})`, hint: "`paddock check --refresh` shows the details", missing: ["kvm", "tcg"] } };
}

/** Whether the changeset's checks and `needs` passed, and the implementation chosen. */
function readiness(checks: CheckResult[], needs: CheckName[], choice: Choice<string>): RuntimeReadiness {
  const ok = okIn(checks);
  const missing = needs.filter((n) => !ok(n));
  if ("using" in choice) return { available: missing.length === 0, missing, using: choice.using };
  for (const name of choice.refused.missing) if (!missing.includes(name)) missing.push(name);
  // A refusal no check explains (a rootless agent, a forced choice that is not one) says why.
  return { available: false, missing, ...(choice.refused.missing.length === 0 ? { reason: choice.refused.message, hint: choice.refused.hint } : {}) };
}

/*
 * Each runtime's readiness takes the changeset the agent mounts with (chosen once, at its
 * start), not one chosen again from these checks: the overlay check that matters is that one's.
 */

export function processReadiness(checks: CheckResult[], changeset: ChangesetKind): RuntimeReadiness {
  const r = readiness(checks, [overlayCheck(changeset), "bwrap"], { using: changeset });
  return r.available ? r : { available: false, missing: r.missing };
}

export function containerReadiness(checks: CheckResult[], root: boolean, overrides: Overrides, changeset: ChangesetKind): RuntimeReadiness {
  if (!root) return { available: false, missing: [], reason: ROOTLESS_CONTAINERS, hint: AS_ROOT_HINT };
  return readiness(checks, [overlayCheck(changeset), "cgroups"], ociRuntimeChoice(checks, root, overrides));
}

export function vmReadiness(checks: CheckResult[], root: boolean, overrides: Overrides, changeset: ChangesetKind): RuntimeReadiness {
  if (!root) return { available: false, missing: [], reason: ROOTLESS_VMS, hint: AS_ROOT_HINT };
  return readiness(checks, [overlayCheck(changeset), "qemu"], pickAccelerator(checks, root, overrides));
}
