import { approverRequestMail, outcomeMail, requestedForYouMail, type Person } from '../../activities/app-request-mails';
import { appRequested, appSelfServiceConfig, userUpserted } from '../../events/inbound';
import {
  cancelProblem,
  decisionProblem,
  justificationProblem,
  onBehalfProblem,
  requesterOf,
  type RequestPlan,
  type RequestView,
} from '../../rules/app-request';
import { requestPlanSchema } from '../../rules/request-plan';
import { AppRequestState } from '../../workflows/app-request-state';

/** Issue 12 points 4 (justification, deny comments) and 9 (requests on behalf of a direct report): the pure rules. */

const plan: RequestPlan = {
  requestId: 'req-1',
  orgId: 'org-1',
  appId: 'app-1',
  appLabel: 'Expenses',
  requesterId: 'u-report',
  approvalRequired: true,
  steps: [{ number: 1, type: 'USER', sourceId: 'u-approver', approverIds: ['u-approver'], timeoutDays: 7 }],
  adminIds: ['u-admin'],
  notifications: {},
};

const pending = (withPlan: RequestPlan): RequestView => ({
  requestId: 'req-1',
  status: 'PENDING',
  plan: withPlan,
  currentStep: 1,
  currentApproverIds: ['u-approver'],
  stepDeadline: null,
  closedReason: null,
  timeline: [{ sequence: 1, name: 'app.access_request.request', at: '2026-12-01T00:00:00.000Z', actorId: withPlan.requesterId }],
});

describe('a justification the app requires', () => {
  const app = { id: 'app-1', label: 'Expenses', justificationRequired: true };

  test('a request without one, or with only blanks, is refused naming the app and the field', () => {
    for (const comment of [undefined, '', '   \n\t']) {
      expect(justificationProblem(app, comment)).toEqual({
        code: 'JUSTIFICATION_REQUIRED',
        message: 'app app-1 (Expenses) requires a justification: give the reason for the request in comment (1 to 1000 characters)',
      });
    }
  });

  test('a request with one is fine, and an app that asks for none takes any request', () => {
    expect(justificationProblem(app, 'quarterly close')).toBeNull();
    expect(justificationProblem({ ...app, justificationRequired: false }, undefined)).toBeNull();
  });

  test('the per-app switches are optional booleans of the configuration', () => {
    expect(appSelfServiceConfig.parse({ requestsEnabled: true, approvalRequired: false })).not.toHaveProperty('justificationRequired');
    expect(appSelfServiceConfig.parse({ requestsEnabled: true, approvalRequired: false, justificationRequired: true, denyCommentRequired: true })).toMatchObject({
      justificationRequired: true,
      denyCommentRequired: true,
    });
    expect(appSelfServiceConfig.safeParse({ requestsEnabled: true, approvalRequired: false, denyCommentRequired: 'yes' }).error?.issues[0]?.message).toBe(
      'denyCommentRequired must be true or false',
    );
  });
});

describe('a comment the app requires to deny', () => {
  const strict = { ...plan, denyCommentRequired: true };

  test('a denial without a comment (or with blanks only) is refused; the request stays as it is', () => {
    for (const comment of [undefined, ' ']) {
      expect(decisionProblem(pending(strict), new Set(), { approverId: 'u-approver', decision: 'DENY', comment })).toEqual({
        code: 'DENY_COMMENT_REQUIRED',
        message: 'Expenses requires a comment to deny: give the reason for denying request req-1 in comment',
      });
    }
  });

  test('a denial with a comment, and an approval without one, are fine', () => {
    expect(decisionProblem(pending(strict), new Set(), { approverId: 'u-approver', decision: 'DENY', comment: 'use the shared licence' })).toBeNull();
    expect(decisionProblem(pending(strict), new Set(), { approverId: 'u-approver', decision: 'APPROVE' })).toBeNull();
  });

  test('a request made before the switch (a plan without the flag) is denied without a comment, as before', () => {
    expect(decisionProblem(pending(plan), new Set(), { approverId: 'u-approver', decision: 'DENY' })).toBeNull();
  });

  test('who may decide is checked first: an outsider hears that, not that a comment is missing', () => {
    expect(decisionProblem(pending(strict), new Set(), { approverId: 'u-outsider', decision: 'DENY' })).toMatchObject({ code: 'NOT_CURRENT_APPROVER' });
  });
});

