import type { Command } from '../events/inbound';
import { outboundEvents } from '../events/outbound';
import type { Prisma } from '../prisma/client/client';
import { CommandRejection, type Accepted, type AuditDraft } from '../rules/commands';
import {
  awayAt,
  delegateProblem,
  delegationReach,
  delegationPeriodProblem,
  delegationWorkflowId,
  MAX_DELEGATION_REASON,
  overlapping,
  substituteDelegates,
  type DelegationPeriod,
} from '../rules/delegation';
import { delegationIdFor } from '../rules/identifiers';
import type { Database, Transaction } from './database';

/**
 * Delegation while away (issue 12 point 2): a user names a delegate for a period, or cancels one. Each
 * command is applied in one transaction by the ingress (workers/command-catalog.ts) with its ledger
 * entry, audit entry and its announcement on the settings topic. The pending requests it re-routes at
 * once are found here (`requestsAffectedByDelegation`) and told before its result goes out; those it
 * re-routes later, at the period's start and end, are told by its `delegationWorkflow`.
 */

type SetCommand = Extract<Command, { type: 'selfservice.delegation.set-requested.v1' }>;
type CancelCommand = Extract<Command, { type: 'selfservice.delegation.cancel-requested.v1' }>;
type DelegationRow = Prisma.DelegationGetPayload<object>;

const iso = (ms: number) => new Date(ms).toISOString();

function periodOf(row: DelegationRow): DelegationPeriod {
  return {
    delegationId: row.id,
    userId: row.userId,
    delegateId: row.delegateId,
    startsAt: row.startsAt.getTime(),
    endsAt: row.endsAt.getTime(),
    ...(row.cancelledAt ? { cancelled: true } : {}),
  };
}

/** Who is away in the org at `at`, and to whom (rules/delegation.ts `awayAt`). */
export async function awayInOrg(tx: Transaction | Database, orgId: string, at: number): Promise<Map<string, string>> {
  const rows = await tx.delegation.findMany({ where: { orgId, cancelledAt: null, startsAt: { lte: new Date(at) }, endsAt: { gt: new Date(at) } } });
  return awayAt(rows.map(periodOf), at);
}

/**
 * The approvers of a step after delegation at `at`: each away approver replaced by their stand-in (an
 * active user of the org, never the requester), with whom each delegate stands in for.
 */
export async function withDelegates(
  tx: Transaction | Database,
  orgId: string,
  approverIds: string[],
  requesterId: string,
  at: number,
): Promise<{ approverIds: string[]; delegatedFrom?: Record<string, string> }> {
  if (approverIds.length === 0) return { approverIds };
  const away = await awayInOrg(tx, orgId, at);
  if (!approverIds.some((id) => away.has(id))) return { approverIds };
  const active = new Set(
    (await tx.user.findMany({ where: { id: { in: [...new Set(away.values())] }, orgId, status: 'ACTIVE' }, select: { id: true } })).map((user) => user.id),
  );
  const substituted = substituteDelegates(approverIds, away, { requesterId, mayApprove: (id) => active.has(id) });
  return Object.keys(substituted.delegatedFrom).length > 0 ? substituted : { approverIds: substituted.approverIds };
}

/** The user who sets or cancels a delegation: a user of the org (and active, to set one). */
async function requireUser(tx: Transaction, orgId: string, userId: string, audit: AuditDraft, active: boolean): Promise<void> {
  const user = await tx.user.findUnique({ where: { id: userId }, select: { orgId: true, status: true } });
  if (!user || user.orgId !== orgId) throw new CommandRejection('USER_NOT_FOUND', `user ${userId} is not a user of org ${orgId}`, audit);
  if (active && user.status !== 'ACTIVE') throw new CommandRejection('USER_NOT_ACTIVE', `user ${userId} is ${user.status} and cannot name a delegate`, audit);
}

