import { randomUUID } from 'node:crypto';
import { upsertUsers } from '../../activities/directory';
import { userUpserted } from '../../events/inbound';
import type { RequestView } from '../../rules/app-request';
import { statusQuery } from '../../workflows/app-request';
import { SelfServiceRequesterId } from '../../workflows/search-attributes';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, mailsTo, waitForMails } from '../support/mailpit';
import { uniqueId } from '../support/test-config';

/**
 * Issue 12 point 9, through the public contract: a manager (the directory's `managerId`) requests an
 * app for a direct report with `onBehalfOf`. The report is the requester of record; the manager is
 * recorded as who asked. Commands on Kafka, results, access-request and dashboard events and emails
 * read back, the request's status Query on the real Temporal server.
 */
describe('requests on behalf of a direct report', () => {
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

  /** An org whose `report` (and `other`) report to `manager`; `peer` manages nobody. */
  async function team(extra: string[] = []): Promise<SeededOrg> {
    const org = await seedOrg(commands, { users: ['manager', 'report', 'other', 'peer', ...extra] });
    for (const name of ['report', 'other']) await setManager(org, name, org.user('manager'));
    return org;
  }

  function setManager(org: SeededOrg, name: string, managerId: string | null | undefined, status = 'ACTIVE') {
    return commands.directory('user-upserted', {
      orgId: org.orgId,
      userId: org.user(name),
      email: org.email(name),
      displayName: name,
      status,
      adminRoles: [],
      ...(managerId !== undefined ? { managerId } : {}),
    });
  }

  async function appWith(org: SeededOrg, steps: { type: 'USER' | 'GROUP'; id: string }[]): Promise<Fixture> {
    const appId = uniqueId('app');
    const label = `Design ${appId}`;
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: steps.length > 0, approverSteps: steps.map((step) => ({ ...step, timeout: { days: 7 } })) },
    });
    return { org, appId, label };
  }

  const requestFor = (fixture: Fixture, caller: string, onBehalfOf?: string, comment?: string) =>
    commands.send('userRequests', REQUESTED, {
      orgId: fixture.org.orgId,
      userId: fixture.org.user(caller),
      appId: fixture.appId,
      ...(onBehalfOf !== undefined ? { onBehalfOf } : {}),
      ...(comment !== undefined ? { comment } : {}),
    });

  const decide = (fixture: Fixture, requestId: string, approver: string, decision: 'APPROVE' | 'DENY') =>
    commands.send('decisions', DECIDED, { orgId: fixture.org.orgId, requestId, approverId: fixture.org.user(approver), decision });

  const accessEvent = (requestId: string, name: string) => (record: SeenRecord) =>
    record.topic === backend.topics.accessRequests && record.type === `selfservice.app.access_request.${name}.v1` && record.data.requestId === requestId;

  async function status(workflowId: string, until: (view: RequestView) => boolean = () => true): Promise<RequestView> {
    const handle = backend.client.workflow.getHandle(workflowId);
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const view = await handle.query(statusQuery);
      if (until(view)) return view;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`request ${workflowId} never reached the expected state`);
  }

  const finalView = async (workflowId: string) => (await backend.client.workflow.getHandle(workflowId).result()) as RequestView;

  test('a manager requests an app without approval for a report: the report is the requester, the app lands on their dashboard, both hear of it', async () => {
    const org = await team();
    const fixture = await appWith(org, []);

    const accepted = await requestFor(fixture, 'manager', org.user('report'), 'Starts on the design team on Monday');
    expect(accepted.type).toBe('selfservice.command.accepted.v1');
    expect(accepted.data).toMatchObject({ requesterId: org.user('report'), requestedById: org.user('manager'), approvalRequired: false });
    const requestId = String(accepted.data.requestId);
    const workflowId = String(accepted.data.workflowId);

    const view = await finalView(workflowId);
    expect(view.status).toBe('APPROVED');
    expect(view.plan).toMatchObject({ requesterId: org.user('report'), requestedById: org.user('manager') });
    expect(view.timeline[0]).toMatchObject({ name: 'app.access_request.request', actorId: org.user('manager') });

    const requested = await probe.waitFor(accessEvent(requestId, 'request'), 'the request event');
    expect(requested.data).toMatchObject({
      requesterId: org.user('report'),
      actorId: org.user('manager'),
      requestedById: org.user('manager'),
      comment: 'Starts on the design team on Monday',
    });
    const assigned = await probe.waitFor(
      (record) => record.type === 'selfservice.dashboard.app-assigned.v1' && record.data.requestId === requestId,
      'the dashboard event',
    );
    expect(assigned.data).toMatchObject({ orgId: org.orgId, userId: org.user('report'), appId: fixture.appId });
    expect(assigned.key).toBe(org.user('report'));
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('report'), appId: fixture.appId } })).resolves.toBe(1);
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('manager') } })).resolves.toBe(0);
    await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestId } })).resolves.toMatchObject({
      requesterId: org.user('report'),
      requestedById: org.user('manager'),
      status: 'APPROVED',
    });
    const history = await backend.db.appRequestEvent.findMany({ where: { requestId }, orderBy: { sequence: 'asc' } });
    expect(history.map((row) => [row.name, row.actorId])).toEqual([
      ['app.access_request.request', org.user('manager')],
      ['app.access_request.grant', null],
    ]);
    // Operators find it under the requester of record; the memo names who asked.
    const description = await backend.client.workflow.getHandle(workflowId).describe();
    expect(description.typedSearchAttributes.get(SelfServiceRequesterId)).toBe(org.user('report'));
    expect(description.memo).toMatchObject({ requesterId: org.user('report'), requestedById: org.user('manager') });

    // The outcome email reaches the report and the manager who asked; nobody is told "requested for you" for an app granted at once.
    const [toReport] = await waitForMails(org.email('report'));
    const [toManager] = await waitForMails(org.email('manager'));
    expect(toReport?.Subject).toBe(`Approved: ${fixture.label} is on report's dashboard`);
    expect(toManager?.Subject).toBe(`Approved: ${fixture.label} is on report's dashboard`);
    expect((await mailDetail(toManager!.ID)).Text).toContain(`for ${fixture.label} by report (requested by manager) was approved`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await mailsTo(org.email('report'))).toHaveLength(1);

    // The report has the app now: a second request for them is refused as for themselves.
    expect((await requestFor(fixture, 'manager', org.user('report'))).data).toMatchObject({ code: 'ALREADY_ASSIGNED' });
  });

  test('with approval: approvers see who asked, the report is never an approver, the report is told, both hear the outcome', async () => {
    const org = await team(['approver']);
    const reviewers = uniqueId('group');
    await commands.directory('group-upserted', { orgId: org.orgId, groupId: reviewers, name: 'Design reviewers', memberIds: [org.user('report'), org.user('approver')] });
    const fixture = await appWith(org, [{ type: 'GROUP', id: reviewers }]);

    const accepted = await requestFor(fixture, 'manager', org.user('report'), 'For the rebrand project');
    expect(accepted.type).toBe('selfservice.command.accepted.v1');
    const requestId = String(accepted.data.requestId);
    const workflowId = String(accepted.data.workflowId);

    const view = await status(workflowId, (candidate) => candidate.currentStep === 1);
    expect(view.currentApproverIds).toEqual([org.user('approver')]);
    expect(view.plan?.steps[0]?.approverIds).toEqual([org.user('approver')]);
    expect(view.plan?.adminIds).not.toContain(org.user('report'));
    expect(view.timeline[0]).toMatchObject({ actorId: org.user('manager') });

    const [approverMail] = await waitForMails(org.email('approver'));
    expect(approverMail?.Subject).toBe(`Approval needed: manager requests ${fixture.label} for report`);
    const approverText = (await mailDetail(approverMail!.ID)).Text;
    expect(approverText).toContain(`report <${org.email('report')}> requests access to ${fixture.label}.`);
    expect(approverText).toContain(`Requested by manager <${org.email('manager')}>, their manager, on their behalf.`);
    expect(approverText).toContain('Comment from the manager who asked: For the rebrand project');

    // The report hears that their manager asked in their name.
    const [toldReport] = await waitForMails(org.email('report'));
    expect(toldReport?.Subject).toBe(`manager requested ${fixture.label} for you`);
    expect((await mailDetail(toldReport!.ID)).Text).toContain(`manager <${org.email('manager')}>, your manager, requested access to ${fixture.label} for you.`);
    expect(await mailsTo(org.email('manager'))).toHaveLength(0);

    // The report, a member of the approver group, may not decide their own request.
    expect((await decide(fixture, requestId, 'report', 'APPROVE')).data).toMatchObject({ code: 'REQUESTER_CANNOT_DECIDE' });
    expect((await decide(fixture, requestId, 'approver', 'APPROVE')).type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(workflowId)).status).toBe('APPROVED');

    const reportMails = await waitForMails(org.email('report'), 2);
    expect(reportMails.map((mail) => mail.Subject)).toContain(`Approved: ${fixture.label} is on report's dashboard`);
    const [managerMail] = await waitForMails(org.email('manager'));
    expect(managerMail?.Subject).toBe(`Approved: ${fixture.label} is on report's dashboard`);
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('report'), appId: fixture.appId } })).resolves.toBe(1);
    await probe.waitFor(accessEvent(requestId, 'grant'), 'the grant event');
  });

  test('someone who is not the report’s manager is refused with NOT_MANAGER and audited; the report’s own checks still apply', async () => {
    const org = await team(['approver']);
    const fixture = await appWith(org, [{ type: 'USER', id: org.user('approver') }]);

    const byPeer = await requestFor(fixture, 'peer', org.user('report'));
    expect(byPeer.data).toMatchObject({
      code: 'NOT_MANAGER',
      message: `user ${org.user('peer')} is not the manager of user ${org.user('report')} in the directory; only a user's manager may request apps on their behalf`,
    });
    await expect(backend.db.auditEntry.findMany({ where: { commandId: String(byPeer.data.commandId) } })).resolves.toEqual([
      expect.objectContaining({
        actorId: org.user('peer'),
        action: 'app-request.request',
        subject: fixture.appId,
        outcome: 'REJECTED',
        code: 'NOT_MANAGER',
        after: { requesterId: org.user('report'), requestedById: org.user('peer') },
      }),
    ]);
    // A report may not ask for their manager either; nor anyone for a user without a manager.
    expect((await requestFor(fixture, 'report', org.user('manager'))).data).toMatchObject({ code: 'NOT_MANAGER' });
    expect((await requestFor(fixture, 'manager', org.user('peer'))).data).toMatchObject({ code: 'NOT_MANAGER' });
    // Unknown report, report of another org.
    expect((await requestFor(fixture, 'manager', 'no-such-user')).data).toMatchObject({
      code: 'USER_NOT_FOUND',
      message: `user no-such-user (onBehalfOf) is not a user of org ${org.orgId}`,
    });
    const elsewhere = await seedOrg(commands, { users: ['stranger'] });
    expect((await requestFor(fixture, 'manager', elsewhere.user('stranger'))).data).toMatchObject({ code: 'USER_NOT_FOUND' });

    // A manager who moved on no longer may: the directory decides at submission.
    await setManager(org, 'other', org.user('peer'));
    expect((await requestFor(fixture, 'manager', org.user('other'))).data).toMatchObject({ code: 'NOT_MANAGER' });
    expect((await requestFor(fixture, 'peer', org.user('other'))).type).toBe('selfservice.command.accepted.v1');

    // The report's own checks: a pending request of theirs (by anyone) blocks another.
    const first = await requestFor(fixture, 'manager', org.user('report'));
    expect(first.type).toBe('selfservice.command.accepted.v1');
    expect((await requestFor(fixture, 'report')).data).toMatchObject({ code: 'DUPLICATE_PENDING_REQUEST', existingRequestId: first.data.requestId });
    expect((await requestFor(fixture, 'manager', org.user('report'))).data).toMatchObject({ code: 'DUPLICATE_PENDING_REQUEST', existingRequestId: first.data.requestId });

    // A suspended report cannot get apps; a suspended manager cannot ask.
    await setManager(org, 'report', undefined, 'SUSPENDED');
    const suspendedReport = await requestFor(await appWith(org, []), 'manager', org.user('report'));
    expect(suspendedReport.data).toMatchObject({ code: 'USER_NOT_ACTIVE', message: expect.stringContaining(`user ${org.user('report')} (onBehalfOf) is SUSPENDED`) });
    await setManager(org, 'manager', undefined, 'SUSPENDED');
    const suspendedManager = await requestFor(await appWith(org, []), 'manager', org.user('other'));
    expect(suspendedManager.data).toMatchObject({ code: 'USER_NOT_ACTIVE', message: expect.stringContaining(`user ${org.user('manager')} (userId, who asks) is SUSPENDED`) });
    await expect(backend.db.appRequest.count({ where: { orgId: org.orgId, requestedById: org.user('manager') } })).resolves.toBe(1);
  });

  test('a manager requesting for themselves works as before, with or without naming themselves', async () => {
    const org = await team(['approver']);
    const fixture = await appWith(org, [{ type: 'USER', id: org.user('approver') }]);
    const other = await appWith(org, []);

    const own = await requestFor(fixture, 'manager');
    expect(own.type).toBe('selfservice.command.accepted.v1');
    expect(own.data).not.toHaveProperty('requestedById');
    const view = await status(String(own.data.workflowId), (candidate) => candidate.currentStep === 1);
    expect(view.plan?.requesterId).toBe(org.user('manager'));
    expect(view.plan).not.toHaveProperty('requestedById');
    expect(view.timeline[0]).toMatchObject({ actorId: org.user('manager') });
    const requested = await probe.waitFor(accessEvent(String(own.data.requestId), 'request'), 'the request event');
    expect(requested.data).not.toHaveProperty('requestedById');
    const [approverMail] = await waitForMails(org.email('approver'));
    expect(approverMail?.Subject).toBe(`Approval needed: manager requests ${fixture.label}`);
    expect((await mailDetail(approverMail!.ID)).Text).not.toContain('Requested by');

    const self = await requestFor(other, 'manager', org.user('manager'));
    expect(self.type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(String(self.data.workflowId))).plan).not.toHaveProperty('requestedById');
    await expect(backend.db.appAssignment.count({ where: { userId: org.user('manager'), appId: other.appId } })).resolves.toBe(1);
  });

  test('the report and the manager who asked may cancel; the directory sync keeps a manager unless told otherwise', async () => {
    const org = await team(['approver']);
    const fixture = await appWith(org, [{ type: 'USER', id: org.user('approver') }]);
    const asked = await requestFor(fixture, 'manager', org.user('report'));
    const workflowId = String(asked.data.workflowId);
    await status(workflowId, (view) => view.currentStep === 1);
    const CANCELLED = 'selfservice.app-request.cancelled.v1';
    expect((await commands.send('userRequests', CANCELLED, { orgId: org.orgId, userId: org.user('peer'), requestId: asked.data.requestId })).data).toMatchObject({
      code: 'NOT_REQUESTER',
    });
    expect((await commands.send('userRequests', CANCELLED, { orgId: org.orgId, userId: org.user('manager'), requestId: asked.data.requestId })).type).toBe(
      'selfservice.command.accepted.v1',
    );
    const view = await finalView(workflowId);
    expect(view.status).toBe('CANCELLED');
    expect(view.timeline.at(-1)).toMatchObject({ name: 'app.access_request.cancel', actorId: org.user('manager') });
    // Cancelled in someone's name: the report is told, and so is the manager who asked.
    for (const [name, count] of [['report', 2], ['manager', 1]] as const) {
      // The report also had the "requested for you" email.
      const mails = await waitForMails(org.email(name), count);
      expect(mails.map((mail) => mail.Subject)).toContainEqual(expect.stringMatching(/^Cancelled: the request for /));
    }

    // A sync without managerId keeps the stored manager; null clears it; several at once (one statement) alike.
    const managerOf = async (name: string) => (await backend.db.user.findUniqueOrThrow({ where: { id: org.user(name) } })).managerId;
    await setManager(org, 'peer', org.user('manager'));
    const upsert = (name: string, managerId?: string | null) => ({
      orgId: org.orgId,
      userId: org.user(name),
      email: org.email(name),
      displayName: name,
      status: 'ACTIVE',
      adminRoles: [],
      ...(managerId !== undefined ? { managerId } : {}),
    });
    const batch = [upsert('report'), upsert('other', null), upsert('peer', org.user('approver'))];
    const ids = await Promise.all(batch.map((data) => sendCommand(backend.producer, backend.topics.directory, 'selfservice.directory.user-upserted.v1', data, { id: randomUUID() })));
    for (const id of ids) expect((await probe.waitFor(resultFor(id), `the result of ${id}`)).type).toBe('selfservice.command.accepted.v1');
    expect([await managerOf('report'), await managerOf('other'), await managerOf('peer')]).toEqual([org.user('manager'), null, org.user('approver')]);
    // The run-of-users statement itself (what the ingress uses for consecutive user upserts).
    const run = [upsert('report'), upsert('other', org.user('manager')), upsert('peer', null)].map((data) => ({
      commandId: randomUUID(),
      type: 'selfservice.directory.user-upserted.v1' as const,
      source: 'urn:test',
      receivedAt: new Date().toISOString(),
      data: userUpserted.parse(data),
    }));
    const outcomes = await backend.db.$transaction((tx) => upsertUsers(tx, run));
    expect(outcomes).toHaveLength(3);
    expect([await managerOf('report'), await managerOf('other'), await managerOf('peer')]).toEqual([org.user('manager'), org.user('manager'), null]);
    await setManager(org, 'report', undefined);
    expect(await managerOf('report')).toBe(org.user('manager'));
    await setManager(org, 'report', null);
    expect(await managerOf('report')).toBeNull();
  });
});
