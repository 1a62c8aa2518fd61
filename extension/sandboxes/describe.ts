/**
 * How a sandbox is described to a person, in one place: its runtime in words (the image of a
 * container, the accelerator of a VM), its network, and its age. Pure: no vscode import, so
 * unit tests run it.
 */
import type { Sandbox } from "../../protocol/methods";

/** "process", "container busybox:latest", "VM (TCG)". */
export function runtimeLabel(sandbox: Pick<Sandbox, "runtime" | "image" | "vm">): string {
  if (sandbox.runtime === "container") return sandbox.image ? `container ${shortImage(sandbox.image.name)}` : "container";
  if (sandbox.runtime === "vm") return sandbox.vm ? `VM (${sandbox.vm.accelerator.toUpperCase()})` : "VM";
  return "process";
}

/** Paddock's own images without their prefix: `paddock/busybox:latest` reads `busybox:latest`. */
function shortImage(name: string): string {
  return name.startsWith("paddock/") ? name.slice("paddock/".length) : name;
}

/** "offline", "host network", "NAT": short enough for a row of the view. */
export function networkLabel(network: Sandbox["network"]): string {
  return network === "none" ? "offline" : network === "host" ? "host network" : "NAT";
}

/** "just now", "5 min ago", "3 h ago", then the local date and time. */
export function ageLabel(createdAt: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(createdAt)) / 1000));
  if (Number.isNaN(seconds)) return createdAt;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 24 * 3600) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(createdAt).toLocaleString();
}

/** A sandbox as a quick pick's row: its name, its runtime and its folder. */
export function sandboxItem(sandbox: Sandbox): { label: string; description: string; detail: string; id: string } {
  return { label: sandbox.name, description: runtimeLabel(sandbox), detail: sandbox.workspace, id: sandbox.id };
}