/** Sets a delegation: the delegate, the period and the reason checked, the row written, the change announced. */
export async function setDelegation(tx: Transaction, command: SetCommand): Promise<Accepted> {
  const { orgId, userId, delegateId, reason } = command.data;
  const delegationId = delegationIdFor(command.commandId);
  const startsAt = Date.parse(command.data.start);
  const endsAt = Date.parse(command.data.end);
  const period = { start: iso(startsAt), end: iso(endsAt) };
  const audit: AuditDraft = { orgId, actorId: userId, action: 'delegation.set', subject: delegationId, after: { delegateId, ...period, ...(reason ? { reason } : {}) } };
  await requireUser(tx, orgId, userId, audit, true);
  // Two of the user's commands on different partitions: the second waits here, then sees the first's period.
  await tx.$queryRaw`SELECT 1 FROM "User" WHERE "id" = ${userId} FOR UPDATE`;

  const delegate = delegateId === userId ? null : await tx.user.findUnique({ where: { id: delegateId }, select: { id: true, orgId: true, status: true } });
  const notDelegate = delegateProblem(orgId, userId, delegate, delegateId);
  if (notDelegate) throw new CommandRejection(notDelegate.code, notDelegate.message, audit);
  if (reason !== undefined && reason.length > MAX_DELEGATION_REASON) {
    throw new CommandRejection('REASON_TOO_LONG', `the reason has ${reason.length} characters; at most ${MAX_DELEGATION_REASON} are allowed`, audit);
  }
  const now = Date.now();
  const badPeriod = delegationPeriodProblem({ startsAt, endsAt }, now);
  if (badPeriod) throw new CommandRejection(badPeriod.code, badPeriod.message, audit);
  const theirs = await tx.delegation.findMany({ where: { userId, orgId, cancelledAt: null, endsAt: { gt: new Date(now) } } });
  const overlap = overlapping({ startsAt, endsAt }, theirs.map(periodOf));
  if (overlap) {
    throw new CommandRejection(
      'DELEGATION_OVERLAPS',
      `user ${userId} already has delegation ${overlap.delegationId} from ${iso(overlap.startsAt)} until ${iso(overlap.endsAt)}, which overlaps this period; cancel it first or choose another period`,
      audit,
      { existingDelegationId: overlap.delegationId },
    );
  }

  await tx.delegation.create({
    data: { id: delegationId, orgId, userId, delegateId, startsAt: new Date(startsAt), endsAt: new Date(endsAt), reason: reason ?? null, commandId: command.commandId },
  });
  return {
    details: { delegationId, workflowId: delegationWorkflowId(delegationId), userId, delegateId, ...period, inForce: startsAt <= now },
    audit,
    events: [
      {
        name: 'delegation-changed',
        ...outboundEvents.delegationChanged({ orgId, userId, delegationId, delegateId, ...period, ...(reason ? { reason } : {}), change: 'SET' }),
      },
    ],
  };
}

/**
 * Cancels one of the user's delegations: before its start it never comes into force, during its
 * period it ends now. Cancelling one that is cancelled or over already is accepted, audited and not
 * announced (`changed: false`), as a settings change that changes nothing.
 */