describe('a request on behalf of a direct report', () => {
  test('onBehalfOf names the requester of record and userId who asked; without it (or naming oneself) it is a request for oneself', () => {
    expect(requesterOf({ userId: 'u-manager', onBehalfOf: 'u-report' })).toEqual({ requesterId: 'u-report', requestedById: 'u-manager' });
    expect(requesterOf({ userId: 'u-manager' })).toEqual({ requesterId: 'u-manager' });
    expect(requesterOf({ userId: 'u-manager', onBehalfOf: 'u-manager' })).toEqual({ requesterId: 'u-manager' });
  });

  test("only the report's manager in the directory may ask", () => {
    expect(onBehalfProblem('u-manager', { id: 'u-report', managerId: 'u-manager' })).toBeNull();
    expect(onBehalfProblem('u-peer', { id: 'u-report', managerId: 'u-manager' })).toEqual({
      code: 'NOT_MANAGER',
      message: "user u-peer is not the manager of user u-report in the directory; only a user's manager may request apps on their behalf",
    });
    expect(onBehalfProblem('u-manager', { id: 'u-report', managerId: null })).toMatchObject({ code: 'NOT_MANAGER' });
  });

  test('the contract: onBehalfOf on the request, managerId on the user (null clears it, omitted keeps it)', () => {
    expect(appRequested.parse({ orgId: 'o', userId: 'u-manager', appId: 'a', onBehalfOf: 'u-report' })).toMatchObject({ onBehalfOf: 'u-report' });
    expect(appRequested.safeParse({ orgId: 'o', userId: 'u', appId: 'a', onBehalfOf: '' }).error?.issues[0]?.message).toBe('onBehalfOf must not be empty');
    const user = { orgId: 'o', userId: 'u-report', email: 'r@example.com', status: 'ACTIVE' };
    expect(userUpserted.parse({ ...user, managerId: 'u-manager' }).managerId).toBe('u-manager');
    expect(userUpserted.parse({ ...user, managerId: null }).managerId).toBeNull();
    expect(userUpserted.parse(user)).not.toHaveProperty('managerId');
  });

  test('the report may not decide their request; the manager who asked may, when they are an approver', () => {
    const onBehalf = { ...plan, requestedById: 'u-approver' };
    expect(decisionProblem(pending(onBehalf), new Set(), { approverId: 'u-report', decision: 'APPROVE' })).toMatchObject({ code: 'REQUESTER_CANNOT_DECIDE' });
    expect(decisionProblem(pending(onBehalf), new Set(), { approverId: 'u-approver', decision: 'APPROVE' })).toBeNull();
  });

  test('the report and the manager who asked may cancel it; nobody else', () => {
    const onBehalf = { ...plan, requestedById: 'u-manager' };
    expect(cancelProblem(pending(onBehalf), { requesterId: 'u-report' })).toBeNull();
    expect(cancelProblem(pending(onBehalf), { requesterId: 'u-manager' })).toBeNull();
    expect(cancelProblem(pending(onBehalf), { requesterId: 'u-approver' })).toMatchObject({ code: 'NOT_REQUESTER' });
    expect(cancelProblem(pending(plan), { requesterId: 'u-manager' })).toMatchObject({ code: 'NOT_REQUESTER' });
  });

  test('the status shows the manager as who asked; a request for oneself shows as before', () => {
    const onBehalf = new AppRequestState({ requestId: 'r-1', workflowId: 'app-request-r-1' });
    onBehalf.open({ ...plan, requestedById: 'u-manager' }, 0);
    expect(onBehalf.snapshot().timeline[0]).toMatchObject({ name: 'app.access_request.request', actorId: 'u-manager' });
    const own = new AppRequestState({ requestId: 'r-2', workflowId: 'app-request-r-2' });
    own.open(plan, 0);
    expect(own.snapshot().timeline[0]).toMatchObject({ name: 'app.access_request.request', actorId: plan.requesterId });
  });

  test('plans of requests made before these fields read back unchanged; new ones keep them', () => {
    expect(requestPlanSchema.parse(JSON.parse(JSON.stringify(plan)))).toEqual(plan);
    const full = { ...plan, requestedById: 'u-manager', justificationRequired: true, denyCommentRequired: true, comment: 'why' };
    expect(requestPlanSchema.parse(JSON.parse(JSON.stringify(full)))).toEqual(full);
  });
});

describe('the emails', () => {
  const report: Person = { id: 'u-report', email: 'report@example.com', displayName: 'Rita Report' };
  const manager: Person = { id: 'u-manager', email: 'manager@example.com', displayName: 'Max Manager' };
  const step = plan.steps[0]!;

  test('approvers see who asked, for whom, and the justification', () => {
    const mail = approverRequestMail({ ...plan, requestedById: 'u-manager', justificationRequired: true, comment: 'new hire' }, step, report, 'soon', 'request', manager);
    expect(mail.subject).toBe('Approval needed: Max Manager requests Expenses for Rita Report');
    expect(mail.text).toContain('Rita Report <report@example.com> requests access to Expenses.');
    expect(mail.text).toContain('Requested by Max Manager <manager@example.com>, their manager, on their behalf.');
    expect(mail.text).toContain('Justification from the manager who asked: new hire');
  });

  test('a request for oneself reads as before; a required comment is called a justification', () => {
    const own = approverRequestMail({ ...plan, requesterId: 'u-report' }, step, report, 'soon', 'request');
    expect(own.subject).toBe('Approval needed: Rita Report requests Expenses');
    expect(own.text).toContain('The requester left no comment.');
    expect(own.text).not.toContain('Requested by');
    expect(approverRequestMail({ ...plan, justificationRequired: true, comment: 'audit' }, step, report, 'soon', 'request').text).toContain(
      'Justification from the requester: audit',
    );
  });

  test('the outcome names the report and who asked; the report is told when someone asked in their name', () => {
    const approved = outcomeMail({ ...plan, requestedById: 'u-manager' }, report, 'APPROVED', { askedByName: 'Max Manager' });
    expect(approved.subject).toBe("Approved: Expenses is on Rita Report's dashboard");
    expect(approved.text).toContain('for Expenses by Rita Report (requested by Max Manager) was approved');
    const told = requestedForYouMail({ ...plan, requestedById: 'u-manager', comment: 'new hire' }, manager);
    expect(told.subject).toBe('Max Manager requested Expenses for you');
    expect(told.text).toContain('Max Manager <manager@example.com>, your manager, requested access to Expenses for you.');
    expect(told.text).toContain('Comment: new hire');
  });
});
