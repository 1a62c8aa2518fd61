/**
 * Who a uid is, as the name service (NSS: files, LDAP, SSSD alike) knows it: the primary
 * group and the supplementary groups a login of theirs would have. Sandboxes run as their
 * owner and the review methods act with the owner's rights (sys/credentials.ts).
 */
import { spawnSync } from "node:child_process";
import type { UserRights } from "./credentials";

/** Group membership changes rarely; it is asked again after this long. */
const KEEP_MS = 60_000;
const known = new Map<number, { rights: UserRights; at: number }>();

/** A user's uid, primary gid and groups; undefined for a uid the user database does not know. */
export function userRights(uid: number): UserRights | undefined {
  if (uid === process.getuid?.()) return { uid, gid: process.getgid?.() ?? uid, groups: process.getgroups?.() ?? [] };
  const kept = known.get(uid);
  if (kept && Date.now() - kept.at < KEEP_MS) return kept.rights;
  const entry = spawnSync("getent", ["passwd", String(uid)], { encoding: "utf8" });
  const [name, , , gidField] = entry.status === 0 ? entry.stdout.trim().split(":") : [];
  if (!name || gidField === undefined || !/^\d+$/.test(gidField)) return undefined;
  const gid = Number(gidField);
  const listed = spawnSync("id", ["-G", "--", name], { encoding: "utf8" });
  const groups = listed.status === 0 ? listed.stdout.trim().split(/\s+/).filter((g) => /^\d+$/.test(g)).map(Number) : [gid];
  const rights: UserRights = { uid, gid, groups: groups.includes(gid) ? groups : [gid, ...groups] };
  known.set(uid, { rights, at: Date.now() });
  return rights;
}
