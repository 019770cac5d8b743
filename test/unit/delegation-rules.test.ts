import { approverRequestMail, type Person } from '../../activities/app-request-mails';
import { delegationCancelRequested, delegationSetRequested } from '../../events/inbound';
import type { RequestPlan } from '../../rules/app-request';
import { AppRequestState } from '../../workflows/app-request-state';
import {
  awayAt,
  DAY_MS,
  delegatedAmong,
  delegateProblem,
  delegationChain,
  delegationPeriodProblem,
  delegationReach,
  inForce,
  overlapping,
  standInFor,
  substituteDelegates,
  type DelegationPeriod,
} from '../../rules/delegation';

/** Issue 12 point 2, the pure rules of delegation while away: who is away, who stands in, which periods may be set. */

const T = Date.parse('2026-12-01T09:00:00Z');
const HOUR = 3600_000;

let next = 1;
const period = (userId: string, delegateId: string, startsAt = T - DAY_MS, endsAt = T + DAY_MS, cancelled = false): DelegationPeriod => ({
  delegationId: `dlg-${next++}`,
  userId,
  delegateId,
  startsAt,
  endsAt,
  ...(cancelled ? { cancelled } : {}),
});

const away = (...pairs: [string, string][]) => new Map(pairs);
const everyone = () => true;

describe('which delegations are in force', () => {
  test('from its start (included) until its end (excluded)', () => {
    const bob = period('bob', 'dave', T, T + DAY_MS);
    expect(inForce(bob, T - 1)).toBe(false);
    expect(inForce(bob, T)).toBe(true);
    expect(inForce(bob, T + DAY_MS - 1)).toBe(true);
    expect(inForce(bob, T + DAY_MS)).toBe(false);
  });

  test('a cancelled one never is', () => {
    expect(inForce(period('bob', 'dave', T - HOUR, T + HOUR, true), T)).toBe(false);
  });

  test('who is away at an instant, and to whom', () => {
    const periods = [period('bob', 'dave'), period('carol', 'erin', T + HOUR, T + DAY_MS), period('frank', 'gina', T - DAY_MS, T - HOUR)];
    expect(awayAt(periods, T)).toEqual(away(['bob', 'dave']));
    expect(awayAt(periods, T + HOUR)).toEqual(away(['bob', 'dave'], ['carol', 'erin']));
  });

  test('should two periods of a user be in force at once, the earlier start counts', () => {
    expect(awayAt([period('bob', 'erin', T - HOUR), period('bob', 'dave', T - DAY_MS)], T)).toEqual(away(['bob', 'dave']));
  });
});

describe('who stands in for an approver', () => {
  test('an approver who is not away: nobody', () => {
    expect(standInFor('bob', away(['carol', 'dave']), everyone)).toBeNull();
  });

  test('the delegate of an approver who is away', () => {
    expect(standInFor('bob', away(['bob', 'dave']), everyone)).toBe('dave');
  });

  test('a chain is followed to the first one who is not away (A -> B away -> C)', () => {
    expect(standInFor('a', away(['a', 'b'], ['b', 'c']), everyone)).toBe('c');
    expect(delegationChain('a', away(['a', 'b'], ['b', 'c']))).toEqual(['b', 'c']);
  });

  test('a loop passes nothing on: A -> B -> A keeps each one where they are', () => {
    const loop = away(['a', 'b'], ['b', 'a']);
    expect(standInFor('a', loop, everyone)).toBeNull();
    expect(standInFor('b', loop, everyone)).toBeNull();
    expect(delegationChain('a', loop)).toEqual(['b']);
    // A longer loop too, reached from outside it.
    const longer = away(['x', 'a'], ['a', 'b'], ['b', 'c'], ['c', 'a']);
    expect(standInFor('x', longer, everyone)).toBeNull();
    expect(delegationChain('x', longer)).toEqual(['a', 'b', 'c']);
  });

  test("a change of one user's delegation reaches them, everyone whose delegates lead to them, and the delegate's chain", () => {
    // x -> a -> b -> c, y -> b, z -> q (elsewhere): a change of a's delegation (to b).
    const graph = away(['x', 'a'], ['a', 'b'], ['b', 'c'], ['y', 'b'], ['z', 'q']);
    expect(delegationReach('a', 'b', graph)).toEqual(['a', 'b', 'c', 'x']);
    // Cancelled (a's edge gone): the same people, so the steps stuck with them move on.
    expect(delegationReach('a', 'b', away(['x', 'a'], ['b', 'c'], ['y', 'b']))).toEqual(['a', 'b', 'c', 'x']);
    // A loop ends.
    expect(delegationReach('a', 'b', away(['a', 'b'], ['b', 'a']))).toEqual(['a', 'b']);
  });

  test('a chain that ends on someone who may not approve stands nobody in', () => {
    const chain = away(['a', 'b'], ['b', 'c']);
    expect(standInFor('a', chain, (id) => id !== 'c')).toBeNull();
    // Only the one it ends on counts: a deactivated delegate who is away passes it on.
    expect(standInFor('a', chain, (id) => id !== 'b')).toBe('c');
  });
});

