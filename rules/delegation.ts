import type { Problem } from './app-request';

/**
 * Delegation while away (issue 12 point 2): a user names a delegate for a period; the approver steps
 * that would go to them during it go to the delegate instead, who decides on their behalf. Pure rules,
 * no I/O: which delegations are in force at an instant, who stands in for each approver, and whether
 * a new period may be set. The activities read the rows and the directory; the time comes in as `at`.
 */

export const DAY_MS = 24 * 60 * 60 * 1000;

/** A period lasts at most this long, and starts at most this far ahead. */
export const MAX_DELEGATION_DAYS = 365;

/** The reason's business limit in characters (`REASON_TOO_LONG` over it). */
export const MAX_DELEGATION_REASON = 500;

export const DELEGATION_WORKFLOW_PREFIX = 'delegation-';

/** The workflow that wakes at a delegation's start and end (workflows/delegation.ts). */
export function delegationWorkflowId(delegationId: string): string {
  return `${DELEGATION_WORKFLOW_PREFIX}${delegationId}`;
}

/** A delegation as the rules read it: times in epoch milliseconds, the end exclusive. */
export interface DelegationPeriod {
  delegationId: string;
  /** Who is away. */
  userId: string;
  /** Who stands in for them. */
  delegateId: string;
  startsAt: number;
  endsAt: number;
  /** Withdrawn: never in force again (a cancellation ends a period at once). */
  cancelled?: boolean;
}

/** In force at `at`: begun (start <= at), not ended (at < end), not cancelled. */
export function inForce(period: DelegationPeriod, at: number): boolean {
  return !period.cancelled && period.startsAt <= at && at < period.endsAt;
}

/**
 * Who is away at `at`, and to whom their steps go. Periods of one user do not overlap (refused when
 * set); should two be in force anyway, the one that started first counts.
 */
export function awayAt(periods: readonly DelegationPeriod[], at: number): Map<string, string> {
  const away = new Map<string, string>();
  const inOrder = periods.filter((period) => inForce(period, at)).sort((a, b) => a.startsAt - b.startsAt || a.delegationId.localeCompare(b.delegationId));
  for (const period of inOrder) if (!away.has(period.userId)) away.set(period.userId, period.delegateId);
  return away;
}

/**
 * Where a step that would go to `userId` ends up: the chain of delegates followed to the first one
 * who is not away. Null when the chain comes back to someone already in it (A -> B -> A: everyone in
 * it is away), when `userId` is not away, or when the one it ends on may not approve.
 */
export function standInFor(userId: string, away: ReadonlyMap<string, string>, mayApprove: (userId: string) => boolean): string | null {
  const seen = new Set([userId]);
  let current = away.get(userId);
  if (current === undefined) return null;
  for (;;) {
    if (seen.has(current)) return null;
    seen.add(current);
    const next = away.get(current);
    if (next === undefined) return mayApprove(current) ? current : null;
    current = next;
  }
}

/** Everyone a step of `userId` passes through while they are away: the delegates in order, `userId` not included. */
export function delegationChain(userId: string, away: ReadonlyMap<string, string>): string[] {
  const chain: string[] = [];
  const seen = new Set([userId]);
  for (let next = away.get(userId); next !== undefined && !seen.has(next); next = away.get(next)) {
    chain.push(next);
    seen.add(next);
  }
  return chain;
}

/**
 * Whose steps a change of `userId`'s delegation (to `delegateId`) may move: `userId`, everyone whose
 * chain of delegates leads to them (a step stuck with one of them, say because the chain looped, may
 * go on now), and the delegate with whom they pass it on to. Pending requests waiting on any of them
 * are told to review themselves.
 */
export function delegationReach(userId: string, delegateId: string, away: ReadonlyMap<string, string>): string[] {
  const reach = new Set([userId]);
  // Everyone upstream: followed backwards until nobody new leads into the set.
  for (let grown = true; grown; ) {
    grown = false;
    for (const [from, to] of away) {
      if (reach.has(to) && !reach.has(from)) {
        reach.add(from);
        grown = true;
      }
    }
  }
  for (const id of [delegateId, ...delegationChain(delegateId, away)]) reach.add(id);
  return [...reach].sort();
}

