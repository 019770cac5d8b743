import {
  adminActionProblem,
  cancelProblem,
  decisionProblem,
  outcomeRecipients,
  type RequestPlan,
  type RequestView,
} from '../../rules/app-request';
import { requestPlanSchema } from '../../rules/request-plan';

const plan: RequestPlan = {
  requestId: 'req-1',
  orgId: 'org-1',
  appId: 'app-1',
  appLabel: 'Expenses',
  requesterId: 'u-requester',
  approvalRequired: true,
  steps: [
    { number: 1, type: 'USER', sourceId: 'u-manager', approverIds: ['u-manager'], timeoutDays: 7 },
    { number: 2, type: 'GROUP', sourceId: 'g-finance', approverIds: ['u-f1', 'u-f2'], timeoutDays: 30 },
  ],
  adminIds: ['u-admin'],
  notifications: {},
};

const pending = (step: number, approvers: string[]): RequestView => ({
  requestId: 'req-1',
  status: 'PENDING',
  plan,
  currentStep: step,
  currentApproverIds: approvers,
  stepDeadline: null,
  closedReason: null,
  timeline: [],
});

describe('who may decide a pending request', () => {
  test('a member of the current step may decide', () => {
    expect(decisionProblem(pending(2, ['u-f1', 'u-f2']), new Set([1]), { approverId: 'u-f2', decision: 'APPROVE' })).toBeNull();
  });

  test('an org admin may decide any step', () => {
    expect(decisionProblem(pending(1, ['u-manager']), new Set(), { approverId: 'u-admin', decision: 'DENY' })).toBeNull();
  });

  test('someone outside the current step may not', () => {
    expect(decisionProblem(pending(2, ['u-f1']), new Set([1]), { approverId: 'u-manager', decision: 'APPROVE' })).toMatchObject({
      code: 'NOT_CURRENT_APPROVER',
    });
  });

  test('the requester may not, even when listed as an approver', () => {
    expect(decisionProblem(pending(1, ['u-requester']), new Set(), { approverId: 'u-requester', decision: 'APPROVE' })).toMatchObject({
      code: 'REQUESTER_CANNOT_DECIDE',
    });
  });

  test('a step is decided once: the second decision is refused', () => {
    expect(decisionProblem(pending(2, ['u-f1', 'u-f2']), new Set([1, 2]), { approverId: 'u-f1', decision: 'APPROVE' })).toMatchObject({
      code: 'STEP_ALREADY_DECIDED',
    });
  });

  test('nothing is decided on a request that has ended, or that belongs to another org', () => {
    const ended = { ...pending(1, ['u-manager']), status: 'DENIED' as const, currentStep: null };
    expect(decisionProblem(ended, new Set(), { approverId: 'u-manager', decision: 'APPROVE' })).toMatchObject({ code: 'REQUEST_NOT_PENDING' });
    expect(decisionProblem(pending(1, ['u-manager']), new Set(), { approverId: 'u-manager', decision: 'APPROVE', orgId: 'org-2' })).toMatchObject({
      code: 'REQUEST_NOT_FOUND',
    });
  });

  test('a comment of 1001 characters is refused, 1000 is fine', () => {
    const view = pending(1, ['u-manager']);
    expect(decisionProblem(view, new Set(), { approverId: 'u-manager', decision: 'DENY', comment: 'x'.repeat(1000) })).toBeNull();
    expect(decisionProblem(view, new Set(), { approverId: 'u-manager', decision: 'DENY', comment: 'x'.repeat(1001) })).toMatchObject({
      code: 'COMMENT_TOO_LONG',
    });
  });
});

describe('cancel and admin actions', () => {
  test('only the requester cancels, and only while pending', () => {
    expect(cancelProblem(pending(1, ['u-manager']), { requesterId: 'u-requester' })).toBeNull();
    expect(cancelProblem(pending(1, ['u-manager']), { requesterId: 'u-manager' })).toMatchObject({ code: 'NOT_REQUESTER' });
    expect(cancelProblem({ ...pending(1, []), status: 'APPROVED' }, { requesterId: 'u-requester' })).toMatchObject({ code: 'REQUEST_NOT_PENDING' });
  });

  test('admin actions apply only to pending requests', () => {
    expect(adminActionProblem(pending(1, ['u-manager']), { actorId: 'u-admin', action: 'OVERRIDE' })).toBeNull();
    expect(adminActionProblem({ ...pending(1, []), status: 'EXPIRED' }, { actorId: 'u-admin', action: 'RESEND' })).toMatchObject({
      code: 'REQUEST_NOT_PENDING',
    });
  });
});

describe('outcome notifications', () => {
  test('the requester is told by default; approvers and others only when chosen', () => {
    expect(outcomeRecipients(undefined)).toEqual({ requester: true, approvers: false, others: [] });
    expect(outcomeRecipients({ requester: false, approvers: true, others: ['audit@example.com'] })).toEqual({
      requester: false,
      approvers: true,
      others: ['audit@example.com'],
    });
  });
});

describe('the plan stored with a request', () => {
  test('reads back as it was written', () => {
    expect(requestPlanSchema.parse(JSON.parse(JSON.stringify(plan)))).toEqual(plan);
  });

  test('a stored plan that lost a field or holds a wrong type is refused, naming the field', () => {
    const { adminIds: _, ...withoutAdmins } = plan;
    expect(requestPlanSchema.safeParse(withoutAdmins).error?.issues[0]?.path).toEqual(['adminIds']);
    const badStep = { ...plan, steps: [{ ...plan.steps[0], timeoutDays: '7' }] };
    expect(requestPlanSchema.safeParse(badStep).error?.issues[0]?.path).toEqual(['steps', 0, 'timeoutDays']);
  });
});
