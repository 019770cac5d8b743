import type { RequestView } from '../../rules/app-request';
import { statusQuery } from '../../workflows/app-request';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * Who may decide or act on a request is the directory as it is at decision time, not at submission:
 * checked in the Updates' validators (a refusal leaves nothing in the history) against approvers and
 * admins that the request re-reads after every directory change and at the start of every step.
 */
describe('decision rights at decision time', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const DECIDED = 'selfservice.app-request.decided.v1';
  const ADMIN_ACTION = 'selfservice.app-request.admin-action.v1';

  async function appWithSteps(org: SeededOrg, approvers: string[]): Promise<string> {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Payroll ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: true, approverSteps: approvers.map((name) => ({ type: 'USER', id: org.user(name), timeout: { days: 7 } })) },
    });
    return appId;
  }

  async function pendingRequest(org: SeededOrg, appId: string) {
    const result = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
    const handle = backend.client.workflow.getHandle(result.data.workflowId as string);
    await atStep(handle, 1);
    return { requestId: result.data.requestId as string, handle };
  }

  async function atStep(handle: ReturnType<TestBackend['client']['workflow']['getHandle']>, step: number): Promise<RequestView> {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const view = (await handle.query(statusQuery)) as RequestView;
      // A later step shows no approvers while they are read from the directory.
      if (view.currentStep === step && view.currentApproverIds.length > 0) return view;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`never reached step ${step}`);
  }

  const user = (org: SeededOrg, name: string, status: string, adminRoles: string[] = [], adminAppIds?: string[]) =>
    commands.directory('user-upserted', { orgId: org.orgId, userId: org.user(name), email: org.email(name), status, adminRoles, ...(adminAppIds ? { adminAppIds } : {}) });

  const decide = (org: SeededOrg, requestId: string, name: string) =>
    commands.send('decisions', DECIDED, { orgId: org.orgId, requestId, approverId: org.user(name), decision: 'APPROVE' });

  test('an admin deactivated or demoted after submission may no longer decide; one promoted since may', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'leaver', 'demoted', 'promoted'], adminRoles: { leaver: ['SUPER_ADMIN'], demoted: ['SUPER_ADMIN'] } });
    const appId = await appWithSteps(org, ['manager']);
    const { requestId, handle } = await pendingRequest(org, appId);

    await user(org, 'leaver', 'DEACTIVATED', ['SUPER_ADMIN']);
    expect((await decide(org, requestId, 'leaver')).data.code).toBe('NOT_CURRENT_APPROVER');
    await user(org, 'demoted', 'ACTIVE', []);
    expect((await decide(org, requestId, 'demoted')).data.code).toBe('NOT_CURRENT_APPROVER');
    expect(((await handle.query(statusQuery)) as RequestView).status).toBe('PENDING');

    await user(org, 'promoted', 'ACTIVE', ['SUPER_ADMIN']);
    expect((await decide(org, requestId, 'promoted')).type).toBe('selfservice.command.accepted.v1');
    expect(((await handle.result()) as RequestView).status).toBe('APPROVED');
  });

  test("a later step's approver deactivated while the first step is pending is not an approver of the second step", async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'director'] });
    const appId = await appWithSteps(org, ['manager', 'director']);
    const { requestId, handle } = await pendingRequest(org, appId);

    await user(org, 'director', 'DEACTIVATED');
    expect((await decide(org, requestId, 'manager')).type).toBe('selfservice.command.accepted.v1');
    const second = await atStep(handle, 2);
    expect(second.currentApproverIds).toEqual([org.superAdminId]);
    expect((await decide(org, requestId, 'director')).data.code).toBe('NOT_CURRENT_APPROVER');
    expect((await commands.send('decisions', DECIDED, { orgId: org.orgId, requestId, approverId: org.superAdminId, decision: 'APPROVE' })).type).toBe(
      'selfservice.command.accepted.v1',
    );
    expect(((await handle.result()) as RequestView).status).toBe('APPROVED');
  });

  test('an app admin acts only on the apps they administer; a refused action leaves nothing in the history', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'otherAdmin', 'thisAdmin'] });
    const appId = await appWithSteps(org, ['manager']);
    const otherAppId = await appWithSteps(org, ['manager']);
    await user(org, 'otherAdmin', 'ACTIVE', ['APP_ADMIN'], [otherAppId]);
    await user(org, 'thisAdmin', 'ACTIVE', ['APP_ADMIN'], [appId]);
    const { requestId, handle } = await pendingRequest(org, appId);

    const override = await commands.send('adminCommands', ADMIN_ACTION, { orgId: org.orgId, actorId: org.user('otherAdmin'), requestId, action: 'OVERRIDE' });
    expect(override.data.code).toBe('NOT_AUTHORIZED');
    const deleted = await commands.send('adminCommands', ADMIN_ACTION, { orgId: org.orgId, actorId: org.user('otherAdmin'), requestId, action: 'DELETE' });
    expect(deleted.data.code).toBe('NOT_AUTHORIZED');
    expect((await decide(org, requestId, 'otherAdmin')).data.code).toBe('NOT_CURRENT_APPROVER');
    const configure = await commands.send('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.user('otherAdmin'),
      appId,
      config: { requestsEnabled: false, approvalRequired: false },
    });
    expect(configure.data.code).toBe('NOT_AUTHORIZED');

    const refusedIds = new Set([override.data.commandId, deleted.data.commandId]);
    const history = await handle.fetchHistory();
    const updateIds = (history.events ?? []).map(
      (event) => event.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.updateId ?? event.workflowExecutionUpdateAdmittedEventAttributes?.request?.meta?.updateId,
    );
    expect(updateIds.filter((id) => id && refusedIds.has(id))).toEqual([]);
    const audit = await backend.db.auditEntry.findMany({ where: { orgId: org.orgId, actorId: org.user('otherAdmin'), action: { startsWith: 'app-request.' } } });
    expect(audit.map((entry) => [entry.action, entry.outcome, entry.code])).toEqual(
      expect.arrayContaining([
        ['app-request.override', 'REJECTED', 'NOT_AUTHORIZED'],
        ['app-request.delete', 'REJECTED', 'NOT_AUTHORIZED'],
      ]),
    );

    const allowed = await commands.send('adminCommands', ADMIN_ACTION, { orgId: org.orgId, actorId: org.user('thisAdmin'), requestId, action: 'OVERRIDE', reason: 'on call' });
    expect(allowed.type).toBe('selfservice.command.accepted.v1');
    expect(((await handle.result()) as RequestView).status).toBe('APPROVED');
  });
});
