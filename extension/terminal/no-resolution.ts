/** Whether a program's output says it could not resolve a host name: curl, wget, git, npm, getent, busybox. Pure. */
const NO_RESOLUTION = /Could not resolve host|Temporary failure in name resolution|Name or service not known|getaddrinfo (?:ENOTFOUND|EAI_AGAIN)|bad address '[^']*'|nodename nor servname provided/i;

export function saysNoResolution(text: string): boolean {
  return NO_RESOLUTION.test(text);
}