export async function cancelDelegation(tx: Transaction, command: CancelCommand): Promise<Accepted> {
  const { orgId, userId, delegationId } = command.data;
  const audit: AuditDraft = { orgId, actorId: userId, action: 'delegation.cancel', subject: delegationId };
  await requireUser(tx, orgId, userId, audit, false);
  const row = await tx.delegation.findUnique({ where: { id: delegationId } });
  if (!row || row.orgId !== orgId || row.userId !== userId) {
    throw new CommandRejection('DELEGATION_NOT_FOUND', `user ${userId} has no delegation ${delegationId} in org ${orgId}`, audit);
  }
  const period = { start: iso(row.startsAt.getTime()), end: iso(row.endsAt.getTime()) };
  const now = Date.now();
  audit.before = { delegateId: row.delegateId, ...period, ...(row.cancelledAt ? { cancelledAt: row.cancelledAt.toISOString() } : {}) };
  if (row.cancelledAt || row.endsAt.getTime() <= now) {
    return { details: { delegationId, changed: false, ...(row.cancelledAt ? { cancelledAt: row.cancelledAt.toISOString() } : {}) }, audit };
  }
  const { count } = await tx.delegation.updateMany({ where: { id: delegationId, cancelledAt: null }, data: { cancelledAt: new Date(now) } });
  if (count !== 1) throw new Error(`delegation ${delegationId} changed while it was cancelled`);
  const cancelledAt = iso(now);
  audit.after = { ...(audit.before as object), cancelledAt };
  return {
    details: { delegationId, changed: true, cancelledAt },
    audit,
    events: [
      {
        name: 'delegation-changed',
        ...outboundEvents.delegationChanged({
          orgId,
          userId,
          delegationId,
          delegateId: row.delegateId,
          ...period,
          ...(row.reason ? { reason: row.reason } : {}),
          change: 'CANCELLED',
          cancelledAt,
        }),
      },
    ],
  };
}

const pendingWaitingOn = async (tx: Transaction | Database, orgId: string, userIds: string[]): Promise<string[]> =>
  userIds.length === 0
    ? []
    : (await tx.appRequest.findMany({ where: { orgId, status: 'PENDING', currentApproverIds: { hasSome: userIds } }, select: { workflowId: true } })).map(
        (row) => row.workflowId,
      );

/**
 * The pending requests a delegation's start or end may re-route, as delegations are in force at `at`
 * (rules/delegation.ts `delegationReach`): those waiting on the user, on anyone whose delegates lead
 * to them, or on the delegate and whom they pass it on to.
 */
async function requestsInReach(tx: Transaction | Database, row: DelegationRow, at: number): Promise<string[]> {
  return pendingWaitingOn(tx, row.orgId, delegationReach(row.userId, row.delegateId, await awayInOrg(tx, row.orgId, at)));
}

/**
 * The pending requests a delegation command re-routes at once (told before its result goes out): a
 * period in force when it is set, or one cancelled while in force (`requestsInReach`). A period that
 * starts later is left to its workflow.
 */
export async function requestsAffectedByDelegation(tx: Transaction | Database, command: SetCommand | CancelCommand): Promise<string[]> {
  const now = Date.now();
  const row =
    command.type === 'selfservice.delegation.set-requested.v1'
      ? await tx.delegation.findUnique({ where: { commandId: command.commandId } })
      : await tx.delegation.findUnique({ where: { id: command.data.delegationId } });
  if (!row || row.orgId !== command.data.orgId) return [];
  if (command.type === 'selfservice.delegation.set-requested.v1') return row.startsAt.getTime() <= now ? requestsInReach(tx, row, now) : [];
  const cancelled = row.cancelledAt?.getTime();
  if (cancelled === undefined || cancelled < row.startsAt.getTime() || cancelled >= row.endsAt.getTime()) return [];
  return requestsInReach(tx, row, now);
}

export function createDelegationActivities({ db }: { db: Database }) {
  return {
    /**
     * A delegation's period starts or ends (its delegationWorkflow woke): the pending requests to
     * review now, as workflow ids (`requestsInReach`). `over`: nothing more will happen (the period
     * ended, or was cancelled, whose command re-routed the requests itself).
     */
    async requestsAtDelegationBoundary(input: { delegationId: string; boundary: 'start' | 'end' }): Promise<{ workflowIds: string[]; over: boolean }> {
      const row = await db.delegation.findUnique({ where: { id: input.delegationId } });
      if (!row || row.cancelledAt) return { workflowIds: [], over: true };
      // Who is reached is read while the period is in force: at its start, and just before its end.
      const at = input.boundary === 'start' ? row.startsAt.getTime() : row.endsAt.getTime() - 1;
      return { workflowIds: await requestsInReach(db, row, at), over: input.boundary === 'end' };
    },
  };
}
