import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { RequestView } from '../../rules/app-request';
import { statusQuery } from '../../workflows/app-request';
import { startTestBackend, startTimeSkippingServer, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, waitForMails } from '../support/mailpit';
import { recordHistory } from '../support/histories';
import { waitForView } from '../support/requests';
import { uniqueId } from '../support/test-config';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

/**
 * Time-bound access on the time-skipping server: a granted request's workflow runs until the access
 * ends, reminds the user before, takes extensions (auto-granted, or through the approval chain again)
 * and an admin's revocation, and takes the app off the dashboard. Kafka, PostgreSQL and the SMTP sink
 * are real; commands go in and events come out through the contract.
 */
describe('time-bound access on the time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    env = await startTimeSkippingServer();
    backend = await startTestBackend({ temporal: { client: env.client, connection: env.nativeConnection } });
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.accessRequests, backend.topics.dashboard]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
    await env?.teardown();
  });

  async function appWith(org: SeededOrg, config: Record<string, unknown>): Promise<string> {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Vault ${appId}`, signOnMode: 'OIDC', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: false, ...config },
    });
    return appId;
  }

  async function request(org: SeededOrg, appId: string, extra: Record<string, unknown> = {}) {
    const result = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId, ...extra });
    return { requestId: result.data.requestId as string, handle: backend.client.workflow.getHandle(result.data.workflowId as string) };
  }


  const accessEvents = (requestId: string) =>
    probe.matching((record: SeenRecord) => record.topic === backend.topics.accessRequests && record.data.requestId === requestId);
  const eventNames = (requestId: string) => accessEvents(requestId).map((record) => (record.type ?? '').replace('selfservice.app.access_request.', '').replace(/\.v1$/, ''));
  const dashboardEvents = (requestId: string) => probe.matching((record: SeenRecord) => record.topic === backend.topics.dashboard && record.data.requestId === requestId);
  const assignment = (org: SeededOrg, appId: string) => backend.db.appAssignment.findUnique({ where: { userId_appId: { userId: org.user('requester'), appId } } });

  test('a 30-day grant reminds the user 3 days before, then takes the app off the dashboard', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const appId = await appWith(org, { timeBoundAccess: { maxDays: 30, reminderDaysBefore: 3 } });
    const { requestId, handle } = await request(org, appId);
    const granted = await waitForView(handle, (view) => view.access?.status === 'ACTIVE');
    const grantedAt = Date.parse(granted.timeline.at(-1)!.at);
    expect(Date.parse(granted.access!.endsAt) - grantedAt).toBe(30 * DAY);
    expect(granted.status).toBe('APPROVED');
    const assigned = await probe.waitFor((record) => record.type === 'selfservice.dashboard.app-assigned.v1' && record.data.requestId === requestId, 'the app-assigned event');
    expect(assigned.data).toMatchObject({ grantId: requestId, accessEndsAt: granted.access!.endsAt });
    const [approved] = await waitForMails(org.email('requester'));
    expect(approved?.Subject).toMatch(/^Approved: Vault .* is on requester's dashboard until \d{4}-\d\d-\d\d$/);

    const ended = (await handle.result()) as RequestView;
    expect(ended.access).toMatchObject({ status: 'ENDED', endsAt: granted.access!.endsAt, extensions: 0 });
    await recordHistory(handle, 'app-request-time-bound-ended');
    const at = (name: string) => Date.parse(ended.timeline.find((entry) => entry.name === `app.access_request.${name}`)?.at ?? '');
    expect(at('access.remind') - grantedAt).toBeGreaterThanOrEqual(27 * DAY);
    expect(at('access.remind') - grantedAt).toBeLessThan(27 * DAY + HOUR);
    expect(at('access.end') - grantedAt).toBeGreaterThanOrEqual(30 * DAY);
    expect(at('access.end') - grantedAt).toBeLessThan(30 * DAY + HOUR);

    await probe.waitFor((record) => record.type === 'selfservice.dashboard.app-unassigned.v1' && record.data.requestId === requestId, 'the app-unassigned event');
    expect(eventNames(requestId)).toEqual(['request', 'grant', 'access.remind', 'access.end']);
    expect(dashboardEvents(requestId).map((record) => [record.type, record.data.grantId, record.data.reason])).toEqual([
      ['selfservice.dashboard.app-assigned.v1', requestId, undefined],
      ['selfservice.dashboard.app-unassigned.v1', requestId, 'ACCESS_ENDED'],
    ]);
    await expect(assignment(org, appId)).resolves.toBeNull();
    const audit = await backend.db.appRequestEvent.findMany({ where: { requestId }, orderBy: { sequence: 'asc' } });
    expect(audit.map((row) => row.name)).toEqual(['app.access_request.request', 'app.access_request.grant', 'app.access_request.access.remind', 'app.access_request.access.end']);
    const mails = await waitForMails(org.email('requester'), 3);
    expect(mails.map((mail) => mail.Subject).sort()).toEqual([
      expect.stringMatching(/^Approved: Vault/),
      expect.stringMatching(/^Ended: your access to Vault/),
      expect.stringMatching(/^Ending soon: your access to Vault/),
    ]);
  });

  test('the requester picks a shorter duration; an extension (auto-granted like the app) makes it run longer', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const appId = await appWith(org, { timeBoundAccess: { maxDays: 20, requesterPicksDuration: true } });
    const { requestId, handle } = await request(org, appId, { accessDays: 5 });
    const granted = await waitForView(handle, (view) => view.access?.status === 'ACTIVE');
    const grantedAt = Date.parse(granted.timeline.at(-1)!.at);
    expect(Date.parse(granted.access!.endsAt) - grantedAt).toBe(5 * DAY);

    await env.sleep('4 days');
    const extension = await request(org, appId, { extendsRequestId: requestId, accessDays: 10 });
    const extended = await waitForView(handle, (view) => (view.access?.extensions ?? 0) === 1);
    const extendedAt = Date.parse(extended.timeline.at(-1)!.at);
    expect(Date.parse(extended.access!.endsAt) - extendedAt).toBe(10 * DAY);
    const extensionView = (await extension.handle.result()) as RequestView;
    expect(extensionView.status).toBe('APPROVED');
    expect(extensionView.plan).toMatchObject({ extendsRequestId: requestId, access: { days: 10 } });

    const ended = (await handle.result()) as RequestView;
    expect(ended.access).toMatchObject({ status: 'ENDED', extensions: 1 });
    await recordHistory(handle, 'app-request-time-bound-extended');
    await recordHistory(extension.handle, 'app-request-extension-granted');
    const endAt = Date.parse(ended.timeline.find((entry) => entry.name === 'app.access_request.access.end')!.at);
    expect(endAt - grantedAt).toBeGreaterThanOrEqual(14 * DAY);
    expect(endAt - grantedAt).toBeLessThan(14 * DAY + HOUR);
    expect(eventNames(requestId)).toEqual(['request', 'grant', 'access.extend', 'access.end']);
    const extend = accessEvents(requestId).find((record) => record.type === 'selfservice.app.access_request.access.extend.v1');
    expect(extend?.data).toMatchObject({ extensionRequestId: extension.requestId, accessEndsAt: extended.access!.endsAt });
    // The extension put nothing on the dashboard: only the grant's own assignment and its end.
    expect(dashboardEvents(extension.requestId)).toEqual([]);
    expect(eventNames(extension.requestId)).toEqual(['request', 'grant']);
    const mails = await waitForMails(org.email('requester'), 3);
    expect(mails.map((mail) => mail.Subject)).toContainEqual(expect.stringMatching(/^Extended: requester's access to Vault/));
  });

  test("an extension of an app that needs approval goes through the app's approvers again", async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager'] });
    const appId = await appWith(org, {
      approvalRequired: true,
      approverSteps: [{ type: 'USER', id: org.user('manager'), timeout: { days: 7 } }],
      timeBoundAccess: { maxDays: 10 },
    });
    const { requestId, handle } = await request(org, appId);
    await waitForView(handle, (view) => view.currentStep === 1);
    const decide = (id: string) =>
      commands.send('decisions', 'selfservice.app-request.decided.v1', { orgId: org.orgId, requestId: id, approverId: org.user('manager'), decision: 'APPROVE' });
    expect((await decide(requestId)).type).toBe('selfservice.command.accepted.v1');
    const granted = await waitForView(handle, (view) => view.access?.status === 'ACTIVE');

    await env.sleep('8 days');
    const extension = await request(org, appId, { extendsRequestId: requestId });
    const pending = await waitForView(extension.handle, (view) => view.currentStep === 1);
    expect(pending.currentApproverIds).toEqual([org.user('manager')]);
    expect((await handle.query(statusQuery)).access?.extensions).toBe(0);
    expect((await decide(extension.requestId)).type).toBe('selfservice.command.accepted.v1');
    const extended = await waitForView(handle, (view) => (view.access?.extensions ?? 0) === 1);
    expect(Date.parse(extended.access!.endsAt)).toBeGreaterThan(Date.parse(granted.access!.endsAt));
    expect(eventNames(extension.requestId)).toEqual(['request', 'approver.approve', 'grant']);
  });

  test('an admin revokes a grant early: the app leaves the dashboard at once, the user is told why', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const appId = await appWith(org, { timeBoundAccess: { maxDays: 90 } });
    const { requestId, handle } = await request(org, appId);
    await waitForView(handle, (view) => view.access?.status === 'ACTIVE');
    await env.sleep('2 days');
    const revoked = await commands.send('adminCommands', 'selfservice.app-request.admin-action.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      requestId,
      action: 'REVOKE',
      reason: 'left the project',
    });
    expect(revoked.type).toBe('selfservice.command.accepted.v1');
    expect(revoked.data).toMatchObject({ action: 'REVOKE', access: 'REVOKED' });
    const ended = (await handle.result()) as RequestView;
    expect(ended.access?.status).toBe('REVOKED');
    expect(ended.timeline.at(-1)).toMatchObject({ name: 'app.access_request.access.revoke', actorId: org.superAdminId });
    await probe.waitFor((record) => record.type === 'selfservice.dashboard.app-unassigned.v1' && record.data.requestId === requestId, 'the app-unassigned event');
    expect(dashboardEvents(requestId).at(-1)?.data).toMatchObject({ grantId: requestId, reason: 'ACCESS_REVOKED' });
    await expect(assignment(org, appId)).resolves.toBeNull();
    const mails = await waitForMails(org.email('requester'), 2);
    const revokedMail = mails.find((mail) => mail.Subject.startsWith('Revoked'));
    expect((await mailDetail(revokedMail!.ID)).Text).toContain('Reason: left the project');
    // Once revoked, there is nothing left to revoke (its workflow has closed) or extend.
    const again = await commands.send('adminCommands', 'selfservice.app-request.admin-action.v1', { orgId: org.orgId, actorId: org.superAdminId, requestId, action: 'REVOKE' });
    expect(again.data.code).toBe('REQUEST_NOT_PENDING');
    const late = await commands.send('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId, extendsRequestId: requestId });
    expect(late.data).toMatchObject({ code: 'NO_ACTIVE_GRANT' });
  });

  test("an app's duration change applies to new grants only", async () => {
    const org = await seedOrg(commands, { users: ['requester', 'other'] });
    const appId = await appWith(org, { timeBoundAccess: { maxDays: 30 } });
    const { handle } = await request(org, appId);
    const granted = await waitForView(handle, (view) => view.access?.status === 'ACTIVE');
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: false, timeBoundAccess: { maxDays: 3 } },
    });
    const other = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('other'), appId });
    const otherView = await waitForView(backend.client.workflow.getHandle(other.data.workflowId as string), (view) => view.access?.status === 'ACTIVE');
    expect(Date.parse(otherView.access!.endsAt) - Date.parse(otherView.timeline.at(-1)!.at)).toBe(3 * DAY);
    await env.sleep('5 days');
    const still = await handle.query(statusQuery);
    expect(still.access).toMatchObject({ status: 'ACTIVE', endsAt: granted.access!.endsAt });
    await expect(assignment(org, appId)).resolves.not.toBeNull();
  });
});