describe('approvers after delegation', () => {
  const requester = { requesterId: 'rita', mayApprove: everyone };

  test('nobody away: the approvers as they are', () => {
    expect(substituteDelegates(['bob', 'carol'], away(), requester)).toEqual({ approverIds: ['bob', 'carol'], delegatedFrom: {} });
  });

  test('an approver who is away is replaced by their delegate, who stands in for them', () => {
    expect(substituteDelegates(['bob', 'carol'], away(['bob', 'dave']), requester)).toEqual({ approverIds: ['carol', 'dave'], delegatedFrom: { dave: 'bob' } });
  });

  test('the delegate of the end of a chain stands in for the approver at its start', () => {
    expect(substituteDelegates(['a'], away(['a', 'b'], ['b', 'c']), requester)).toEqual({ approverIds: ['c'], delegatedFrom: { c: 'a' } });
  });

  test('a loop keeps the original approvers, once each', () => {
    expect(substituteDelegates(['a', 'b'], away(['a', 'b'], ['b', 'a']), requester)).toEqual({ approverIds: ['a', 'b'], delegatedFrom: {} });
    expect(substituteDelegates(['a'], away(['a', 'b'], ['b', 'a']), requester)).toEqual({ approverIds: ['a'], delegatedFrom: {} });
  });

  test('the requester is never their own approver through a delegation: the approver stays', () => {
    expect(substituteDelegates(['bob'], away(['bob', 'rita']), requester)).toEqual({ approverIds: ['bob'], delegatedFrom: {} });
    // Nor at the end of a chain.
    expect(substituteDelegates(['bob', 'carol'], away(['bob', 'dave'], ['dave', 'rita']), requester)).toEqual({ approverIds: ['bob', 'carol'], delegatedFrom: {} });
    // Passing through the requester is fine: the one it ends on decides.
    expect(substituteDelegates(['bob'], away(['bob', 'rita'], ['rita', 'erin']), requester)).toEqual({ approverIds: ['erin'], delegatedFrom: { erin: 'bob' } });
  });

  test('a delegate who may not approve (not an active user of the org) leaves the approver in place', () => {
    expect(substituteDelegates(['bob'], away(['bob', 'dave']), { requesterId: 'rita', mayApprove: (id) => id !== 'dave' })).toEqual({
      approverIds: ['bob'],
      delegatedFrom: {},
    });
  });

  test('a delegate who is an approver of the step in their own right decides in their own name; no repeats', () => {
    expect(substituteDelegates(['bob', 'dave'], away(['bob', 'dave']), requester)).toEqual({ approverIds: ['dave'], delegatedFrom: {} });
  });

  test('a delegate of two approvers is listed once, standing in for the first of them', () => {
    expect(substituteDelegates(['carol', 'bob'], away(['bob', 'dave'], ['carol', 'dave']), requester)).toEqual({
      approverIds: ['dave'],
      delegatedFrom: { dave: 'bob' },
    });
  });

  test('whom the delegates among some approvers stand in for', () => {
    expect(delegatedAmong({ dave: 'bob', erin: 'carol' }, ['dave', 'frank'])).toEqual({ dave: 'bob' });
    expect(delegatedAmong({ dave: 'bob' }, ['frank'])).toBeUndefined();
    expect(delegatedAmong(undefined, ['frank'])).toBeUndefined();
  });
});

