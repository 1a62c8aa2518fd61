import type { CheckResult } from "../../../protocol/methods";

/** What every probe gets: a scratch dir of its own and where the native helpers are. */
export interface ProbeContext {
  scratchDir: string;
  nativeDir: string;
  /** Where cached artifacts (e.g. the probe initramfs) may be kept. */
  cacheDir: string;
  uid: number;
}

export type ProbeVerdict = Omit<CheckResult, "name" | "durationMs">;
