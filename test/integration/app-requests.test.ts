import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { RequestView } from '../../rules/app-request';
import { decideUpdate, statusQuery } from '../../workflows/app-request';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, mailsTo, waitForMails } from '../support/mailpit';
import { recordHistory } from '../support/histories';
import { uniqueId } from '../support/test-config';
import { createAppRequestActivities } from '../../activities/app-requests';
import { createMailer, createSmtpTransport } from '../../activities/mailer';

/**
 * Org-managed app requests end to end: commands on Kafka, one workflow per request on the real
 * Temporal server, rows in PostgreSQL, emails read back from the SMTP sink, events read back from Kafka.
 */
describe('org-managed app requests', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.accessRequests, backend.topics.dashboard]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const REQUESTED = 'selfservice.app.requested.v1';
  const DECIDED = 'selfservice.app-request.decided.v1';

  interface Fixture {
    org: SeededOrg;
    appId: string;
    label: string;
  }

  type Step = { type: 'USER' | 'GROUP'; id: string; timeout?: { days: number } };

  async function appWithConfig(org: SeededOrg, config: { approvalRequired: boolean; steps?: Step[]; notifications?: Record<string, unknown> }): Promise<Fixture> {
    const appId = uniqueId('app');
    const label = `Expenses ${appId}`;
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: {
        requestsEnabled: true,
        approvalRequired: config.approvalRequired,
        approverSteps: config.steps?.map((step) => ({ timeout: { days: 7 }, ...step })),
        notifications: config.notifications,
      },
    });
    return { org, appId, label };
  }

  async function group(org: SeededOrg, memberNames: string[]): Promise<string> {
    const groupId = uniqueId('group');
    await commands.directory('group-upserted', { orgId: org.orgId, groupId, name: `Approvers ${groupId}`, memberIds: memberNames.map(org.user) });
    return groupId;
  }

  async function request(fixture: Fixture, requester: string, comment?: string): Promise<{ requestId: string; workflowId: string }> {
    const result = await commands.accepted('userRequests', REQUESTED, {
      orgId: fixture.org.orgId,
      userId: fixture.org.user(requester),
      appId: fixture.appId,
      ...(comment ? { comment } : {}),
    });
    return { requestId: result.data.requestId as string, workflowId: result.data.workflowId as string };
  }

  function decide(fixture: Fixture, requestId: string, approver: string, decision: 'APPROVE' | 'DENY', comment?: string) {
    return commands.send('decisions', DECIDED, {
      orgId: fixture.org.orgId,
      requestId,
      approverId: fixture.org.user(approver),
      decision,
      ...(comment ? { comment } : {}),
    });
  }

  const accessEvent = (requestId: string, name: string) => (record: SeenRecord) =>
    record.topic === backend.topics.accessRequests && record.type === `selfservice.app.access_request.${name}.v1` && record.data.requestId === requestId;

  function accessEvents(requestId: string): string[] {
    return probe
      .matching((record) => record.topic === backend.topics.accessRequests && record.data.requestId === requestId)
      .map((record) => (record.type ?? '').replace('selfservice.app.access_request.', '').replace(/\.v1$/, ''));
  }

  async function finalView(workflowId: string): Promise<RequestView> {
    return (await backend.client.workflow.getHandle(workflowId).result()) as RequestView;
  }

  async function waitForStep(workflowId: string, step: number): Promise<RequestView> {
    const handle = backend.client.workflow.getHandle(workflowId);
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const view = await handle.query(statusQuery);
      if (view.currentStep === step) return view;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`request ${workflowId} never reached step ${step}`);
  }

  test('an app without approval is granted at once: assignment, events, email', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const fixture = await appWithConfig(org, { approvalRequired: false });
    const { requestId, workflowId } = await request(fixture, 'requester');

    const view = await finalView(workflowId);
    expect(view.status).toBe('APPROVED');
    // One workflow task: submission, grant and email as local activities, no activity task on the server.
    const history = JSON.parse(historyToJSON(await backend.client.workflow.getHandle(workflowId).fetchHistory())) as { events: { eventType: string }[] };
    const kinds = history.events.map((event) => event.eventType);
    expect(kinds.filter((kind) => kind === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED')).toHaveLength(1);
    expect(kinds.filter((kind) => kind === 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED')).toHaveLength(0);
    await recordHistory(backend.client.workflow.getHandle(workflowId), 'app-request-auto-grant');
    await probe.waitFor(accessEvent(requestId, 'grant'), 'the grant event');
    const assigned = await probe.waitFor(
      (record) => record.type === 'selfservice.dashboard.app-assigned.v1' && record.data.requestId === requestId,
      'the dashboard event',
    );
    expect(assigned.data).toMatchObject({ orgId: org.orgId, userId: org.user('requester'), appId: fixture.appId });
    expect(accessEvents(requestId)).toEqual(['request', 'grant']);
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('requester'), appId: fixture.appId } })).resolves.toBe(1);
    await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestId } })).resolves.toMatchObject({ status: 'APPROVED' });
    const [mail] = await waitForMails(org.email('requester'));
    expect(mail?.Subject).toBe(`Approved: ${fixture.label} is on requester's dashboard`);

    const again = await commands.send('userRequests', REQUESTED, { orgId: org.orgId, userId: org.user('requester'), appId: fixture.appId });
    expect(again.data).toMatchObject({ code: 'ALREADY_ASSIGNED' });
  });

  test('a three-step chain with a group step is approved through Kafka and through the Temporal Update', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'finance1', 'finance2', 'owner'] });
    const finance = await group(org, ['finance1', 'finance2']);
    const fixture = await appWithConfig(org, {
      approvalRequired: true,
      steps: [
        { type: 'USER', id: org.user('manager') },
        { type: 'GROUP', id: finance, timeout: { days: 30 } },
        { type: 'USER', id: org.user('owner') },
      ],
    });
    const { requestId, workflowId } = await request(fixture, 'requester', 'Need it for the quarterly close');

    await waitForStep(workflowId, 1);
    const [managerMail] = await waitForMails(org.email('manager'));
    const managerText = (await mailDetail(managerMail!.ID)).Text;
    expect(managerText).toContain('Step 1 of 3');
    expect(managerText).toContain('Need it for the quarterly close');
    expect((await decide(fixture, requestId, 'manager', 'APPROVE')).type).toBe('selfservice.command.accepted.v1');

    // Group step: every member is asked; operators can find the request by approver in the Web UI.
    await waitForStep(workflowId, 2);
    await waitForMails(org.email('finance1'));
    await waitForMails(org.email('finance2'));
    const query = `SelfServiceApproverIds = '${org.user('finance2')}' AND SelfServiceStatus = 'PENDING'`;
    let listed: string[] = [];
    for (let attempt = 0; attempt < 50 && listed.length === 0; attempt += 1) {
      listed = [];
      for await (const execution of backend.client.workflow.list({ query })) listed.push(execution.workflowId);
      if (listed.length === 0) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(listed).toEqual([workflowId]);

    const afterUpdate = await backend.client.workflow
      .getHandle(workflowId)
      .executeUpdate(decideUpdate, { args: [{ approverId: org.user('finance2'), decision: 'APPROVE', comment: 'ok from finance' }] });
    expect(afterUpdate.timeline.map((entry) => entry.name)).toContain('app.access_request.approver.approve');
    // The first member's decision completed the step: the other member is no longer asked.
    const late = await decide(fixture, requestId, 'finance1', 'DENY');
    expect(late.data).toMatchObject({ code: 'NOT_CURRENT_APPROVER' });

    await waitForStep(workflowId, 3);
    expect((await decide(fixture, requestId, 'owner', 'APPROVE')).type).toBe('selfservice.command.accepted.v1');

    const view = await finalView(workflowId);
    expect(view.status).toBe('APPROVED');
    await recordHistory(backend.client.workflow.getHandle(workflowId), 'app-request-three-step-chain');
    await probe.waitFor(accessEvent(requestId, 'grant'), 'the grant event');
    expect(accessEvents(requestId)).toEqual(['request', 'approver.approve', 'approver.approve', 'approver.approve', 'grant']);
    const history = await backend.db.appRequestEvent.findMany({ where: { requestId }, orderBy: { sequence: 'asc' } });
    expect(history.map((row) => [row.name, row.actorId])).toEqual([
      ['app.access_request.request', org.user('requester')],
      ['app.access_request.approver.approve', org.user('manager')],
      ['app.access_request.approver.approve', org.user('finance2')],
      ['app.access_request.approver.approve', org.user('owner')],
      ['app.access_request.grant', org.user('owner')],
    ]);
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('requester'), appId: fixture.appId } })).resolves.toBe(1);
    for (const name of ['manager', 'finance1', 'finance2', 'owner']) expect(await mailsTo(org.email(name))).toHaveLength(1);
    await waitForMails(org.email('requester'));
  });

  test('a denial ends the request, its comment reaches the requester, and the deny notices go where the app says', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const auditor = `audit-${org.orgId}@example.com`;
    const fixture = await appWithConfig(org, {
      approvalRequired: true,
      steps: [{ type: 'USER', id: org.user('manager') }, { type: 'USER', id: org.superAdminId }],
      notifications: { onDeny: { requester: true, approvers: true, others: [auditor] }, onApprove: { requester: false } },
    });
    const { requestId, workflowId } = await request(fixture, 'requester');
    await waitForStep(workflowId, 1);

    expect((await decide(fixture, requestId, 'manager', 'DENY', 'Use the shared license instead')).type).toBe('selfservice.command.accepted.v1');
    const view = await finalView(workflowId);
    expect(view.status).toBe('DENIED');
    await recordHistory(backend.client.workflow.getHandle(workflowId), 'app-request-denied');
    await probe.waitFor(accessEvent(requestId, 'deny'), 'the deny event');
    expect(accessEvents(requestId)).toEqual(['request', 'approver.deny', 'deny']);
    const [mail] = await waitForMails(org.email('requester'));
    expect(mail?.Subject).toBe(`Denied: the request for ${fixture.label}`);
    expect((await mailDetail(mail!.ID)).Text).toContain('Comment from the approver: Use the shared license instead');
    // The app's choices: approvers and an extra address hear of the denial too; the second step's approver was never asked.
    const [auditMail] = await waitForMails(auditor);
    expect(auditMail?.Subject).toBe(`Denied: the request for ${fixture.label}`);
    const managerMails = await waitForMails(org.email('manager'), 2);
    expect(managerMails.map((m) => m.Subject).sort()).toEqual([`Approval needed: requester requests ${fixture.label}`, `Denied: the request for ${fixture.label}`]);
    expect(await mailsTo(org.email('admin'))).toHaveLength(0);
    await expect(backend.db.appAssignment.count({ where: { appId: fixture.appId } })).resolves.toBe(0);
  });

  test('a retried notice activity sends no second email', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const fixture = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'USER', id: org.user('manager') }] });
    const { requestId, workflowId } = await request(fixture, 'requester');
    const view = await waitForStep(workflowId, 1);
    await waitForMails(org.email('manager'));

    // What Temporal does when an activity is retried after it had already sent: run it again, same input.
    const mailer = createMailer({ db: backend.db, transport: createSmtpTransport(backend.config.SMTP_URL), from: backend.config.MAIL_FROM });
    const activities = createAppRequestActivities({ db: backend.db, mailer });
    const again = await activities.notifyApprovers({ requestId, step: 1, approverIds: [org.user('manager')], notice: 'request', deadline: view.stepDeadline ?? '' });
    mailer.close();
    expect(again).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await mailsTo(org.email('manager'))).toHaveLength(1);
  });

  test('a member removed from the approver group is routed around; the org switch turned off closes the request', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'finance1', 'finance2'] });
    const finance = await group(org, ['finance1', 'finance2']);
    const fixture = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'GROUP', id: finance }] });
    const { requestId, workflowId } = await request(fixture, 'requester');
    await waitForStep(workflowId, 1);

    await commands.directory('group-upserted', { orgId: org.orgId, groupId: finance, name: 'Finance', memberIds: [org.user('finance2')] });
    await probe.waitFor(accessEvent(requestId, 'reroute'), 'the reroute event');
    expect((await backend.client.workflow.getHandle(workflowId).query(statusQuery)).currentApproverIds).toEqual([org.user('finance2')]);
    expect((await decide(fixture, requestId, 'finance1', 'APPROVE')).data).toMatchObject({ code: 'NOT_CURRENT_APPROVER' });

    await commands.accepted('adminCommands', 'selfservice.settings.update-requested.v1', { orgId: org.orgId, actorId: org.superAdminId, changes: { allowOrgManagedApps: false } });
    const view = await finalView(workflowId);
    expect(view.status).toBe('DELETED');
    expect(view.closedReason).toMatch(/no longer allows users to add org-managed app integrations/);
    await probe.waitFor(accessEvent(requestId, 'delete'), 'the delete event');
    expect(accessEvents(requestId)).toEqual(['request', 'reroute', 'delete']);
    await waitForMails(org.email('requester'));
  });

  test('decisions by an outsider, by the requester, twice, and after the end are refused and change nothing', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'outsider', 'owner'] });
    const fixture = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'USER', id: org.user('manager') }, { type: 'USER', id: org.user('owner') }] });
    const { requestId, workflowId } = await request(fixture, 'requester');
    await waitForStep(workflowId, 1);

    expect((await decide(fixture, requestId, 'outsider', 'APPROVE')).data).toMatchObject({ code: 'NOT_CURRENT_APPROVER' });
    expect((await decide(fixture, requestId, 'requester', 'APPROVE')).data).toMatchObject({ code: 'REQUESTER_CANNOT_DECIDE' });
    await expect(
      backend.client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, { args: [{ approverId: org.user('outsider'), decision: 'APPROVE' }] }),
    ).rejects.toThrow(WorkflowUpdateFailedError);
    let view = await backend.client.workflow.getHandle(workflowId).query(statusQuery);
    expect({ status: view.status, step: view.currentStep, events: view.timeline.length }).toEqual({ status: 'PENDING', step: 1, events: 1 });

    // The same decision delivered twice (same ce_id) is applied once; a second decision by the same approver is refused.
    const id = randomUUID();
    const data = { orgId: org.orgId, requestId, approverId: org.user('manager'), decision: 'APPROVE' };
    await sendCommand(backend.producer, backend.topics.decisions, DECIDED, data, { id });
    await sendCommand(backend.producer, backend.topics.decisions, DECIDED, data, { id });
    await waitForStep(workflowId, 2);
    expect((await decide(fixture, requestId, 'manager', 'APPROVE')).data).toMatchObject({ code: 'NOT_CURRENT_APPROVER' });
    expect(accessEvents(requestId).filter((name) => name === 'approver.approve')).toHaveLength(1);

    expect((await decide(fixture, requestId, 'owner', 'DENY')).type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(workflowId)).status).toBe('DENIED');
    const after = await decide(fixture, requestId, 'owner', 'APPROVE');
    expect(after.data).toMatchObject({ code: 'REQUEST_NOT_PENDING' });
    view = await backend.client.workflow.getHandle(workflowId).query(statusQuery);
    expect(view.status).toBe('DENIED');
    await expect(backend.db.appRequestEvent.count({ where: { requestId } })).resolves.toBe(4);
    expect(probe.matching((record) => record.data.commandId === id)).toHaveLength(1);
  });

  test('the requester cancels a pending request', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const fixture = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'USER', id: org.user('manager') }] });
    const { requestId, workflowId } = await request(fixture, 'requester');
    await waitForStep(workflowId, 1);

    const someoneElse = await commands.send('userRequests', 'selfservice.app-request.cancelled.v1', { orgId: org.orgId, userId: org.user('manager'), requestId });
    expect(someoneElse.data).toMatchObject({ code: 'NOT_REQUESTER' });
    const cancelled = await commands.send('userRequests', 'selfservice.app-request.cancelled.v1', { orgId: org.orgId, userId: org.user('requester'), requestId });
    expect(cancelled.type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(workflowId)).status).toBe('CANCELLED');
    await recordHistory(backend.client.workflow.getHandle(workflowId), 'app-request-cancelled');
    await probe.waitFor(accessEvent(requestId, 'cancel'), 'the cancel event');
    await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestId } })).resolves.toMatchObject({ status: 'CANCELLED' });
  });

  test('an admin overrides a pending request, another admin action deletes one, an end user may do neither', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const fixture = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'USER', id: org.user('manager') }] });
    const first = await request(fixture, 'requester');
    await waitForStep(first.workflowId, 1);
    const ADMIN_ACTION = 'selfservice.app-request.admin-action.v1';

    const byUser = await commands.send('adminCommands', ADMIN_ACTION, { orgId: org.orgId, actorId: org.user('manager'), requestId: first.requestId, action: 'OVERRIDE' });
    expect(byUser.data).toMatchObject({ code: 'NOT_AUTHORIZED' });
    const resend = await commands.send('adminCommands', ADMIN_ACTION, { orgId: org.orgId, actorId: org.superAdminId, requestId: first.requestId, action: 'RESEND' });
    expect(resend.type).toBe('selfservice.command.accepted.v1');
    await waitForMails(org.email('manager'), 2);
    const override = await commands.send('adminCommands', ADMIN_ACTION, { orgId: org.orgId, actorId: org.superAdminId, requestId: first.requestId, action: 'OVERRIDE', reason: 'urgent' });
    expect(override.type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(first.workflowId)).status).toBe('APPROVED');
    await probe.waitFor(accessEvent(first.requestId, 'grant'), 'the grant after override');
    expect(accessEvents(first.requestId)).toEqual(['request', 'override', 'grant']);
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('requester'), appId: fixture.appId } })).resolves.toBe(1);

    const otherApp = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'USER', id: org.user('manager') }] });
    const second = await request(otherApp, 'requester');
    await waitForStep(second.workflowId, 1);
    const deleted = await commands.send('adminCommands', ADMIN_ACTION, { orgId: org.orgId, actorId: org.superAdminId, requestId: second.requestId, action: 'DELETE', reason: 'app is being retired' });
    expect(deleted.type).toBe('selfservice.command.accepted.v1');
    const view = await finalView(second.workflowId);
    expect(view).toMatchObject({ status: 'DELETED', closedReason: 'app is being retired' });
    await probe.waitFor(accessEvent(second.requestId, 'delete'), 'the delete event');
    const mails = await waitForMails(org.email('requester'), 2);
    expect(mails.map((mail) => mail.Subject)).toContain(`Closed: the request for ${otherApp.label}`);
    const audit = await backend.db.auditEntry.findMany({ where: { orgId: org.orgId, action: { startsWith: 'app-request.' } }, orderBy: { id: 'asc' } });
    expect(audit.map((entry) => [entry.action, entry.outcome])).toEqual([
      ['app-request.override', 'REJECTED'],
      ['app-request.resend', 'ACCEPTED'],
      ['app-request.override', 'ACCEPTED'],
      ['app-request.delete', 'ACCEPTED'],
    ]);
  });

  test('switching approval off closes pending requests as DELETED and tells the requester', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const fixture = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'USER', id: org.user('manager') }] });
    const { requestId, workflowId } = await request(fixture, 'requester');
    await waitForStep(workflowId, 1);

    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId: fixture.appId,
      config: { requestsEnabled: true, approvalRequired: false },
    });
    const view = await finalView(workflowId);
    expect(view.status).toBe('DELETED');
    expect(view.closedReason).toMatch(/approval .* is no longer required/);
    await probe.waitFor(accessEvent(requestId, 'delete'), 'the delete event');
    const [mail] = await waitForMails(org.email('requester'));
    expect((await mailDetail(mail!.ID)).Text).toContain('is no longer required');
  });

  test('an approver deactivated mid-step is routed around: the fallback (a super admin) decides', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const fixture = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'USER', id: org.user('manager') }] });
    const { requestId, workflowId } = await request(fixture, 'requester');
    await waitForStep(workflowId, 1);

    await commands.directory('user-upserted', { orgId: org.orgId, userId: org.user('manager'), email: org.email('manager'), status: 'DEACTIVATED', adminRoles: [] });
    await probe.waitFor(accessEvent(requestId, 'reroute'), 'the reroute event');
    const view = await backend.client.workflow.getHandle(workflowId).query(statusQuery);
    expect(view.currentApproverIds).toEqual([org.superAdminId]);
    await waitForMails(org.email('admin'));
    expect((await decide(fixture, requestId, 'admin', 'APPROVE')).type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(workflowId)).status).toBe('APPROVED');
  });

  test('the same request event delivered three times starts one workflow and gets one result', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const fixture = await appWithConfig(org, { approvalRequired: true, steps: [{ type: 'USER', id: org.user('manager') }] });
    const id = randomUUID();
    const data = { orgId: org.orgId, userId: org.user('requester'), appId: fixture.appId };
    for (let copy = 0; copy < 3; copy += 1) await sendCommand(backend.producer, backend.topics.userRequests, REQUESTED, data, { id });
    const marker = await commands.send('userRequests', REQUESTED, data);
    expect(marker.data).toMatchObject({ code: 'DUPLICATE_PENDING_REQUEST' });

    expect(probe.matching((record) => record.data.commandId === id)).toHaveLength(1);
    await expect(backend.db.appRequest.count({ where: { requesterId: org.user('requester'), appId: fixture.appId } })).resolves.toBe(1);
    const requestId = (await backend.db.appRequest.findFirstOrThrow({ where: { requesterId: org.user('requester') } })).id;
    expect(marker.data.existingRequestId).toBe(requestId);
    let runs = 0;
    for await (const _ of backend.client.workflow.list({ query: `WorkflowId = 'app-request-${requestId}'` })) runs += 1;
    expect(runs).toBe(1);
    await waitForMails(org.email('manager'));
    expect(await mailsTo(org.email('manager'))).toHaveLength(1);
  });

  test('submissions that break a rule are rejected with their code', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'suspended'] });
    const fixture = await appWithConfig(org, { approvalRequired: false });
    const base = { orgId: org.orgId, userId: org.user('requester'), appId: fixture.appId };
    const code = async (data: Record<string, unknown>) => (await commands.send('userRequests', REQUESTED, data)).data.code;

    expect(await code({ ...base, appId: 'no-such-app' })).toBe('APP_NOT_FOUND');
    expect(await code({ ...base, userId: 'no-such-user' })).toBe('USER_NOT_FOUND');
    expect(await code({ ...base, comment: 'x'.repeat(1001) })).toBe('COMMENT_TOO_LONG');
    await commands.directory('user-upserted', { orgId: org.orgId, userId: org.user('suspended'), email: org.email('suspended'), status: 'SUSPENDED', adminRoles: [] });
    expect(await code({ ...base, userId: org.user('suspended') })).toBe('USER_NOT_ACTIVE');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId: fixture.appId, label: fixture.label, signOnMode: 'SAML', status: 'INACTIVE' });
    expect(await code(base)).toBe('APP_INACTIVE');
    const quiet = await appWithConfig(org, { approvalRequired: false });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId: quiet.appId,
      config: { requestsEnabled: false, approvalRequired: false },
    });
    expect(await code({ ...base, appId: quiet.appId })).toBe('APP_NOT_REQUESTABLE');
    await commands.accepted('adminCommands', 'selfservice.settings.update-requested.v1', { orgId: org.orgId, actorId: org.superAdminId, changes: { allowOrgManagedApps: false } });
    expect(await code({ ...base, appId: quiet.appId })).toBe('ORG_MANAGED_APPS_DISABLED');
    await expect(backend.db.appRequest.count({ where: { orgId: org.orgId } })).resolves.toBe(0);
  });
});
