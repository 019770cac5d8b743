import { statusQuery } from '../../workflows/app-request';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, expectRejected, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe } from '../support/kafka-probe';
import { mailDetail, waitForMails } from '../support/mailpit';
import { uniqueId } from '../support/test-config';

/**
 * Per-approver app user attributes (Okta's approval "app user attributes"), on the real services: the
 * app declares them, each step says which its approvers see or may set, a required one must be set
 * before the grant, and the grant carries the values to the dashboard event and the assignment.
 */
describe('app user attributes set by approvers', () => {
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

  const CONFIGURE = 'selfservice.app.self-service-configured.v1';
  const DECIDED = 'selfservice.app-request.decided.v1';


  const ATTRIBUTES = [{ name: 'costCenter', required: true }, { name: 'department' }, { name: 'salaryBand' }];

  function config(org: SeededOrg, steps?: unknown[], attributes: unknown = ATTRIBUTES) {
    return {
      requestsEnabled: true,
      approvalRequired: true,
      appUserAttributes: attributes,
      approverSteps: steps ?? [
        { type: 'USER', id: org.user('manager'), timeout: { days: 7 }, attributes: { department: 'WRITE', costCenter: 'READ', salaryBand: 'HIDDEN' } },
        { type: 'USER', id: org.user('finance'), timeout: { days: 7 }, attributes: { costCenter: 'WRITE', department: 'READ' } },
      ],
    };
  }

  async function app(org: SeededOrg): Promise<string> {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Workday ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
    return appId;
  }

  test('the configuration names only declared attributes, and a required one must be writable by a step', async () => {
    const org = await seedOrg(commands, { users: ['manager', 'finance'] });
    const appId = await app(org);
    const configure = (value: unknown) => commands.send('adminCommands', CONFIGURE, { orgId: org.orgId, actorId: org.superAdminId, appId, config: value });
    const manager = (attributes: unknown) => [{ type: 'USER', id: org.user('manager'), timeout: { days: 7 }, attributes }];

    expectRejected(await configure(config(org, manager({ location: 'READ', costCenter: 'WRITE' }))), 'UNKNOWN_ATTRIBUTE', 'approver step 1 names location');
    expectRejected(await configure(config(org, manager({ department: 'WRITE' }))), 'REQUIRED_ATTRIBUTE_NOT_WRITABLE', 'costCenter is required, but no approver step may set it');
    expectRejected(await configure(config(org, manager({ costCenter: 'WRITE' }), [...ATTRIBUTES, { name: 'department' }])), 'DUPLICATE_ATTRIBUTE', 'declares department more than once');
    expectRejected(await configure({ ...config(org, manager({ costCenter: 'EDIT' })) }), 'INVALID_COMMAND', 'attribute access must be one of HIDDEN, READ, WRITE');
    const accepted = await configure(config(org));
    expect(accepted.type).toBe('selfservice.command.accepted.v1');
  });

  test('each step sees and sets its own attributes; the grant needs the required ones and carries them all', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'finance'] });
    const appId = await app(org);
    await commands.accepted('adminCommands', CONFIGURE, { orgId: org.orgId, actorId: org.superAdminId, appId, config: config(org) });
    const submitted = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId });
    const requestId = submitted.data.requestId as string;
    const handle = backend.client.workflow.getHandle(submitted.data.workflowId as string);
    const decide = (approver: string, data: Record<string, unknown>) =>
      commands.send('decisions', DECIDED, { orgId: org.orgId, requestId, approverId: org.user(approver), decision: 'APPROVE', ...data });

    // The manager's email names what they see and may set, never the hidden one.
    const [managerMail] = await waitForMails(org.email('manager'));
    const managerText = (await mailDetail(managerMail!.ID)).Text;
    const managerLines = managerText.split(/\r?\n/).map((line) => line.trim());
    expect(managerLines).toContain('department: (not set) (you may set it)');
    expect(managerLines).toContain('costCenter: (not set)');
    expect(managerText).not.toContain('salaryBand');

    expectRejected(await decide('manager', { attributes: { costCenter: 'CC-1' } }), 'ATTRIBUTE_NOT_WRITABLE', 'may not set costCenter');
    expectRejected(await decide('manager', { decision: 'DENY', attributes: { department: 'R&D' } }), 'ATTRIBUTES_ONLY_WITH_APPROVAL', 'attributes (department)');
    expect((await decide('manager', { attributes: { department: 'R&D' } })).type).toBe('selfservice.command.accepted.v1');

    // Step 2: finance sees the department set by the manager and must set the cost center.
    const [financeMail] = await waitForMails(org.email('finance'));
    const financeLines = (await mailDetail(financeMail!.ID)).Text.split(/\r?\n/).map((line) => line.trim());
    expect(financeLines).toContain('department: R&D');
    expect(financeLines).toContain('costCenter: (not set) (you may set it; required before the grant)');
    expectRejected(await decide('finance', {}), 'ATTRIBUTE_REQUIRED', 'needs costCenter set by an approver');
    const override = await commands.send('adminCommands', 'selfservice.app-request.admin-action.v1', { orgId: org.orgId, actorId: org.superAdminId, requestId, action: 'OVERRIDE' });
    expectRejected(override, 'ATTRIBUTE_REQUIRED', 'needs costCenter');
    expect((await handle.query(statusQuery)).status).toBe('PENDING');

    expect((await decide('finance', { attributes: { costCenter: 'CC-42' } })).type).toBe('selfservice.command.accepted.v1');
    const assigned = await probe.waitFor((record) => record.type === 'selfservice.dashboard.app-assigned.v1' && record.data.requestId === requestId, 'the app-assigned event');
    expect(assigned.data.attributes).toEqual({ department: 'R&D', costCenter: 'CC-42' });
    const events = probe.matching((record) => record.topic === backend.topics.accessRequests && record.data.requestId === requestId);
    expect(events.map((record) => [record.type, record.data.attributes])).toEqual([
      ['selfservice.app.access_request.request.v1', undefined],
      ['selfservice.app.access_request.approver.approve.v1', { department: 'R&D' }],
      ['selfservice.app.access_request.approver.approve.v1', { costCenter: 'CC-42' }],
      ['selfservice.app.access_request.grant.v1', { department: 'R&D', costCenter: 'CC-42' }],
    ]);
    const row = await backend.db.appAssignment.findUniqueOrThrow({ where: { userId_appId: { userId: org.user('requester'), appId } } });
    expect(row.attributes).toEqual({ department: 'R&D', costCenter: 'CC-42' });
    expect((await handle.query(statusQuery)).attributes).toEqual({ department: 'R&D', costCenter: 'CC-42' });
  });
});