/** The approvers after delegation, and whom each delegate stands in for (`{delegateId: originalApproverId}`). */
export interface Substitution {
  approverIds: string[];
  delegatedFrom: Record<string, string>;
}

/**
 * Replaces each approver who is away by their stand-in (`standInFor`), never the requester: a chain
 * that ends on the requester, on someone who may not approve (not an active user of the org) or that
 * loops leaves the approver in place. The result is sorted and has no repeats. A delegate who is an
 * approver in their own right decides in their own name; one who stands in for several approvers of
 * the step is recorded for the first of them (in id order).
 */
export function substituteDelegates(
  approverIds: readonly string[],
  away: ReadonlyMap<string, string>,
  who: { requesterId: string; mayApprove: (userId: string) => boolean },
): Substitution {
  const mayApprove = (userId: string) => userId !== who.requesterId && who.mayApprove(userId);
  const own = new Set(approverIds);
  const result = new Set<string>();
  const delegatedFrom: Record<string, string> = {};
  for (const approverId of [...approverIds].sort()) {
    const standIn = standInFor(approverId, away, mayApprove);
    if (standIn === null) {
      result.add(approverId);
      continue;
    }
    result.add(standIn);
    if (!own.has(standIn) && delegatedFrom[standIn] === undefined) delegatedFrom[standIn] = approverId;
  }
  return { approverIds: [...result].sort(), delegatedFrom };
}

/** `delegatedFrom` kept to the given approvers (those an email goes to, those still on the step). */
export function delegatedAmong(delegatedFrom: Readonly<Record<string, string>> | undefined, approverIds: readonly string[]): Record<string, string> | undefined {
  if (!delegatedFrom) return undefined;
  const kept = Object.entries(delegatedFrom).filter(([delegateId]) => approverIds.includes(delegateId));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

/**
 * Why a period cannot be set now, or null: the end after the start, not past, at most
 * `MAX_DELEGATION_DAYS` long and starting at most that far ahead. A start in the past is allowed (the
 * period is in force at once).
 */
export function delegationPeriodProblem(period: { startsAt: number; endsAt: number }, now: number): Problem | null {
  const fail = (message: string): Problem => ({ code: 'INVALID_DELEGATION_PERIOD', message });
  if (period.endsAt <= period.startsAt) return fail('end must be after start');
  if (period.endsAt <= now) return fail(`end ${iso(period.endsAt)} has passed already; a delegation must end in the future`);
  if (period.endsAt - period.startsAt > MAX_DELEGATION_DAYS * DAY_MS) return fail(`a delegation lasts at most ${MAX_DELEGATION_DAYS} days; choose an end closer to start`);
  if (period.startsAt - now > MAX_DELEGATION_DAYS * DAY_MS) return fail(`a delegation starts at most ${MAX_DELEGATION_DAYS} days ahead`);
  return null;
}

/** Why this user cannot be the delegate of `userId` in `orgId`, or null. */
export function delegateProblem(orgId: string, userId: string, delegate: { id: string; orgId: string; status: string } | null, delegateId: string): Problem | null {
  if (delegateId === userId) return { code: 'DELEGATE_IS_SELF', message: `user ${userId} cannot be their own delegate; name someone else` };
  if (!delegate || delegate.orgId !== orgId) return { code: 'DELEGATE_NOT_FOUND', message: `the delegate ${delegateId} is not a user of org ${orgId}` };
  if (delegate.status !== 'ACTIVE') return { code: 'DELEGATE_INACTIVE', message: `the delegate ${delegateId} is ${delegate.status}; choose an active user` };
  return null;
}

/** A period of the same user that a new one would overlap (periods of one user never overlap), if any. */
export function overlapping(period: { startsAt: number; endsAt: number }, theirs: readonly DelegationPeriod[]): DelegationPeriod | undefined {
  return theirs
    .filter((other) => !other.cancelled && other.startsAt < period.endsAt && period.startsAt < other.endsAt)
    .sort((a, b) => a.startsAt - b.startsAt)[0];
}

const iso = (ms: number) => new Date(ms).toISOString();
