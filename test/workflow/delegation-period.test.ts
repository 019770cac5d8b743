import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RequestView } from '../../rules/app-request';
import { statusQuery } from '../../workflows/app-request';
import { startTestBackend, startTimeSkippingServer, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { recordHistory } from '../support/histories';
import { TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, waitForMails } from '../support/mailpit';
import { waitForView } from '../support/requests';
import { testConfig, uniqueId } from '../support/test-config';
import { dataConverterFor } from '../../workers/payload-codec';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

/**
 * Delegation while away on the time-skipping server: a delegation's workflow sleeps until its period
 * starts and ends, and the requests waiting then are re-routed to the delegate and back. The request's
 * review judges delegations at the request's own (skipped) time. Kafka, PostgreSQL and the SMTP sink
 * are real; commands go in and events come out through the contract.
 */
describe('delegation periods on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;
  /**
   * Reads results without letting the server skip time: the environment's own client lets it skip
   * ahead while it waits on a result, and the server's clock must stay within the year of the real one
   * that delegations are checked against when they are set.
   */
  let reader: Client;

  beforeAll(async () => {
    env = await startTimeSkippingServer();
    reader = new Client({ connection: env.connection, namespace: env.namespace ?? 'default', dataConverter: dataConverterFor(testConfig()) });
    backend = await startTestBackend({ temporal: { client: env.client, connection: env.nativeConnection } });
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.accessRequests]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
    await env?.teardown();
  });

  type Handle = ReturnType<TestBackend['client']['workflow']['getHandle']>;

  async function pendingRequest(org: SeededOrg) {
    const appId = uniqueId('app');
    const label = `Travel ${appId}`;
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label, signOnMode: 'OIDC', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'USER', id: org.user('manager'), timeout: { days: 30 } }] },
    });
    const result = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
    const handle = backend.client.workflow.getHandle(result.data.workflowId as string);
    await waitForView(handle, (view) => view.currentApproverIds.length > 0);
    return { requestId: result.data.requestId as string, handle, label };
  }

  /** Sets a delegation from the manager to the deputy; times are relative to the server's (skipped) clock. */
  async function delegate(org: SeededOrg, startIn: number, endIn: number) {
    const now = await env.currentTimeMs();
    const result = await commands.accepted('userRequests', 'selfservice.delegation.set-requested.v1', {
      orgId: org.orgId,
      userId: org.user('manager'),
      delegateId: org.user('deputy'),
      start: new Date(now + startIn).toISOString(),
      end: new Date(now + endIn).toISOString(),
    });
    return { delegationId: result.data.delegationId as string, workflow: backend.client.workflow.getHandle(result.data.workflowId as string) };
  }

  /** Waits for a workflow to end, and reads its result (see `reader`). */
  async function ended<T>(workflow: Handle): Promise<T> {
    for (let attempt = 0; attempt < 300; attempt += 1) {
      if ((await workflow.describe()).status.name !== 'RUNNING') return (await reader.workflow.getHandle(workflow.workflowId).result()) as T;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${workflow.workflowId} never ended`);
  }

  const reroutes = (requestId: string) =>
    probe.matching((record: SeenRecord) => record.type === 'selfservice.app.access_request.reroute.v1' && record.data.requestId === requestId);
  const waitingOn = (org: SeededOrg, name: string) => (view: RequestView) => view.currentApproverIds.length === 1 && view.currentApproverIds[0] === org.user(name);

  test('a delegation that starts in two days: the waiting request goes to the delegate then, and back when it ends', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'deputy'] });
    const { requestId, handle, label } = await pendingRequest(org);
    const { workflow } = await delegate(org, 2 * DAY, 5 * DAY);

    // A day in, nothing has moved.
    await env.sleep('1 day');
    expect((await handle.query(statusQuery)).currentApproverIds).toEqual([org.user('manager')]);
    expect(reroutes(requestId)).toEqual([]);

    await env.sleep('25 hours');
    const delegated = await waitForView(handle, waitingOn(org, 'deputy'));
    expect(delegated.delegatedFrom).toEqual({ [org.user('deputy')]: org.user('manager') });
    const toDeputy = await probe.waitFor((record) => reroutes(requestId).includes(record), 'the reroute to the deputy');
    expect(toDeputy.data).toMatchObject({ currentApproverIds: [org.user('deputy')], delegatedFrom: { [org.user('deputy')]: org.user('manager') } });
    const rerouteAt = Date.parse(delegated.timeline.at(-1)!.at);
    const [mail] = await waitForMails(org.email('deputy'));
    expect(mail?.Subject).toBe(`Approval needed: requester requests ${label} (on behalf of manager)`);
    expect((await mailDetail(mail!.ID)).Text).toContain('You decide on behalf of manager');

    await env.sleep('3 days');
    const back = await waitForView(handle, waitingOn(org, 'manager'));
    expect(back).not.toHaveProperty('delegatedFrom');
    expect(back.status).toBe('PENDING');
    // Three days after the first re-route, when the period ended.
    expect(Date.parse(back.timeline.at(-1)!.at) - rerouteAt).toBeGreaterThanOrEqual(3 * DAY - 60_000);
    expect(Date.parse(back.timeline.at(-1)!.at) - rerouteAt).toBeLessThan(3 * DAY + HOUR);
    expect(await ended(workflow)).toEqual({ told: 2 });
    await recordHistory(workflow, 'delegation-period');
    await probe.waitFor((record) => reroutes(requestId).length === 2 && record.data.requestId === requestId, 'the reroute back');
    expect(reroutes(requestId).map((record) => record.data.currentApproverIds)).toEqual([[org.user('deputy')], [org.user('manager')]]);

    // Back from leave, the manager decides in their own name.
    await commands.accepted('decisions', 'selfservice.app-request.decided.v1', { orgId: org.orgId, requestId, approverId: org.user('manager'), decision: 'APPROVE' });
    const final = await ended<RequestView>(handle);
    expect(final.status).toBe('APPROVED');
    expect(final.timeline.find((entry) => entry.name === 'app.access_request.approver.approve')).not.toHaveProperty('onBehalfOf');
  });

  test('a delegation in force now that ends in a day: the delegate has the step until then, then the approver again', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'deputy'] });
    const { requestId, handle } = await pendingRequest(org);
    const { workflow } = await delegate(org, 0, DAY);
    await waitForView(handle, waitingOn(org, 'deputy'));

    await env.sleep('23 hours');
    expect(await handle.query(statusQuery)).toMatchObject({ currentApproverIds: [org.user('deputy')] });

    await env.sleep('2 hours');
    await waitForView(handle, waitingOn(org, 'manager'));
    expect(await ended(workflow)).toEqual({ told: 2 });
    expect(reroutes(requestId).map((record) => record.data.currentApproverIds)).toEqual([[org.user('deputy')], [org.user('manager')]]);
    expect((await waitForMails(org.email('manager'), 2)).map((mail) => mail.Subject)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^Approval needed: requester requests Travel/), expect.stringMatching(/^Approval needed: requester requests Travel/)]),
    );
  });

  test('a delegation cancelled before it starts never moves anything; its workflow ends at the start', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'deputy'] });
    const { requestId, handle } = await pendingRequest(org);
    const { delegationId, workflow } = await delegate(org, DAY, 2 * DAY);
    await commands.accepted('userRequests', 'selfservice.delegation.cancel-requested.v1', { orgId: org.orgId, userId: org.user('manager'), delegationId });

    await env.sleep('25 hours');
    // Its only activity found the delegation cancelled: nobody was told.
    expect(await ended(workflow)).toEqual({ told: 0 });
    expect((await handle.query(statusQuery)).currentApproverIds).toEqual([org.user('manager')]);
    expect(reroutes(requestId)).toEqual([]);
  });
});
