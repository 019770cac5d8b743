import type { RequestView } from '../../rules/app-request';
import { statusQuery } from '../../workflows/app-request';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, mailsTo, waitForMails } from '../support/mailpit';
import { uniqueId } from '../support/test-config';

/**
 * Issue 12 point 2, delegation while away, through the public contract on the real services: a user
 * names a delegate for a period on the user-requests topic; the steps that would go to them during it
 * go to the delegate, who decides on their behalf. Results, access-request and settings events read
 * back from Kafka, emails from the SMTP sink, the audit and history rows from PostgreSQL.
 */
describe('delegation while away', () => {
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

  const SET = 'selfservice.delegation.set-requested.v1';
  const CANCEL = 'selfservice.delegation.cancel-requested.v1';
  const HOUR = 3600_000;
  const DAY = 24 * HOUR;
  const at = (offset: number) => new Date(Date.now() + offset).toISOString();

  async function appWithSteps(org: SeededOrg, approvers: string[]): Promise<{ appId: string; label: string }> {
    const appId = uniqueId('app');
    const label = `Payroll ${appId}`;
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: true, approverSteps: approvers.map((name) => ({ type: 'USER', id: org.user(name), timeout: { days: 7 } })) },
    });
    return { appId, label };
  }

  async function request(org: SeededOrg, appId: string, requester: string) {
    const result = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user(requester), appId });
    const handle = backend.client.workflow.getHandle(result.data.workflowId as string);
    await view(handle, (candidate) => candidate.currentStep === 1 && candidate.currentApproverIds.length > 0);
    return { requestId: result.data.requestId as string, handle };
  }

  async function view(handle: ReturnType<TestBackend['client']['workflow']['getHandle']>, until: (view: RequestView) => boolean = () => true): Promise<RequestView> {
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const current = (await handle.query(statusQuery)) as RequestView;
      if (until(current)) return current;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error('the request never reached the expected state');
  }

  const delegate = (org: SeededOrg, from: string, to: string, start: string, end: string, reason?: string) =>
    commands.send('userRequests', SET, { orgId: org.orgId, userId: org.user(from), delegateId: org.user(to), start, end, ...(reason !== undefined ? { reason } : {}) });

  const decide = (org: SeededOrg, requestId: string, approver: string, decision: 'APPROVE' | 'DENY' = 'APPROVE') =>
    commands.send('decisions', 'selfservice.app-request.decided.v1', { orgId: org.orgId, requestId, approverId: org.user(approver), decision });

  const accessEvent = (requestId: string, name: string) => (record: SeenRecord) =>
    record.topic === backend.topics.accessRequests && record.type === `selfservice.app.access_request.${name}.v1` && record.data.requestId === requestId;

  test('a delegation from now: a waiting request is re-routed, a new one goes to the delegate, whose approval names the approver away; cancelling sends the rest back', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'other', 'manager', 'deputy'] });
    const { appId, label } = await appWithSteps(org, ['manager']);
    const waiting = await request(org, appId, 'requester');
    expect((await view(waiting.handle)).currentApproverIds).toEqual([org.user('manager')]);

    const set = await delegate(org, 'manager', 'deputy', at(-60_000), at(7 * DAY), 'parental leave');
    expect(set.type).toBe('selfservice.command.accepted.v1');
    const delegationId = String(set.data.delegationId);
    expect(set.data).toMatchObject({ userId: org.user('manager'), delegateId: org.user('deputy'), inForce: true, workflowId: `delegation-${delegationId}` });
    const announced = await probe.waitFor((record) => record.type === 'selfservice.delegation.changed.v1' && record.data.delegationId === delegationId, 'the delegation-changed event');
    expect(announced.topic).toBe(backend.topics.settings);
    expect(announced.key).toBe(org.orgId);
    expect(announced.data).toMatchObject({ orgId: org.orgId, userId: org.user('manager'), delegateId: org.user('deputy'), change: 'SET', reason: 'parental leave' });

    // The request waiting on the manager was told before the result went out: it waits on the deputy now.
    const rerouted = await probe.waitFor(accessEvent(waiting.requestId, 'reroute'), 'the reroute event');
    expect(rerouted.data).toMatchObject({ currentApproverIds: [org.user('deputy')], delegatedFrom: { [org.user('deputy')]: org.user('manager') } });
    expect(await view(waiting.handle)).toMatchObject({ currentApproverIds: [org.user('deputy')], delegatedFrom: { [org.user('deputy')]: org.user('manager') } });
    const [reroutedMail] = await waitForMails(org.email('deputy'));
    expect(reroutedMail?.Subject).toBe(`Approval needed: requester requests ${label} (on behalf of manager)`);
    expect((await mailDetail(reroutedMail!.ID)).Text).toContain(`You decide on behalf of manager <${org.email('manager')}>, who is away and named you their delegate.`);

    // A new request goes to the deputy from the start.
    const fresh = await request(org, appId, 'other');
    const freshView = await view(fresh.handle);
    expect(freshView.currentApproverIds).toEqual([org.user('deputy')]);
    expect(freshView.plan?.steps[0]).toMatchObject({ approverIds: [org.user('deputy')], delegatedFrom: { [org.user('deputy')]: org.user('manager') } });
    const deputyMails = await waitForMails(org.email('deputy'), 2);
    expect(deputyMails.map((mail) => mail.Subject)).toContain(`Approval needed: other requests ${label} (on behalf of manager)`);

    // The manager, away, is not asked; the deputy approves on their behalf.
    expect((await decide(org, waiting.requestId, 'manager')).data.code).toBe('NOT_CURRENT_APPROVER');
    expect((await decide(org, waiting.requestId, 'deputy')).type).toBe('selfservice.command.accepted.v1');
    expect(((await waiting.handle.result()) as RequestView).status).toBe('APPROVED');
    const approved = await probe.waitFor(accessEvent(waiting.requestId, 'approver.approve'), 'the approve event');
    expect(approved.data).toMatchObject({ actorId: org.user('deputy'), onBehalfOf: org.user('manager'), step: 1 });
    const history = await backend.db.appRequestEvent.findMany({ where: { requestId: waiting.requestId }, orderBy: { sequence: 'asc' } });
    expect(history.map((row) => [row.name, row.actorId, row.data])).toEqual([
      ['app.access_request.request', org.user('requester'), {}],
      ['app.access_request.reroute', null, { delegatedFrom: { [org.user('deputy')]: org.user('manager') } }],
      ['app.access_request.approver.approve', org.user('deputy'), { onBehalfOf: org.user('manager') }],
      ['app.access_request.grant', org.user('deputy'), {}],
    ]);
    const audit = await backend.db.auditEntry.findFirstOrThrow({ where: { orgId: org.orgId, action: 'delegation.set' } });
    expect(audit).toMatchObject({ actorId: org.user('manager'), subject: delegationId, outcome: 'ACCEPTED', after: expect.objectContaining({ delegateId: org.user('deputy'), reason: 'parental leave' }) });

    // Cancelled: the manager is back, and what still waits on the deputy goes back to them.
    const cancelled = await commands.send('userRequests', CANCEL, { orgId: org.orgId, userId: org.user('manager'), delegationId });
    expect(cancelled.type).toBe('selfservice.command.accepted.v1');
    expect(cancelled.data).toMatchObject({ delegationId, changed: true });
    const back = await probe.waitFor(accessEvent(fresh.requestId, 'reroute'), 'the reroute back');
    expect(back.data.currentApproverIds).toEqual([org.user('manager')]);
    expect(back.data).not.toHaveProperty('delegatedFrom');
    expect(await view(fresh.handle)).not.toHaveProperty('delegatedFrom');
    await probe.waitFor((record) => record.type === 'selfservice.delegation.changed.v1' && record.data.delegationId === delegationId && record.data.change === 'CANCELLED', 'the cancellation event');
    const again = await commands.send('userRequests', CANCEL, { orgId: org.orgId, userId: org.user('manager'), delegationId });
    expect(again.data).toMatchObject({ delegationId, changed: false });

    expect((await decide(org, fresh.requestId, 'manager', 'DENY')).type).toBe('selfservice.command.accepted.v1');
    const denied = await probe.waitFor(accessEvent(fresh.requestId, 'approver.deny'), 'the deny event');
    expect(denied.data).toMatchObject({ actorId: org.user('manager') });
    expect(denied.data).not.toHaveProperty('onBehalfOf');
  });

  test('a delegate who denies: the denial and the outcome email name the approver away', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'deputy'] });
    const { appId, label } = await appWithSteps(org, ['manager']);
    expect((await delegate(org, 'manager', 'deputy', at(0), at(DAY))).type).toBe('selfservice.command.accepted.v1');
    const { requestId, handle } = await request(org, appId, 'requester');
    expect((await decide(org, requestId, 'deputy', 'DENY')).type).toBe('selfservice.command.accepted.v1');
    const final = (await handle.result()) as RequestView;
    expect(final.status).toBe('DENIED');
    expect(final.timeline.find((entry) => entry.name === 'app.access_request.approver.deny')).toMatchObject({ actorId: org.user('deputy'), onBehalfOf: org.user('manager') });
    const ended = await probe.waitFor(accessEvent(requestId, 'deny'), 'the deny event');
    expect(ended.data).toMatchObject({ actorId: org.user('deputy'), onBehalfOf: org.user('manager') });
    const [outcome] = await waitForMails(org.email('requester'));
    expect(outcome?.Subject).toBe(`Denied: the request for ${label}`);
    expect((await mailDetail(outcome!.ID)).Text).toContain('was denied by deputy on behalf of manager');
  });

  test('delegations that loop (A to B, B to A) pass nothing on; a chain (A to B, B to C) ends on the first one present', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'alice', 'bert', 'cleo', 'dina'] });
    for (const [from, to] of [
      ['alice', 'bert'],
      ['bert', 'alice'],
      ['cleo', 'dina'],
    ] as const) {
      expect((await delegate(org, from, to, at(-1000), at(DAY))).type).toBe('selfservice.command.accepted.v1');
    }
    const loop = await appWithSteps(org, ['alice']);
    expect((await view((await request(org, loop.appId, 'requester')).handle)).currentApproverIds).toEqual([org.user('alice')]);

    // Dina is away too now, to Alice, who is away to Bert, who is away to Alice: Cleo's steps stay with Cleo.
    expect((await delegate(org, 'dina', 'alice', at(-1000), at(DAY))).type).toBe('selfservice.command.accepted.v1');
    const chained = await appWithSteps(org, ['cleo']);
    const stuck = await request(org, chained.appId, 'requester');
    const waiting = await view(stuck.handle);
    expect(waiting.currentApproverIds).toEqual([org.user('cleo')]);
    expect(waiting).not.toHaveProperty('delegatedFrom');

    // Bert comes back: Alice's steps go to Bert, and Cleo's pass Dina and Alice to Bert.
    const bertsDelegation = await backend.db.delegation.findFirstOrThrow({ where: { userId: org.user('bert') } });
    expect((await commands.send('userRequests', CANCEL, { orgId: org.orgId, userId: org.user('bert'), delegationId: bertsDelegation.id })).data.changed).toBe(true);
    // The request stuck with Cleo moves on too: it was told, since Cleo's delegates lead to Bert.
    const movedOn = await probe.waitFor(accessEvent(stuck.requestId, 'reroute'), 'the reroute of the request stuck in the loop');
    expect(movedOn.data).toMatchObject({ currentApproverIds: [org.user('bert')], delegatedFrom: { [org.user('bert')]: org.user('cleo') } });
    const toBert = await view((await request(org, chained.appId, 'bert')).handle);
    // Bert asks himself here, so the chain may not end on him: Cleo stays.
    expect(toBert.currentApproverIds).toEqual([org.user('cleo')]);
    const other = await appWithSteps(org, ['cleo']);
    const viaChain = await view((await request(org, other.appId, 'requester')).handle);
    expect(viaChain).toMatchObject({ currentApproverIds: [org.user('bert')], delegatedFrom: { [org.user('bert')]: org.user('cleo') } });
  });

  test('the requester is never their own approver through a delegation', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'other', 'manager'] });
    const { appId } = await appWithSteps(org, ['manager']);
    expect((await delegate(org, 'manager', 'requester', at(0), at(DAY))).type).toBe('selfservice.command.accepted.v1');
    // Their own request stays with the manager, who is away.
    const own = await view((await request(org, appId, 'requester')).handle);
    expect(own.currentApproverIds).toEqual([org.user('manager')]);
    expect(own).not.toHaveProperty('delegatedFrom');
    // Someone else's goes to them.
    const others = await view((await request(org, appId, 'other')).handle);
    expect(others).toMatchObject({ currentApproverIds: [org.user('requester')], delegatedFrom: { [org.user('requester')]: org.user('manager') } });
  });

  test('a delegation that starts later leaves waiting requests alone until then; its workflow waits for the start', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'manager', 'deputy'] });
    const { appId } = await appWithSteps(org, ['manager']);
    const { requestId, handle } = await request(org, appId, 'requester');
    const set = await delegate(org, 'manager', 'deputy', at(2 * DAY), at(9 * DAY));
    expect(set.data).toMatchObject({ inForce: false });
    const workflow = await backend.client.workflow.getHandle(String(set.data.workflowId)).describe();
    expect(workflow.status.name).toBe('RUNNING');
    expect(workflow.type).toBe('delegationWorkflow');
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await view(handle)).currentApproverIds).toEqual([org.user('manager')]);
    expect(probe.matching(accessEvent(requestId, 'reroute'))).toEqual([]);
    // A second period that overlaps it is refused, naming the first.
    const overlap = await delegate(org, 'manager', 'requester', at(8 * DAY), at(10 * DAY));
    expect(overlap.data).toMatchObject({ code: 'DELEGATION_OVERLAPS', existingDelegationId: set.data.delegationId });
    // One right after it is fine.
    expect((await delegate(org, 'manager', 'requester', at(9 * DAY + 1000), at(10 * DAY))).type).toBe('selfservice.command.accepted.v1');
  });

  test('refusals name the rule, change nothing and are audited', async () => {
    const org = await seedOrg(commands, { users: ['manager', 'deputy', 'gone', 'other'] });
    await commands.directory('user-upserted', { orgId: org.orgId, userId: org.user('gone'), email: org.email('gone'), status: 'DEACTIVATED', adminRoles: [] });
    const otherOrg = await seedOrg(commands, { users: ['stranger'] });
    const refused = async (data: Record<string, unknown>, type = SET) => {
      const result = await commands.send('userRequests', type, { orgId: org.orgId, userId: org.user('manager'), ...data });
      expect(result.type).toBe('selfservice.command.rejected.v1');
      return result.data;
    };
    const period = { start: at(0), end: at(DAY) };
    expect(await refused({ delegateId: 'u-nobody', ...period })).toMatchObject({ code: 'DELEGATE_NOT_FOUND' });
    expect(await refused({ delegateId: otherOrg.user('stranger'), ...period })).toMatchObject({ code: 'DELEGATE_NOT_FOUND' });
    expect(await refused({ delegateId: org.user('gone'), ...period })).toMatchObject({ code: 'DELEGATE_INACTIVE', message: `the delegate ${org.user('gone')} is DEACTIVATED; choose an active user` });
    expect(await refused({ delegateId: org.user('manager'), ...period })).toMatchObject({ code: 'DELEGATE_IS_SELF' });
    expect(await refused({ delegateId: org.user('deputy'), start: at(DAY), end: at(0) })).toMatchObject({ code: 'INVALID_DELEGATION_PERIOD', message: 'end must be after start' });
    expect(await refused({ delegateId: org.user('deputy'), start: at(-2 * DAY), end: at(-DAY) })).toMatchObject({ code: 'INVALID_DELEGATION_PERIOD' });
    expect(await refused({ delegateId: org.user('deputy'), start: at(0), end: at(400 * DAY) })).toMatchObject({ code: 'INVALID_DELEGATION_PERIOD' });
    expect(await refused({ delegateId: org.user('deputy'), ...period, reason: 'x'.repeat(501) })).toMatchObject({ code: 'REASON_TOO_LONG' });
    expect(await refused({ delegateId: org.user('deputy'), ...period, userId: 'u-nobody' })).toMatchObject({ code: 'USER_NOT_FOUND' });
    expect(await refused({ delegateId: org.user('deputy'), ...period, userId: org.user('gone') })).toMatchObject({ code: 'USER_NOT_ACTIVE' });
    // Not a date-time: dead-lettered and rejected as an invalid command.
    expect(await refused({ delegateId: org.user('deputy'), start: 'tomorrow', end: at(DAY) })).toMatchObject({ code: 'INVALID_COMMAND' });

    // Someone else's delegation, or none: not found.
    const set = await delegate(org, 'other', 'deputy', period.start, period.end);
    expect(await refused({ delegationId: set.data.delegationId }, CANCEL)).toMatchObject({ code: 'DELEGATION_NOT_FOUND' });
    expect(await refused({ delegationId: 'dlg-nothing' }, CANCEL)).toMatchObject({ code: 'DELEGATION_NOT_FOUND' });

    await expect(backend.db.delegation.count({ where: { orgId: org.orgId } })).resolves.toBe(1);
    const audits = await backend.db.auditEntry.findMany({ where: { orgId: org.orgId, action: { startsWith: 'delegation.' }, outcome: 'REJECTED' } });
    expect(audits.map((entry) => entry.code).sort()).toEqual(
      [
        'DELEGATE_INACTIVE',
        'DELEGATE_IS_SELF',
        'DELEGATE_NOT_FOUND',
        'DELEGATE_NOT_FOUND',
        'DELEGATION_NOT_FOUND',
        'DELEGATION_NOT_FOUND',
        'INVALID_DELEGATION_PERIOD',
        'INVALID_DELEGATION_PERIOD',
        'INVALID_DELEGATION_PERIOD',
        'REASON_TOO_LONG',
        'USER_NOT_ACTIVE',
        'USER_NOT_FOUND',
      ].sort(),
    );
    expect(await mailsTo(org.email('deputy'))).toHaveLength(0);
  });
});
