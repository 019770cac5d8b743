import type { Database, Transaction } from './database';

/** Active approvers of a step, never the requester; the fallback approvers (admins by default) when none is left. */
export async function resolveApprovers(
  tx: Transaction | Database,
  orgId: string,
  step: { type: 'USER' | 'GROUP'; id: string },
  requesterId: string,
  fallbackApproverIds: string[],
): Promise<string[]> {
  const candidates =
    step.type === 'USER'
      ? [step.id]
      : (await tx.groupMember.findMany({ where: { groupId: step.id }, select: { userId: true } })).map((m) => m.userId);
  const active = await tx.user.findMany({
    where: { id: { in: candidates }, orgId, status: 'ACTIVE', NOT: { id: requesterId } },
    select: { id: true },
    orderBy: { id: 'asc' },
  });
  if (active.length > 0) return active.map((user) => user.id);

  const fallback = await tx.user.findMany({
    where: { id: { in: fallbackApproverIds }, orgId, status: 'ACTIVE', NOT: { id: requesterId } },
    select: { id: true },
    orderBy: { id: 'asc' },
  });
  if (fallback.length > 0) return fallback.map((user) => user.id);
  const admins = await tx.user.findMany({
    where: { orgId, status: 'ACTIVE', adminRoles: { has: 'SUPER_ADMIN' }, NOT: { id: requesterId } },
    select: { id: true },
    orderBy: { id: 'asc' },
  });
  return admins.map((user) => user.id);
}
