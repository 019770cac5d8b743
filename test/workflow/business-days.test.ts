import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RequestView } from '../../rules/app-request';
import { startTestBackend, startTimeSkippingServer, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { waitForView } from '../support/requests';
import { uniqueId } from '../support/test-config';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

/**
 * Step timeouts and reminders counted in business days, on the time-skipping server: the test clock is
 * moved to chosen dates (a long weekend with a clock change), then a request is submitted through
 * Kafka and its timers are read from the workflow and from the events it writes.
 */
describe('business-day timeouts on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    env = await startTimeSkippingServer();
    backend = await startTestBackend({ temporal: { client: env.client, connection: env.nativeConnection } });
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.accessRequests, backend.topics.settings]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
    await env?.teardown();
  });

  /** Moves the test server's clock to `instant` (it only moves forward). */
  async function clockTo(instant: number): Promise<void> {
    const now = await env.currentTimeMs();
    if (instant <= now) throw new Error(`the test clock is already past ${new Date(instant).toISOString()}`);
    await env.sleep(instant - now);
  }

  async function appWithSteps(org: SeededOrg, steps: Record<string, unknown>[]): Promise<string> {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Travel ${appId}`, signOnMode: 'OIDC', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: true, approverSteps: steps },
    });
    return appId;
  }

  async function submit(org: SeededOrg, appId: string) {
    const result = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
    const handle = backend.client.workflow.getHandle(result.data.workflowId as string);
    const view = await waitForView(handle, (opened) => opened.currentStep === 1);
    return { requestId: result.data.requestId as string, handle, view };
  }

  const eventOf = (requestId: string, name: string) =>
    probe.matching((record: SeenRecord) => record.type === `selfservice.app.access_request.${name}.v1` && record.data.requestId === requestId)[0];

  test('over Easter 2027 in Berlin: holidays and a weekend are skipped, and the clock change keeps the local time', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const calendar = { timeZone: 'Europe/Berlin', workingDays: ['FRI', 'MON', 'TUE', 'WED', 'THU'], holidays: ['2027-03-29', '2027-03-26'] };
    const set = await commands.accepted('adminCommands', 'selfservice.business-calendar.set-requested.v1', { orgId: org.orgId, actorId: org.superAdminId, calendar });
    // Stored and announced in one spelling: working days in week order, holidays sorted.
    const normalized = { timeZone: 'Europe/Berlin', workingDays: ['MON', 'TUE', 'WED', 'THU', 'FRI'], holidays: ['2027-03-26', '2027-03-29'] };
    expect(set.data).toMatchObject({ changed: true, calendar: normalized });
    const announced = await probe.waitFor(
      (record) => record.type === 'selfservice.settings.business-calendar-changed.v1' && record.data.orgId === org.orgId,
      'the business-calendar-changed event',
    );
    expect(announced.data).toEqual({ orgId: org.orgId, actorId: org.superAdminId, before: null, after: normalized });

    const appId = await appWithSteps(org, [{ type: 'USER', id: org.user('manager'), timeout: { businessDays: 2 }, reminder: { daysBefore: 1 } }]);
    // Good Friday 26 March 2027, 10:00 in Berlin (CET). Clocks go forward on Sunday the 28th; Monday the 29th is Easter Monday.
    await clockTo(Date.parse('2027-03-26T09:00:00Z'));
    const { requestId, handle, view } = await submit(org, appId);
    const submittedAt = Date.parse(view.timeline[0]!.at);

    // Two business days: Tuesday the 30th and Wednesday the 31st, at the local time of submission (now CEST: an hour earlier in UTC).
    expect(Date.parse(view.stepDeadline!)).toBe(submittedAt + 5 * DAY - HOUR);

    // A calendar change after submission does not move this request's timers.
    await commands.accepted('adminCommands', 'selfservice.business-calendar.set-requested.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      calendar: { timeZone: 'Asia/Tokyo', workingDays: ['SAT', 'SUN'] },
    });

    const ended = (await handle.result()) as RequestView;
    expect(ended.status).toBe('EXPIRED');
    const at = (name: string) => Date.parse(ended.timeline.find((entry) => entry.name === `app.access_request.${name}`)?.at ?? '');
    // Reminded one business day before: Tuesday at the same local time.
    expect(at('remind')).toBeGreaterThanOrEqual(submittedAt + 4 * DAY - HOUR);
    expect(at('remind')).toBeLessThan(submittedAt + 4 * DAY);
    expect(at('expire')).toBeGreaterThanOrEqual(submittedAt + 5 * DAY - HOUR);
    expect(at('expire')).toBeLessThan(submittedAt + 5 * DAY);
    await probe.waitFor((record) => record.type === 'selfservice.app.access_request.expire.v1' && record.data.requestId === requestId, 'the expire event');
    expect(eventOf(requestId, 'remind')).toBeDefined();
  });

  test('an org without a calendar counts Monday to Friday in UTC', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const appId = await appWithSteps(org, [{ type: 'USER', id: org.user('manager'), timeout: { businessDays: 1 } }]);
    // The next Friday, 18:00 UTC.
    const now = await env.currentTimeMs();
    const today = new Date(now);
    const daysToFriday = (5 - today.getUTCDay() + 7) % 7 || 7;
    await clockTo(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + daysToFriday, 18));
    const { view } = await submit(org, appId);
    expect(Date.parse(view.stepDeadline!) - Date.parse(view.timeline[0]!.at)).toBe(3 * DAY);
  });

  test('a business-day escalation: the escalated step times out after its own business days', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'director'] });
    await commands.accepted('adminCommands', 'selfservice.business-calendar.set-requested.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      calendar: { timeZone: 'UTC', workingDays: ['MON', 'TUE', 'WED', 'THU', 'FRI'] },
    });
    const appId = await appWithSteps(org, [
      {
        type: 'USER',
        id: org.user('manager'),
        timeout: { businessDays: 1 },
        escalation: { approvers: [{ type: 'USER', id: org.user('director') }], timeout: { businessDays: 1 } },
      },
    ]);
    const now = await env.currentTimeMs();
    const today = new Date(now);
    const daysToThursday = (4 - today.getUTCDay() + 7) % 7 || 7;
    await clockTo(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + daysToThursday, 9));
    const { handle, view } = await submit(org, appId);
    const submittedAt = Date.parse(view.timeline[0]!.at);
    const ended = (await handle.result()) as RequestView;
    expect(ended.status).toBe('EXPIRED');
    const at = (name: string) => Date.parse(ended.timeline.find((entry) => entry.name === `app.access_request.${name}`)?.at ?? '');
    // Thursday 09:00 -> escalated Friday 09:00 -> expired Monday 09:00.
    expect(at('escalate') - submittedAt).toBeGreaterThanOrEqual(DAY);
    expect(at('escalate') - submittedAt).toBeLessThan(DAY + HOUR);
    expect(at('expire') - submittedAt).toBeGreaterThanOrEqual(4 * DAY);
    expect(at('expire') - submittedAt).toBeLessThan(4 * DAY + HOUR);
  });
});