describe('which periods may be set', () => {
  const problem = (startsAt: number, endsAt: number) => delegationPeriodProblem({ startsAt, endsAt }, T)?.code ?? null;

  test('a period from now, from the past or from the future that ends in the future', () => {
    expect(problem(T, T + 7 * DAY_MS)).toBeNull();
    expect(problem(T - 3 * DAY_MS, T + HOUR)).toBeNull();
    expect(problem(T + 30 * DAY_MS, T + 60 * DAY_MS)).toBeNull();
    expect(problem(T, T + 365 * DAY_MS)).toBeNull();
  });

  test('the end must follow the start and lie ahead', () => {
    expect(problem(T, T)).toBe('INVALID_DELEGATION_PERIOD');
    expect(problem(T + DAY_MS, T)).toBe('INVALID_DELEGATION_PERIOD');
    expect(problem(T - 2 * DAY_MS, T - DAY_MS)).toBe('INVALID_DELEGATION_PERIOD');
    expect(problem(T - 2 * DAY_MS, T)).toBe('INVALID_DELEGATION_PERIOD');
  });

  test('at most 365 days long, starting at most 365 days ahead', () => {
    expect(problem(T, T + 365 * DAY_MS + 1)).toBe('INVALID_DELEGATION_PERIOD');
    expect(problem(T + 366 * DAY_MS, T + 367 * DAY_MS)).toBe('INVALID_DELEGATION_PERIOD');
    expect(delegationPeriodProblem({ startsAt: T, endsAt: T + 400 * DAY_MS }, T)?.message).toContain('at most 365 days');
  });

  test('the delegate: an active user of the org other than oneself', () => {
    const user = (status: string, orgId = 'org-1') => ({ id: 'dave', orgId, status });
    expect(delegateProblem('org-1', 'bob', user('ACTIVE'), 'dave')).toBeNull();
    expect(delegateProblem('org-1', 'bob', null, 'bob')?.code).toBe('DELEGATE_IS_SELF');
    expect(delegateProblem('org-1', 'bob', null, 'dave')?.code).toBe('DELEGATE_NOT_FOUND');
    expect(delegateProblem('org-1', 'bob', user('ACTIVE', 'org-2'), 'dave')?.code).toBe('DELEGATE_NOT_FOUND');
    expect(delegateProblem('org-1', 'bob', user('SUSPENDED'), 'dave')).toEqual({ code: 'DELEGATE_INACTIVE', message: 'the delegate dave is SUSPENDED; choose an active user' });
  });

  test('periods of one user do not overlap; touching ones and cancelled ones do not count', () => {
    const existing = period('bob', 'dave', T, T + 7 * DAY_MS);
    expect(overlapping({ startsAt: T + DAY_MS, endsAt: T + 2 * DAY_MS }, [existing])).toBe(existing);
    expect(overlapping({ startsAt: T - DAY_MS, endsAt: T + 1 }, [existing])).toBe(existing);
    expect(overlapping({ startsAt: T + 7 * DAY_MS, endsAt: T + 8 * DAY_MS }, [existing])).toBeUndefined();
    expect(overlapping({ startsAt: T - DAY_MS, endsAt: T }, [existing])).toBeUndefined();
    expect(overlapping({ startsAt: T, endsAt: T + DAY_MS }, [{ ...existing, cancelled: true }])).toBeUndefined();
  });
});

describe('the commands', () => {
  const set = { orgId: 'org-1', userId: 'bob', delegateId: 'dave', start: '2026-12-01T09:00:00Z', end: '2026-12-15T09:00:00+01:00' };

  test('start and end are ISO 8601 date-times with an offset; the reason is optional free text', () => {
    expect(delegationSetRequested.parse({ ...set, reason: 'parental leave' })).toMatchObject({ reason: 'parental leave' });
    for (const start of ['2026-12-01', '2026-12-01T09:00:00', 'tomorrow', 1764579600000]) {
      const parsed = delegationSetRequested.safeParse({ ...set, start });
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.message).toMatch(/^start must be an ISO 8601 date-time with an offset/);
    }
    expect(delegationSetRequested.safeParse({ ...set, reason: 'x'.repeat(1001) }).success).toBe(false);
    expect(delegationSetRequested.safeParse({ ...set, reason: 'away\u0007' }).success).toBe(false);
    expect(delegationCancelRequested.safeParse({ orgId: 'org-1', userId: 'bob', delegationId: '' }).success).toBe(false);
  });
});

