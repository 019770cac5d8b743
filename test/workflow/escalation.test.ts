import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RequestView } from '../../rules/app-request';
import { decideUpdate } from '../../workflows/app-request';
import { startTestBackend, startTimeSkippingServer, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, mailsTo, waitForMails } from '../support/mailpit';
import { recordHistory } from '../support/histories';
import { updateRefusal, waitForView } from '../support/requests';
import { uniqueId } from '../support/test-config';

const DAY = 24 * 3600 * 1000;


/**
 * Escalation instead of expiry, on the time-skipping server: a step that nobody decides goes to its
 * escalation approvers with a new timeout (reminders included) before it finally expires. Kafka,
 * PostgreSQL and the SMTP sink are real; commands go in and events come out through the contract.
 */
describe('step escalation on the time-skipping server', () => {
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


  const accessEvents = (requestId: string) =>
    probe.matching((record: SeenRecord) => record.topic === backend.topics.accessRequests && record.data.requestId === requestId);
  const eventNames = (requestId: string) => accessEvents(requestId).map((record) => (record.type ?? '').replace('selfservice.app.access_request.', '').replace(/\.v1$/, ''));

  test('a step nobody decides is escalated, reminded again, and expires only after the escalation times out', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'director'] });
    const { requestId, handle } = await requestWithSteps(org, [
      {
        type: 'USER',
        id: org.user('manager'),
        timeout: { days: 3 },
        reminder: { daysBefore: 1 },
        escalation: { approvers: [{ type: 'USER', id: org.user('director') }], timeout: { days: 4 }, reminder: { daysBefore: 2 } },
      },
    ]);
    const opened = await waitForView(handle, (view) => view.currentStep === 1);
    const start = Date.parse(opened.timeline[0]!.at);

    const view = (await handle.result()) as RequestView;
    expect(view.status).toBe('EXPIRED');
    await recordHistory(handle, 'app-request-escalated-then-expired');
    const at = (name: string) => Date.parse(view.timeline.find((entry) => entry.name === `app.access_request.${name}`)?.at ?? '');
    // Escalated at the step's 3-day timeout, expired at the escalation's own 4 days after that.
    expect(at('escalate') - start).toBeGreaterThanOrEqual(3 * DAY - 60_000);
    expect(at('escalate') - start).toBeLessThan(3 * DAY + 3600_000);
    expect(at('expire') - at('escalate')).toBeGreaterThanOrEqual(4 * DAY - 60_000);
    expect(at('expire') - at('escalate')).toBeLessThan(4 * DAY + 3600_000);

    await probe.waitFor((record) => record.type === 'selfservice.app.access_request.expire.v1' && record.data.requestId === requestId, 'the expire event');
    expect(eventNames(requestId)).toEqual(['request', 'remind', 'escalate', 'remind', 'expire']);
    const escalated = accessEvents(requestId).find((record) => record.type === 'selfservice.app.access_request.escalate.v1');
    expect(escalated?.data).toMatchObject({ step: 1, currentApproverIds: [org.user('manager'), org.user('director')] });
    expect(Date.parse(escalated?.data.stepDeadline as string) - at('escalate')).toBe(4 * DAY);

    // The escalated step's reminder goes to everyone who may decide it: the manager too.
    const managerMails = await waitForMails(org.email('manager'), 3);
    expect(managerMails.map((mail) => mail.Subject).sort()).toEqual([
      expect.stringMatching(/^Approval needed: requester requests Travel/),
      expect.stringMatching(/^Reminder: requester is waiting/),
      expect.stringMatching(/^Reminder: requester is waiting/),
    ]);
    const directorMails = await waitForMails(org.email('director'), 2);
    expect(directorMails.map((mail) => mail.Subject).sort()).toEqual([
      expect.stringMatching(/^Escalated to you: requester requests Travel/),
      expect.stringMatching(/^Reminder: requester is waiting/),
    ]);
    const escalationMail = directorMails.find((mail) => mail.Subject.startsWith('Escalated'));
    expect((await mailDetail(escalationMail!.ID)).Text).toContain('Nobody on step 1 decided in time');
    const [expired] = await waitForMails(org.email('requester'));
    expect(expired?.Subject).toMatch(/^Expired: the request for Travel/);
    // Nothing was sent twice: the escalated step's reminder has its own notice.
    expect(await mailsTo(org.email('manager'))).toHaveLength(3);
    expect(await mailsTo(org.email('director'))).toHaveLength(2);
  });

  test('after escalation the escalation group decides, and the step approver still may', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'lead-a', 'lead-b'] });
    const groupId = uniqueId('group');
    await commands.directory('group-upserted', { orgId: org.orgId, groupId, name: 'Leads', memberIds: [org.user('lead-a'), org.user('lead-b'), org.user('requester')] });
    const { requestId, handle } = await requestWithSteps(org, [
      { type: 'USER', id: org.user('manager'), timeout: { days: 2 }, escalation: { approvers: [{ type: 'GROUP', id: groupId }], timeout: { days: 5 } } },
    ]);
    await waitForView(handle, (view) => view.currentStep === 1);

    await env.sleep('50 hours');
    const escalated = await waitForView(handle, (view) => view.timeline.some((entry) => entry.name === 'app.access_request.escalate'));
    // The requester is in the group but never their own approver.
    expect([...escalated.currentApproverIds].sort()).toEqual([org.user('lead-a'), org.user('lead-b'), org.user('manager')].sort());
    expect(Date.parse(escalated.stepDeadline!) - Date.parse(escalated.timeline.at(-1)!.at)).toBe(5 * DAY);
    const refused = await handle.executeUpdate(decideUpdate, { args: [{ approverId: org.user('requester'), decision: 'APPROVE' }] }).catch(updateRefusal);
    expect(refused).toBe('REQUESTER_CANNOT_DECIDE');

    const decision = await commands.send('decisions', 'selfservice.app-request.decided.v1', {
      orgId: org.orgId,
      requestId,
      approverId: org.user('lead-b'),
      decision: 'APPROVE',
    });
    expect(decision.type).toBe('selfservice.command.accepted.v1');
    const view = (await handle.result()) as RequestView;
    expect(view.status).toBe('APPROVED');
    expect(eventNames(requestId)).toEqual(['request', 'escalate', 'approver.approve', 'grant']);
    await expect(backend.db.appAssignment.findUnique({ where: { userId_appId: { userId: org.user('requester'), appId: view.plan!.appId } } })).resolves.not.toBeNull();
    await waitForMails(org.email('lead-a'), 1);
    expect((await mailsTo(org.email('requester'))).map((mail) => mail.Subject)).not.toContainEqual(expect.stringMatching(/^Escalated/));
  });

  test('the original approver decides after the escalation: the step is theirs still', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'director'] });
    const { handle } = await requestWithSteps(org, [
      { type: 'USER', id: org.user('manager'), timeout: { days: 1 }, escalation: { approvers: [{ type: 'USER', id: org.user('director') }], timeout: { days: 1 } } },
    ]);
    await waitForView(handle, (view) => view.currentStep === 1);
    await env.sleep('25 hours');
    await waitForView(handle, (view) => view.timeline.some((entry) => entry.name === 'app.access_request.escalate'));
    await handle.executeUpdate(decideUpdate, { args: [{ approverId: org.user('manager'), decision: 'DENY', comment: 'not this quarter' }] });
    const view = (await handle.result()) as RequestView;
    expect(view.status).toBe('DENIED');
  });

  test('an escalation whose approvers all left goes to the fallback approvers, as a step does', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'director'] });
    const { handle } = await requestWithSteps(org, [
      { type: 'USER', id: org.user('manager'), timeout: { days: 1 }, escalation: { approvers: [{ type: 'USER', id: org.user('director') }], timeout: { days: 1 } } },
    ]);
    await waitForView(handle, (view) => view.currentStep === 1);
    await commands.directory('user-upserted', { orgId: org.orgId, userId: org.user('director'), email: org.email('director'), status: 'DEACTIVATED' });
    await env.sleep('25 hours');
    const escalated = await waitForView(handle, (view) => view.timeline.some((entry) => entry.name === 'app.access_request.escalate'));
    // The manager stays; the director is gone, so the org's super admin is the escalation.
    expect([...escalated.currentApproverIds].sort()).toEqual([org.user('manager'), org.superAdminId].sort());
    await waitForMails(org.email('admin'), 1);
  });
});
