/**
 * A helper program that must not outlive the agent (slirp4netns, skopeo, probe guests, the
 * rootless namespace holder): run under setpriv with a parent-death SIGKILL, so that even a
 * kill -9 of the agent ends it. setpriv exits 127 when the program is not installed.
 */
export const NOT_INSTALLED_EXIT = 127;

export function dieWithAgent(program: string, args: string[]): [string, string[]] {
  return ["setpriv", ["--pdeathsig", "SIGKILL", "--", program, ...args]];
}
