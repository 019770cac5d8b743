import { closingReason, reroutedTo, stepVerdict, type RequestPlan, type ReviewFacts } from '../../rules/app-request';

/**
 * The rules by which a pending request reviews itself after a change (drift while pending), which a
 * settings or per-app preview applies too: close (and why), re-route, or carry on.
 */

const plan: RequestPlan = {
  requestId: 'req-1',
  orgId: 'org-1',
  appId: 'app-1',
  appLabel: 'Expenses',
  requesterId: 'u-requester',
  approvalRequired: true,
  steps: [{ number: 1, type: 'GROUP', sourceId: 'g-finance', approverIds: ['u-f1', 'u-f2'], timeoutDays: 7 }],
  adminIds: ['u-admin'],
  notifications: {},
};

const asNow: ReviewFacts = {
  allowOrgManagedApps: true,
  app: { status: 'ACTIVE', selfService: { requestsEnabled: true, approvalRequired: true } },
  requesterStatus: 'ACTIVE',
};

describe('why a pending request closes', () => {
  test('nothing drifted: it goes on', () => {
    expect(closingReason(plan, asNow)).toBeNull();
  });

  test.each<[string, Partial<ReviewFacts>, RegExp]>([
    ['the org switch off', { allowOrgManagedApps: false }, /no longer allows users to add org-managed app integrations/],
    ['the app gone', { app: null }, /the app Expenses is no longer active/],
    ['the app inactive', { app: { status: 'INACTIVE', selfService: { requestsEnabled: true, approvalRequired: true } } }, /no longer active/],
    ['requests disabled', { app: { status: 'ACTIVE', selfService: { requestsEnabled: false, approvalRequired: true } } }, /requests for Expenses were disabled/],
    ['no configuration', { app: { status: 'ACTIVE', selfService: null } }, /requests for Expenses were disabled/],
    ['approval switched off', { app: { status: 'ACTIVE', selfService: { requestsEnabled: true, approvalRequired: false } } }, /approval for Expenses is no longer required/],
    ['the requester deactivated', { requesterStatus: 'DEACTIVATED' }, /the requester is DEACTIVATED/],
    ['the requester gone', { requesterStatus: null }, /the requester is gone/],
  ])('%s', (_what, drift, reason) => {
    expect(closingReason(plan, { ...asNow, ...drift })).toMatch(reason);
  });

  test('the org switch is judged first', () => {
    expect(closingReason(plan, { allowOrgManagedApps: false, app: null, requesterStatus: null })).toMatch(/org-managed/);
  });
});

describe('re-routing the current step', () => {
  const step = plan.steps[0]!;

  test('nobody left to approve closes the request; no step, nothing to resolve', () => {
    expect(stepVerdict(step, [], [])).toEqual({ close: 'nobody is left who could approve step 1' });
    expect(stepVerdict(null, null, ['u-admin'])).toEqual({ approverIds: null, adminIds: ['u-admin'] });
  });

  test('the same approvers in another order are no re-route; others are', () => {
    expect(reroutedTo(stepVerdict(step, ['u-f2', 'u-f1'], []), ['u-f1', 'u-f2'])).toBeNull();
    expect(reroutedTo(stepVerdict(step, ['u-f2'], []), ['u-f1', 'u-f2'])).toEqual(['u-f2']);
    expect(reroutedTo(stepVerdict(step, ['u-f1', 'u-f2', 'u-f3'], []), ['u-f1', 'u-f2'])).toEqual(['u-f1', 'u-f2', 'u-f3']);
    expect(reroutedTo({ close: 'gone' }, ['u-f1'])).toBeNull();
    expect(reroutedTo({ approverIds: null }, ['u-f1'])).toBeNull();
  });
});
