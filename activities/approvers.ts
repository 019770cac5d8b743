import type { Database, Transaction } from './database';
import { withDelegates } from './delegations';

type ApproverSource = { type: 'USER' | 'GROUP'; id: string };

/** A step's approvers, and whom each delegate among them stands in for (absent: nobody). */
export interface ResolvedApprovers {
  approverIds: string[];
  delegatedFrom?: Record<string, string>;
}

/**
 * Active approvers of a step (or of a step and its escalation: several users and groups), never the
 * requester; the fallback approvers (admins by default) when none is left. Then delegation while
 * away, at `at`: an approver who is away is replaced by their delegate (rules/delegation.ts).
 */
export async function resolveStepApprovers(
  tx: Transaction | Database,
  orgId: string,
  source: ApproverSource | readonly ApproverSource[],
  requesterId: string,
  fallbackApproverIds: string[],
  at: number = Date.now(),
): Promise<ResolvedApprovers> {
  return withDelegates(tx, orgId, await directApprovers(tx, orgId, source, requesterId, fallbackApproverIds), requesterId, at);
}

/** `resolveStepApprovers` without who stands in for whom. */
export async function resolveApprovers(
  tx: Transaction | Database,
  orgId: string,
  source: ApproverSource | readonly ApproverSource[],
  requesterId: string,
  fallbackApproverIds: string[],
  at: number = Date.now(),
): Promise<string[]> {
  return (await resolveStepApprovers(tx, orgId, source, requesterId, fallbackApproverIds, at)).approverIds;
}

/** The approvers as the directory has them, before delegation. */
async function directApprovers(
  tx: Transaction | Database,
  orgId: string,
  source: ApproverSource | readonly ApproverSource[],
  requesterId: string,
  fallbackApproverIds: string[],
): Promise<string[]> {
  const sources: readonly ApproverSource[] = Array.isArray(source) ? source : [source as ApproverSource];
  const userIds = sources.filter((one) => one.type === 'USER').map((one) => one.id);
  const groupIds = sources.filter((one) => one.type === 'GROUP').map((one) => one.id);
  const members = groupIds.length > 0 ? await tx.groupMember.findMany({ where: { groupId: { in: groupIds } }, select: { userId: true } }) : [];
  const candidates = [...userIds, ...members.map((member) => member.userId)];
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

