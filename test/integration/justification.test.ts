import { ApplicationFailure } from '@temporalio/common';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { RequestView } from '../../rules/app-request';
import { decideUpdate, statusQuery } from '../../workflows/app-request';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, waitForMails } from '../support/mailpit';
import { uniqueId } from '../support/test-config';

/**
 * Issue 12 point 4, through the public contract: an app may require a justification of its requesters
 * (the request's comment) and a comment of approvers who deny. Commands on Kafka, results, access-request
 * events and emails read back, the request's status Query on the real Temporal server.
 */
describe('justification and deny comments', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.accessRequests, backend.topics.settings]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const REQUESTED = 'selfservice.app.requested.v1';
  const DECIDED = 'selfservice.app-request.decided.v1';
  const CONFIGURE = 'selfservice.app.self-service-configured.v1';

  interface Fixture {
    org: SeededOrg;
    appId: string;
    label: string;
  }

  type Switches = { justificationRequired?: boolean; denyCommentRequired?: boolean };

  function configOf(org: SeededOrg, approvers: string[], switches: Switches) {
    return {
      requestsEnabled: true,
      approvalRequired: approvers.length > 0,
      ...(approvers.length > 0 ? { approverSteps: approvers.map((id) => ({ type: 'USER', id, timeout: { days: 7 } })) } : {}),
      ...switches,
    };
  }

  async function appWith(org: SeededOrg, approvers: string[], switches: Switches): Promise<Fixture> {
    const appId = uniqueId('app');
    const label = `Payroll ${appId}`;
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', CONFIGURE, { orgId: org.orgId, actorId: org.superAdminId, appId, config: configOf(org, approvers, switches) });
    return { org, appId, label };
  }

  const request = (fixture: Fixture, requester: string, comment?: string) =>
    commands.send('userRequests', REQUESTED, { orgId: fixture.org.orgId, userId: fixture.org.user(requester), appId: fixture.appId, ...(comment !== undefined ? { comment } : {}) });

  const decide = (fixture: Fixture, requestId: string, approver: string, decision: 'APPROVE' | 'DENY', comment?: string) =>
    commands.send('decisions', DECIDED, { orgId: fixture.org.orgId, requestId, approverId: fixture.org.user(approver), decision, ...(comment !== undefined ? { comment } : {}) });

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

  test('a request without the justification the app requires is refused with JUSTIFICATION_REQUIRED, audited, and opens nothing', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'approver'] });
    const fixture = await appWith(org, [org.user('approver')], { justificationRequired: true });

    for (const comment of [undefined, '  \n ']) {
      const refused = await request(fixture, 'requester', comment);
      expect(refused.type).toBe('selfservice.command.rejected.v1');
      expect(refused.data).toMatchObject({
        code: 'JUSTIFICATION_REQUIRED',
        message: `app ${fixture.appId} (${fixture.label}) requires a justification: give the reason for the request in comment (1 to 1000 characters)`,
      });
      const audit = await backend.db.auditEntry.findMany({ where: { commandId: String(refused.data.commandId) } });
      expect(audit).toEqual([
        expect.objectContaining({
          orgId: org.orgId,
          actorId: org.user('requester'),
          action: 'app-request.request',
          subject: fixture.appId,
          outcome: 'REJECTED',
          code: 'JUSTIFICATION_REQUIRED',
          after: { requesterId: org.user('requester') },
        }),
      ]);
    }
    await expect(backend.db.appRequest.count({ where: { orgId: org.orgId } })).resolves.toBe(0);
    expect(probe.matching((record) => record.topic === backend.topics.accessRequests && record.data.orgId === org.orgId)).toHaveLength(0);

    // An app that requires none takes a request without one, as before.
    const relaxed = await appWith(org, [], {});
    expect((await request(relaxed, 'requester')).type).toBe('selfservice.command.accepted.v1');
  });

  test('a justification given reaches every approver (each step’s email), the status Query’s plan and the request event', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'first', 'second'] });
    const fixture = await appWith(org, [org.user('first'), org.user('second')], { justificationRequired: true });
    const justification = 'Payroll corrections for the December close, ticket FIN-4711';

    const accepted = await request(fixture, 'requester', justification);
    expect(accepted.type).toBe('selfservice.command.accepted.v1');
    const requestId = String(accepted.data.requestId);
    const workflowId = String(accepted.data.workflowId);

    const view = await status(workflowId, (candidate) => candidate.currentStep === 1);
    expect(view.plan).toMatchObject({ comment: justification, justificationRequired: true });
    expect(view.plan).not.toHaveProperty('denyCommentRequired');
    expect(view.timeline[0]).toMatchObject({ name: 'app.access_request.request', actorId: org.user('requester'), comment: justification });

    const requested = await probe.waitFor(accessEvent(requestId, 'request'), 'the request event');
    expect(requested.data).toMatchObject({ requesterId: org.user('requester'), actorId: org.user('requester'), comment: justification });
    expect(requested.data).not.toHaveProperty('requestedById');

    const [firstMail] = await waitForMails(org.email('first'));
    expect((await mailDetail(firstMail!.ID)).Text).toContain(`Justification from the requester: ${justification}`);
    expect((await decide(fixture, requestId, 'first', 'APPROVE')).type).toBe('selfservice.command.accepted.v1');

    const [secondMail] = await waitForMails(org.email('second'));
    expect((await mailDetail(secondMail!.ID)).Text).toContain(`Justification from the requester: ${justification}`);
    expect((await decide(fixture, requestId, 'second', 'APPROVE')).type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(workflowId)).status).toBe('APPROVED');
  });

  test('a denial without the comment the app requires is refused (DENY_COMMENT_REQUIRED) and changes nothing; with one it denies', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'approver'] });
    const fixture = await appWith(org, [org.user('approver')], { denyCommentRequired: true });
    const accepted = await request(fixture, 'requester');
    const requestId = String(accepted.data.requestId);
    const workflowId = String(accepted.data.workflowId);
    await status(workflowId, (view) => view.currentStep === 1);

    // Through Kafka: a rejected result with the code; blanks are no comment.
    for (const comment of [undefined, '   ']) {
      const refused = await decide(fixture, requestId, 'approver', 'DENY', comment);
      expect(refused.type).toBe('selfservice.command.rejected.v1');
      expect(refused.data).toMatchObject({
        code: 'DENY_COMMENT_REQUIRED',
        message: `${fixture.label} requires a comment to deny: give the reason for denying request ${requestId} in comment`,
      });
    }
    // Through the Temporal Update: its validator refuses with the same code.
    const direct = await backend.client.workflow
      .getHandle(workflowId)
      .executeUpdate(decideUpdate, { args: [{ approverId: org.user('approver'), decision: 'DENY' }] })
      .catch((error: unknown) => error);
    expect(direct).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(((direct as WorkflowUpdateFailedError).cause as ApplicationFailure).type).toBe('DENY_COMMENT_REQUIRED');

    // Still pending at step 1, nothing recorded, the approver still the one to decide.
    const still = await status(workflowId);
    expect({ status: still.status, step: still.currentStep, approvers: still.currentApproverIds, entries: still.timeline.length }).toEqual({
      status: 'PENDING',
      step: 1,
      approvers: [org.user('approver')],
      entries: 1,
    });
    expect(still.plan).toMatchObject({ denyCommentRequired: true });
    await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestId } })).resolves.toMatchObject({ status: 'PENDING' });
    await expect(backend.db.appRequestEvent.count({ where: { requestId } })).resolves.toBe(1);

    const denied = await decide(fixture, requestId, 'approver', 'DENY', 'Payroll access is for the finance team only');
    expect(denied.type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(workflowId)).status).toBe('DENIED');
    const denyEvent = await probe.waitFor(accessEvent(requestId, 'approver.deny'), 'the approver deny event');
    expect(denyEvent.data).toMatchObject({ actorId: org.user('approver'), comment: 'Payroll access is for the finance team only' });
    const [mail] = await waitForMails(org.email('requester'));
    expect(mail?.Subject).toBe(`Denied: the request for ${fixture.label}`);
    expect((await mailDetail(mail!.ID)).Text).toContain('Comment from the approver: Payroll access is for the finance team only');
  });

  test('an approval needs no comment, and the switches apply to requests made after the change (a pending one keeps its own rules)', async () => {
    const org = await seedOrg(commands, { users: ['early', 'late', 'approver'] });
    const fixture = await appWith(org, [org.user('approver')], {});
    const before = await request(fixture, 'early');
    const earlyId = String(before.data.requestId);
    await status(String(before.data.workflowId), (view) => view.currentStep === 1);

    await commands.accepted('adminCommands', CONFIGURE, {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId: fixture.appId,
      config: configOf(org, [org.user('approver')], { justificationRequired: true, denyCommentRequired: true }),
    });
    const announced = await probe.waitFor(
      (record) => record.topic === backend.topics.settings && record.data.appId === fixture.appId && record.data.version === 2,
      'the configuration change',
    );
    expect(announced.data.before).not.toHaveProperty('justificationRequired');
    expect(announced.data.after).toMatchObject({ justificationRequired: true, denyCommentRequired: true });
    const stored = await backend.db.appSelfServiceConfig.findUniqueOrThrow({ where: { appId: fixture.appId } });
    expect({ justificationRequired: stored.justificationRequired, denyCommentRequired: stored.denyCommentRequired }).toEqual({
      justificationRequired: true,
      denyCommentRequired: true,
    });

    // The request made before the change was reviewed (the change signals it) and is still pending under its own rules.
    expect((await decide(fixture, earlyId, 'approver', 'DENY')).type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(String(before.data.workflowId))).status).toBe('DENIED');

    // A request made after it follows the new ones.
    expect((await request(fixture, 'late')).data).toMatchObject({ code: 'JUSTIFICATION_REQUIRED' });
    const after = await request(fixture, 'late', 'Needed for the audit');
    const lateId = String(after.data.requestId);
    await status(String(after.data.workflowId), (view) => view.currentStep === 1);
    expect((await decide(fixture, lateId, 'approver', 'DENY')).data).toMatchObject({ code: 'DENY_COMMENT_REQUIRED' });
    expect((await decide(fixture, lateId, 'approver', 'APPROVE')).type).toBe('selfservice.command.accepted.v1');
    expect((await finalView(String(after.data.workflowId))).status).toBe('APPROVED');
  });
});