describe('a delegate in the request state machine', () => {
  const plan: RequestPlan = {
    requestId: 'req-1',
    orgId: 'org-1',
    appId: 'app-1',
    appLabel: 'Expenses',
    requesterId: 'rita',
    approvalRequired: true,
    steps: [{ number: 1, type: 'USER', sourceId: 'bob', approverIds: ['dave'], timeoutDays: 7, delegatedFrom: { dave: 'bob' } }],
    adminIds: ['admin'],
    notifications: {},
  };
  const opened = () => {
    const state = new AppRequestState({ requestId: 'req-1', workflowId: 'app-request-req-1' });
    state.open(plan, T);
    const started = state.startStep(plan.steps[0]!, null, T);
    return { state, started };
  };

  test('the delegate is emailed as the delegate, and the status shows whom they stand in for', () => {
    const { state, started } = opened();
    expect(started.emails).toEqual([expect.objectContaining({ to: 'approvers', notice: expect.objectContaining({ approverIds: ['dave'], delegatedFrom: { dave: 'bob' } }) })]);
    expect(state.snapshot()).toMatchObject({ currentApproverIds: ['dave'], delegatedFrom: { dave: 'bob' } });
  });

  test('the delegate approves: the decision names the approver who is away', () => {
    const { state } = opened();
    expect(typeof state.receive({ kind: 'decision', input: { approverId: 'dave', decision: 'APPROVE' } })).toBe('number');
    const { change } = state.handleNext(T + HOUR)!;
    expect(change.transitions.map((transition) => [transition.name, transition.actorId, transition.onBehalfOf])).toEqual([
      ['app.access_request.approver.approve', 'dave', 'bob'],
      ['app.access_request.grant', 'dave', undefined],
    ]);
    expect(state.snapshot().timeline.find((entry) => entry.name === 'app.access_request.approver.approve')).toMatchObject({ actorId: 'dave', onBehalfOf: 'bob' });
  });

  test('the delegate denies: the denial and the outcome email name the approver who is away', () => {
    const { state } = opened();
    state.receive({ kind: 'decision', input: { approverId: 'dave', decision: 'DENY', comment: 'no budget' } });
    const { change } = state.handleNext(T + HOUR)!;
    expect(change.transitions.map((transition) => [transition.name, transition.onBehalfOf])).toEqual([
      ['app.access_request.approver.deny', 'bob'],
      ['app.access_request.deny', 'bob'],
    ]);
    expect(change.emails).toEqual([expect.objectContaining({ to: 'outcome', notice: expect.objectContaining({ actorId: 'dave', onBehalfOf: 'bob' }) })]);
  });

  test('the approver who is away is not on the step; an admin still decides in their own name', () => {
    const { state } = opened();
    expect(state.problemWith({ kind: 'decision', input: { approverId: 'bob', decision: 'APPROVE' } })?.code).toBe('NOT_CURRENT_APPROVER');
    state.receive({ kind: 'decision', input: { approverId: 'admin', decision: 'APPROVE' } });
    expect(state.handleNext(T + HOUR)!.change.transitions[0]).not.toHaveProperty('onBehalfOf');
  });

  test('the period ends: a review sends the step back to the approver, who is emailed as before', () => {
    const { state } = opened();
    const change = state.reviewed({ approverIds: ['bob'], adminIds: ['admin'] }, T + DAY_MS);
    expect(change.transitions).toEqual([expect.objectContaining({ name: 'app.access_request.reroute', currentApproverIds: ['bob'] })]);
    expect(change.transitions[0]).not.toHaveProperty('delegatedFrom');
    expect(change.emails).toEqual([expect.objectContaining({ notice: expect.not.objectContaining({ delegatedFrom: expect.anything() }) })]);
    expect(state.snapshot()).not.toHaveProperty('delegatedFrom');
    state.receive({ kind: 'decision', input: { approverId: 'bob', decision: 'APPROVE' } });
    expect(state.handleNext(T + DAY_MS)!.change.transitions[0]).toMatchObject({ actorId: 'bob' });
  });

  test('a period starts while the step waits: the re-route names who stands in for whom', () => {
    const state = new AppRequestState({ requestId: 'req-2', workflowId: 'app-request-req-2' });
    const own = { ...plan, steps: [{ ...plan.steps[0]!, approverIds: ['bob'], delegatedFrom: undefined }] };
    state.open(own, T);
    state.startStep(own.steps[0]!, null, T);
    const change = state.reviewed({ approverIds: ['dave'], adminIds: ['admin'], delegatedFrom: { dave: 'bob' } }, T + HOUR);
    expect(change.transitions).toEqual([expect.objectContaining({ name: 'app.access_request.reroute', currentApproverIds: ['dave'], delegatedFrom: { dave: 'bob' } })]);
    expect(change.emails).toEqual([expect.objectContaining({ notice: expect.objectContaining({ approverIds: ['dave'], delegatedFrom: { dave: 'bob' } }) })]);
  });

  test("the delegate's email says on whose behalf they decide", () => {
    const person = (id: string, displayName: string): Person => ({ id, email: `${id}@example.com`, displayName });
    const mail = approverRequestMail(plan, plan.steps[0]!, person('rita', 'Rita Requester'), 'soon', 'request', null, person('bob', 'Bob Boss'));
    expect(mail.subject).toBe('Approval needed: Rita Requester requests Expenses (on behalf of Bob Boss)');
    expect(mail.text).toContain('You decide on behalf of Bob Boss <bob@example.com>, who is away and named you their delegate.');
    expect(approverRequestMail(plan, plan.steps[0]!, person('rita', 'Rita Requester'), 'soon', 'reminder', null, person('bob', 'Bob Boss')).subject).toBe(
      'Reminder: Rita Requester is waiting for your approval of Expenses (on behalf of Bob Boss)',
    );
  });
});
