import { configChanges, configurationViolations } from '../../activities/app-configuration';

/** The per-app configuration's pure rules: what counts as a change, and the checks of escalation and time-bound access. */

const base = {
  requestsEnabled: true,
  approvalRequired: true,
  noteForRequester: null,
  approverSteps: [{ type: 'USER', id: 'u-manager', timeout: { days: 7 } }],
  notifications: {},
  fallbackApproverIds: [],
};

describe('per-app configuration rules', () => {
  test('a switch turned off, or time-bound access taken away, is a change', () => {
    expect(configChanges({ ...base, justificationRequired: true }, { ...base, justificationRequired: false })).toEqual(['justificationRequired']);
    expect(configChanges({ ...base, timeBoundAccess: { maxDays: 30 } }, { ...base, timeBoundAccess: null })).toEqual(['timeBoundAccess']);
    expect(configChanges({ ...base, timeBoundAccess: { maxDays: 30 } }, { ...base, timeBoundAccess: { maxDays: 30 } })).toEqual([]);
    // jsonb keeps keys in an order of its own: the same steps with keys reordered are no change.
    expect(configChanges(base, { ...base, approverSteps: [{ timeout: { days: 7 }, id: 'u-manager', type: 'USER' }] })).toEqual([]);
  });

  test('an escalation is checked like a step, and named as the escalation of its step', () => {
    const step = (escalation: unknown) => ({ requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'USER' as const, id: 'u-1', timeout: { days: 3 }, escalation }] });
    const codes = (config: ReturnType<typeof step>) => configurationViolations(config as never).map((violation) => [violation.code, violation.message]);
    expect(codes(step({ approvers: [{ type: 'USER', id: 'u-2' }], timeout: { businessDays: 0 } }))).toEqual([
      ['INVALID_STEP_TIMEOUT', expect.stringContaining('the escalation of approver step 1 times out after 0 business days')],
    ]);
    expect(codes(step({ approvers: [{ type: 'GROUP', id: 'g-1' }, { type: 'GROUP', id: 'g-1' }], timeout: { days: 2 } }))).toEqual([
      ['DUPLICATE_APPROVER', 'the escalation of approver step 1 repeats GROUP g-1; each user or group may appear once'],
    ]);
    expect(codes(step({ approvers: [{ type: 'USER', id: 'u-2' }], timeout: { days: 2 }, reminder: { daysBefore: 1 } }))).toEqual([]);
  });

  test('time-bound access: 1 to 3650 whole days, reminded before its end', () => {
    const access = (timeBoundAccess: unknown) =>
      configurationViolations({ requestsEnabled: true, approvalRequired: false, timeBoundAccess } as never).map((violation) => violation.code);
    expect(access({ maxDays: 30, reminderDaysBefore: 3 })).toEqual([]);
    expect(access({ maxDays: 1.5 })).toEqual(['INVALID_ACCESS_DURATION']);
    expect(access({ maxDays: 3651 })).toEqual(['INVALID_ACCESS_DURATION']);
    expect(access({ maxDays: 3, reminderDaysBefore: 3 })).toEqual(['INVALID_REMINDER']);
  });
});
