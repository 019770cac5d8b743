import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RequestView } from '../../rules/app-request';
import { decideUpdate, statusQuery } from '../../workflows/app-request';
import { startTestBackend, startTimeSkippingServer, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, mailsTo, waitForMails } from '../support/mailpit';
import { recordHistory } from '../support/histories';
import { uniqueId } from '../support/test-config';

/**
 * Timeouts, reminders and multi-week chains on Temporal's time-skipping test server: weeks pass in
 * seconds. Everything else is real: Kafka, PostgreSQL, the SMTP sink, the activities.
 */
describe('app request timing on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    env = await startTimeSkippingServer();
    backend = await startTestBackend({ temporal: { client: env.client, connection: env.nativeConnection } });
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.accessRequests]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
    await env?.teardown();
  });

  async function requestWithSteps(org: SeededOrg, steps: Record<string, unknown>[]) {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Travel ${appId}`, signOnMode: 'OIDC', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: true, approverSteps: steps },
    });
    const result = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
    return { requestId: result.data.requestId as string, handle: backend.client.workflow.getHandle(result.data.workflowId as string) };
  }

  async function atStep(handle: ReturnType<TestBackend['client']['workflow']['getHandle']>, step: number): Promise<RequestView> {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const view = await handle.query(statusQuery);
      if (view.currentStep === step) return view;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`never reached step ${step}`);
  }

  const eventNames = (requestId: string) =>
    probe
      .matching((record: SeenRecord) => record.topic === backend.topics.accessRequests && record.data.requestId === requestId)
      .map((record) => (record.type ?? '').replace('selfservice.app.access_request.', '').replace(/\.v1$/, ''));

  test('a step that nobody decides expires the request after its timeout', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const { requestId, handle } = await requestWithSteps(org, [{ type: 'USER', id: org.user('manager'), timeout: { days: 7 } }]);
    await atStep(handle, 1);
    const before = await env.currentTimeMs();

    const view = (await handle.result()) as RequestView;
    expect(view.status).toBe('EXPIRED');
    await recordHistory(handle, 'app-request-expired');
    expect((await env.currentTimeMs()) - before).toBeGreaterThanOrEqual(7 * 24 * 3600 * 1000 - 60_000);
    await probe.waitFor((record) => record.type === 'selfservice.app.access_request.expire.v1' && record.data.requestId === requestId, 'the expire event');
    expect(eventNames(requestId)).toEqual(['request', 'expire']);
    const [mail] = await waitForMails(org.email('requester'));
    expect(mail?.Subject).toMatch(/^Expired: the request for Travel/);
    await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestId } })).resolves.toMatchObject({ status: 'EXPIRED' });
  });

  test('with SMTP refusing every connection, the step still expires on time: its timer does not wait for the emails', async () => {
    const down = await startTestBackend({ temporal: { client: env.client, connection: env.nativeConnection }, overrides: { SMTP_URL: 'smtp://127.0.0.1:9' } });
    const downProbe = await TopicProbe.start(down.kafka, [down.topics.commandResults, down.topics.accessRequests]);
    try {
      const downCommands = new CommandClient(down, downProbe);
      const org = await seedOrg(downCommands, { users: ['requester', 'manager'] });
      const appId = uniqueId('app');
      await downCommands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Travel ${appId}`, signOnMode: 'OIDC', status: 'ACTIVE' });
      await downCommands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
        orgId: org.orgId,
        actorId: org.superAdminId,
        appId,
        config: { requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'USER', id: org.user('manager'), timeout: { days: 7 } }] },
      });
      const submitted = await downCommands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
      const requestId = submitted.data.requestId as string;
      const handle = down.client.workflow.getHandle(submitted.data.workflowId as string);

      // The workflow ends once its emails have given up (a day of retries, skipped here).
      const view = (await handle.result()) as RequestView;
      expect(view.status).toBe('EXPIRED');
      await downProbe.waitFor((record) => record.type === 'selfservice.app.access_request.expire.v1' && record.data.requestId === requestId, 'the expire event');
      // Both times are the workflow's clock: the step's timer ran its 7 days, not 7 days plus the email retries.
      const at = (name: string) => Date.parse(view.timeline.find((entry) => entry.name === `app.access_request.${name}`)?.at ?? '');
      const waited = at('expire') - at('request');
      expect(waited).toBeGreaterThanOrEqual(7 * 24 * 3600 * 1000 - 60_000);
      expect(waited).toBeLessThan(7 * 24 * 3600 * 1000 + 3600 * 1000);
      await expect(mailsTo(org.email('manager'))).resolves.toHaveLength(0);
    } finally {
      await downProbe.stop();
      await down.stop();
    }
  });

  test('approvers are reminded before the step times out, then the decision still counts', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const { requestId, handle } = await requestWithSteps(org, [
      { type: 'USER', id: org.user('manager'), timeout: { days: 7 }, reminder: { daysBefore: 2 } },
    ]);
    await atStep(handle, 1);
    await waitForMails(org.email('manager'), 1);

    await env.sleep('121 hours');
    await probe.waitFor((record) => record.type === 'selfservice.app.access_request.remind.v1' && record.data.requestId === requestId, 'the remind event');
    const mails = await waitForMails(org.email('manager'), 2);
    expect(mails.map((mail) => mail.Subject).sort()).toEqual([
      expect.stringMatching(/^Approval needed: requester requests Travel/),
      expect.stringMatching(/^Reminder: requester is waiting for your approval of Travel/),
    ]);

    await handle.executeUpdate(decideUpdate, { args: [{ approverId: org.user('manager'), decision: 'APPROVE' }] });
    const view = (await handle.result()) as RequestView;
    expect(view.status).toBe('APPROVED');
    await recordHistory(handle, 'app-request-reminded-then-approved');
    expect(eventNames(requestId)).toEqual(['request', 'remind', 'approver.approve', 'grant']);
  });

  test('a three-step chain of 30-day steps decided over ten weeks is granted', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'first', 'second', 'third'] });
    const steps = ['first', 'second', 'third'].map((name) => ({ type: 'USER', id: org.user(name), timeout: { days: 30 } }));
    const { requestId, handle } = await requestWithSteps(org, steps);
    const start = await env.currentTimeMs();

    for (const [index, name] of ['first', 'second', 'third'].entries()) {
      await atStep(handle, index + 1);
      await env.sleep('25 days');
      await handle.executeUpdate(decideUpdate, { args: [{ approverId: org.user(name), decision: 'APPROVE' }] });
    }
    const view = (await handle.result()) as RequestView;
    expect(view.status).toBe('APPROVED');
    expect((await env.currentTimeMs()) - start).toBeGreaterThanOrEqual(75 * 24 * 3600 * 1000);
    expect(eventNames(requestId)).toEqual(['request', 'approver.approve', 'approver.approve', 'approver.approve', 'grant']);
    const [mail] = await waitForMails(org.email('requester'));
    expect((await mailDetail(mail!.ID)).Text).toContain('now on requester');
    expect(await mailsTo(org.email('third'))).toHaveLength(1);
  });
});
