/**
 * The login shell of a terminal in a sandbox, chosen inside the sandbox: a process sandbox
 * sees the host's programs, a container its image's, a VM its guest's, and only the sandbox
 * knows which shells exist there. The choice, in order: `SHELL` from the sandbox's
 * environment (an image's config may set it), the user's shell in the sandbox's
 * /etc/passwd, bash, and POSIX sh, which every runtime Paddock makes has (busybox's in the
 * default image and in the VM guest). A shell that cannot log in (nologin, false) is skipped.
 */
// One line: some ways into a sandbox (a terminal's) pass the script on as one line.
const CHOOSE = [
  'me=$(id -u 2>/dev/null); own=""',
  'if [ -r /etc/passwd ]; then while IFS=: read -r _n _p uid _g _c _h sh; do if [ "$uid" = "$me" ]; then own=$sh; break; fi; done < /etc/passwd; fi',
  'for s in "$SHELL" "$own" /bin/bash /usr/bin/bash; do case "$s" in ""|*/nologin|*/false) continue ;; esac; if [ -x "$s" ]; then SHELL=$s; export SHELL; exec "$s" -l; fi; done',
  "SHELL=/bin/sh; export SHELL; exec /bin/sh -l",
].join("; ");

/** The argv that starts the sandbox's login shell (through /bin/sh, which makes the choice). */
export function loginShellArgv(): string[] {
  return ["/bin/sh", "-c", CHOOSE];
}
