/** A sandbox's owner: who may see it, and with whose rights its processes and reviews run. */
import { PaddockError } from "../../protocol/errors";
import type { Caller } from "../session";
import type { UserRights } from "../sys/credentials";
import { userRights } from "../sys/users";

/** Root sees every sandbox; anyone else their own. */
export function mayAccess(caller: Caller, record: { ownerUid: number }): boolean {
  return caller.uid === 0 || caller.uid === record.ownerUid;
}

/**
 * Processes run as the sandbox's owner, with the owner's groups as the name service knows
 * them, and the review methods act with the same rights. An owner it does not know is refused.
 */
export function ownerIds(ownerUid: number): UserRights {
  const rights = userRights(ownerUid);
  if (!rights) throw new PaddockError("E_PERMISSION_DENIED", `uid ${ownerUid} is not a known user`, "sandboxes run as their owner, who must exist in the user database");
  return rights;
}
