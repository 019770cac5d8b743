import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, expectRejected, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';
import { statusQuery } from '../../workflows/app-request';

/**
 * Escalation and business days as admins configure them, on the real services: the per-app
 * configuration with an escalation or business-day timeouts, the org's business calendar, their
 * refusals, and what a submitted request's workflow holds. (What happens when the time runs out is in
 * test/workflow/escalation.test.ts and business-days.test.ts, on the time-skipping server.)
 */
describe('escalation and business-day configuration', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.settings, backend.topics.deadLetters]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const CONFIGURE = 'selfservice.app.self-service-configured.v1';
  const SET_CALENDAR = 'selfservice.business-calendar.set-requested.v1';
  const CALENDAR_CHANGED = 'selfservice.settings.business-calendar-changed.v1';


  async function app(org: SeededOrg): Promise<string> {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Payroll ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
    return appId;
  }

  const configure = (org: SeededOrg, appId: string, steps: unknown[]) =>
    commands.send('adminCommands', CONFIGURE, { orgId: org.orgId, actorId: org.superAdminId, appId, config: { requestsEnabled: true, approvalRequired: true, approverSteps: steps } });

  test('a step with an escalation in business days is stored, announced, and planned into the request', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'director'] });
    const appId = await app(org);
    const step = {
      type: 'USER',
      id: org.user('manager'),
      timeout: { businessDays: 3 },
      reminder: { daysBefore: 1 },
      escalation: { approvers: [{ type: 'USER', id: org.user('director') }], timeout: { days: 2 } },
    };
    const result = await configure(org, appId, [step]);
    expect(result.type).toBe('selfservice.command.accepted.v1');
    const announced = await probe.waitFor((record) => record.type === 'selfservice.app.self-service-changed.v1' && record.data.appId === appId, 'the configuration event');
    expect((announced.data.after as { approverSteps: unknown[] }).approverSteps).toEqual([step]);

    const submitted = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
    const view = await backend.client.workflow.getHandle(submitted.data.workflowId as string).query(statusQuery);
    expect(view.plan?.steps[0]).toMatchObject({
      timeoutDays: 3,
      businessDays: true,
      reminderDaysBefore: 1,
      escalation: { approvers: [{ type: 'USER', id: org.user('director') }], timeoutDays: 2 },
    });
    // No calendar set: business days are Monday to Friday in UTC, and the plan says so.
    expect(view.plan?.calendar).toEqual({ timeZone: 'UTC', workingDays: ['MON', 'TUE', 'WED', 'THU', 'FRI'] });
  });

  test('an escalation is checked like a step: its approvers, its timeout, its reminder', async () => {
    const org = await seedOrg(commands, { users: ['manager', 'suspended'] });
    await commands.directory('user-upserted', { orgId: org.orgId, userId: org.user('suspended'), email: org.email('suspended'), status: 'SUSPENDED' });
    const appId = await app(org);
    const manager = { type: 'USER', id: org.user('manager'), timeout: { days: 3 } };
    const escalateTo = (approvers: unknown[], timeout: unknown = { days: 2 }, reminder?: unknown) => ({ ...manager, escalation: { approvers, timeout, ...(reminder ? { reminder } : {}) } });

    expectRejected(await configure(org, appId, [escalateTo([{ type: 'USER', id: 'u-nobody' }])]), 'APPROVER_NOT_FOUND', 'the escalation of approver step 1: user u-nobody');
    expectRejected(await configure(org, appId, [escalateTo([{ type: 'USER', id: org.user('suspended') }])]), 'APPROVER_INACTIVE', 'the escalation of approver step 1');
    expectRejected(await configure(org, appId, [escalateTo([{ type: 'GROUP', id: 'g-nobody' }])]), 'APPROVER_GROUP_NOT_FOUND', 'the escalation of approver step 1: group g-nobody');
    expectRejected(await configure(org, appId, [escalateTo([{ type: 'USER', id: org.user('manager') }], { businessDays: 91 })]), 'INVALID_STEP_TIMEOUT', 'the escalation of approver step 1 times out after 91 business days');
    expectRejected(await configure(org, appId, [escalateTo([{ type: 'USER', id: org.user('manager') }], { days: 2 }, { daysBefore: 2 })]), 'INVALID_REMINDER', 'the escalation of approver step 1 reminds 2 days');
    expectRejected(
      await configure(org, appId, [escalateTo([{ type: 'USER', id: org.user('manager') }, { type: 'USER', id: org.user('manager') }])]),
      'DUPLICATE_APPROVER',
      'the escalation of approver step 1 repeats USER',
    );
    // Not the contract's shape: dead-lettered, with the field named.
    const both = await configure(org, appId, [{ ...manager, timeout: { days: 3, businessDays: 3 } }]);
    expectRejected(both, 'INVALID_COMMAND', 'timeout must give either days or businessDays');
    const noApprovers = await configure(org, appId, [escalateTo([])]);
    expectRejected(noApprovers, 'INVALID_COMMAND', 'escalation.approvers must list at least one user or group');
    await probe.waitFor((record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === noApprovers.data.commandId, 'the dead letter');
    await expect(backend.db.appSelfServiceConfig.findUnique({ where: { appId } })).resolves.toBeNull();
  });

  test('the business calendar: set by a super admin, announced once, refused with the field named, removed with null', async () => {
    const org = await seedOrg(commands, { users: ['appAdmin'], adminRoles: { appAdmin: ['APP_ADMIN'] } });
    const calendar = { timeZone: 'America/New_York', workingDays: ['MON', 'TUE', 'WED', 'THU', 'FRI'], holidays: ['2026-12-25'] };
    const set = (actorId: string, value: unknown) => commands.send('adminCommands', SET_CALENDAR, { orgId: org.orgId, actorId, calendar: value });
    const events = () => probe.matching((record) => record.type === CALENDAR_CHANGED && record.data.orgId === org.orgId);

    expectRejected(await set(org.user('appAdmin'), calendar), 'NOT_AUTHORIZED', org.user('appAdmin'));
    expectRejected(await set(org.superAdminId, { ...calendar, timeZone: 'Mars/Olympus' }), 'INVALID_COMMAND', 'timeZone must be an IANA time zone');
    expectRejected(await set(org.superAdminId, { ...calendar, workingDays: ['MON', 'MON'] }), 'INVALID_COMMAND', 'workingDays must not repeat a day');
    expectRejected(await set(org.superAdminId, { ...calendar, holidays: ['25/12/2026'] }), 'INVALID_COMMAND', 'holidays must be dates such as 2026-12-25');

    expect((await set(org.superAdminId, calendar)).data).toMatchObject({ changed: true, calendar });
    await probe.waitFor((record) => record.type === CALENDAR_CHANGED && record.data.orgId === org.orgId, 'the calendar event');
    // The same calendar again (days in another order): accepted, nothing changed, not announced again.
    expect((await set(org.superAdminId, { ...calendar, workingDays: ['FRI', 'THU', 'WED', 'TUE', 'MON'] })).data).toMatchObject({ changed: false });
    expect((await set(org.superAdminId, null)).data).toMatchObject({ changed: true, calendar: null });
    await probe.waitFor((record) => record.type === CALENDAR_CHANGED && record.data.orgId === org.orgId && record.data.after === null, 'the removal');
    expect(events().map((event) => [event.data.before, event.data.after])).toEqual([
      [null, calendar],
      [calendar, null],
    ]);
    const audit = await backend.db.auditEntry.findMany({ where: { orgId: org.orgId, action: 'settings.business-calendar.set' }, orderBy: { id: 'asc' } });
    expect(audit.map((entry) => entry.outcome)).toEqual(['REJECTED', 'ACCEPTED', 'ACCEPTED', 'ACCEPTED']);
  });
});
