import { statusQuery } from '../../workflows/app-request';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, expectRejected, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * Time-bound access as admins configure it and users ask for it, on the real services: the per-app
 * configuration, the durations a request may pick, extensions of a grant, an admin's revocation, with
 * every refusal coded. (The access running out, reminders and extensions over weeks are in
 * test/workflow/time-bound-access.test.ts, on the time-skipping server.)
 */
describe('time-bound access', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.dashboard, backend.topics.settings]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
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

  const configure = (org: SeededOrg, appId: string, timeBoundAccess: unknown) =>
    commands.send('adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { requestsEnabled: true, approvalRequired: false, timeBoundAccess },
    });
  const ask = (org: SeededOrg, appId: string, extra: Record<string, unknown> = {}, user = 'requester') =>
    commands.send('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user(user), appId, ...extra });

  test('the configuration is checked, stored and announced', async () => {
    const org = await seedOrg(commands, { users: ['requester'] });
    const appId = await appWith(org, {});
    expectRejected(await configure(org, appId, { maxDays: 0 }), 'INVALID_ACCESS_DURATION', 'timeBoundAccess.maxDays is 0');
    expectRejected(await configure(org, appId, { maxDays: 3651 }), 'INVALID_ACCESS_DURATION', 'from 1 to 3650');
    expectRejected(await configure(org, appId, { maxDays: 10, reminderDaysBefore: 10 }), 'INVALID_REMINDER', 'timeBoundAccess reminds 10 days');
    expectRejected(await configure(org, appId, { maxDays: 'ten' }), 'INVALID_COMMAND', 'timeBoundAccess.maxDays must be a number of days');
    const accepted = await configure(org, appId, { maxDays: 30, requesterPicksDuration: true, reminderDaysBefore: 3 });
    expect(accepted.type).toBe('selfservice.command.accepted.v1');
    const announced = await probe.waitFor(
      (record) => record.type === 'selfservice.app.self-service-changed.v1' && record.data.appId === appId && record.data.version === 2,
      'the configuration event',
    );
    expect((announced.data.after as Record<string, unknown>).timeBoundAccess).toEqual({ maxDays: 30, requesterPicksDuration: true, reminderDaysBefore: 3 });
    await expect(backend.db.appSelfServiceConfig.findUniqueOrThrow({ where: { appId } })).resolves.toMatchObject({
      timeBoundAccess: { maxDays: 30, requesterPicksDuration: true, reminderDaysBefore: 3 },
    });
  });

  test('the durations a request may ask for, and what its grant announces', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'second', 'third'] });
    const forever = await appWith(org, {});
    const fixed = await appWith(org, { timeBoundAccess: { maxDays: 14 } });
    const picked = await appWith(org, { timeBoundAccess: { maxDays: 30, requesterPicksDuration: true, reminderDaysBefore: 5 } });

    expectRejected(await ask(org, forever, { accessDays: 5 }), 'ACCESS_DURATION_NOT_OFFERED', 'does not end, so accessDays (5) cannot be chosen');
    expectRejected(await ask(org, fixed, { accessDays: 5 }), 'ACCESS_DURATION_FIXED', 'lasts 14 days; the requester cannot choose accessDays (5)');
    expectRejected(await ask(org, picked, { accessDays: 31 }), 'ACCESS_DURATION_TOO_LONG', 'accessDays is 31; access to Vault');
    expectRejected(await ask(org, picked, { accessDays: 0 }), 'INVALID_COMMAND', 'accessDays must be at least 1');

    const granted = await ask(org, picked, { accessDays: 3 }, 'second');
    expect(granted.type).toBe('selfservice.command.accepted.v1');
    const view = await backend.client.workflow.getHandle(granted.data.workflowId as string).query(statusQuery);
    // 3 days picked: shorter than the 5-day reminder, so there is none.
    expect(view.plan?.access).toEqual({ days: 3 });
    const assigned = await probe.waitFor(
      (record) => record.type === 'selfservice.dashboard.app-assigned.v1' && record.data.requestId === granted.data.requestId,
      'the app-assigned event',
    );
    expect(assigned.data).toMatchObject({ grantId: granted.data.requestId, accessEndsAt: expect.any(String) });
    const row = await backend.db.appRequest.findUniqueOrThrow({ where: { id: granted.data.requestId as string } });
    expect(row.accessEndsAt?.toISOString()).toBe(assigned.data.accessEndsAt);

    // A grant that does not end announces no end.
    const plain = await ask(org, forever, {}, 'third');
    const plainAssigned = await probe.waitFor(
      (record) => record.type === 'selfservice.dashboard.app-assigned.v1' && record.data.requestId === plain.data.requestId,
      'the app-assigned event of a grant that does not end',
    );
    expect(plainAssigned.data).not.toHaveProperty('grantId');
    expect(plainAssigned.data).not.toHaveProperty('accessEndsAt');
  });

  test('an extension needs an active time-bound grant of the same user and app', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'colleague'] });
    const forever = await appWith(org, {});
    const timed = await appWith(org, { timeBoundAccess: { maxDays: 30 } });
    const grant = await ask(org, timed);
    const grantId = grant.data.requestId as string;
    await probe.waitFor((record) => record.type === 'selfservice.dashboard.app-assigned.v1' && record.data.requestId === grantId, 'the grant');

    // Without extendsRequestId the user simply has the app already.
    expectRejected(await ask(org, timed), 'ALREADY_ASSIGNED', 'already has Vault');
    expectRejected(await ask(org, timed, { extendsRequestId: 'req-unknown' }), 'NO_ACTIVE_GRANT', 'req-unknown is not a time-bound grant');
    expectRejected(await ask(org, timed, { extendsRequestId: grantId }, 'colleague'), 'NO_ACTIVE_GRANT', `${grantId} is not a time-bound grant`);
    const plain = await ask(org, forever);
    expectRejected(await ask(org, forever, { extendsRequestId: plain.data.requestId }), 'NO_ACTIVE_GRANT', 'is not a time-bound grant');

    // The app stops ending: there is nothing to extend (the grant ends as it was granted).
    const stopped = await configure(org, timed, undefined);
    expect({ type: stopped.type, message: stopped.data.message }).toEqual({ type: 'selfservice.command.accepted.v1', message: undefined });
    expectRejected(await ask(org, timed, { extendsRequestId: grantId }), 'EXTENSION_NOT_OFFERED', 'no longer ends');
  });

  test('REVOKE applies only to a time-bound grant that is active, and only admins may', async () => {
    const org = await seedOrg(commands, { users: ['requester', 'peer'] });
    const forever = await appWith(org, {});
    const timed = await appWith(org, { timeBoundAccess: { maxDays: 30 } });
    const revoke = (requestId: unknown, actorId: string) =>
      commands.send('adminCommands', 'selfservice.app-request.admin-action.v1', { orgId: org.orgId, actorId, requestId, action: 'REVOKE' });

    const plain = await ask(org, forever);
    await backend.client.workflow.getHandle(plain.data.workflowId as string).result();
    expectRejected(await revoke(plain.data.requestId, org.superAdminId), 'REQUEST_NOT_PENDING', '');

    const grant = await ask(org, timed);
    const handle = backend.client.workflow.getHandle(grant.data.workflowId as string);
    for (let attempt = 0; attempt < 100 && (await handle.query(statusQuery)).access?.status !== 'ACTIVE'; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    expectRejected(await revoke(grant.data.requestId, org.user('peer')), 'NOT_AUTHORIZED', org.user('peer'));
    const revoked = await revoke(grant.data.requestId, org.superAdminId);
    expect(revoked.type).toBe('selfservice.command.accepted.v1');
    await probe.waitFor(
      (record) => record.type === 'selfservice.dashboard.app-unassigned.v1' && record.data.requestId === grant.data.requestId,
      'the app-unassigned event',
    );
    await expect(backend.db.appAssignment.findUnique({ where: { userId_appId: { userId: org.user('requester'), appId: timed } } })).resolves.toBeNull();
  });
});
