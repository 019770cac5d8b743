import { randomUUID } from 'node:crypto';
import type { ChangePreview } from '../../events/outbound';
import { startTestBackend, type TestBackend } from '../support/backend';
import { runCli } from '../support/cli';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * Dry runs of risky admin changes (issue 12 point 5): an admin asks on the admin-commands topic (or the
 * CLI) what an org settings change or a per-app configuration would do, and gets back in the command's
 * accepted result the pending requests it would close or re-route, the flows it would switch off and
 * the version it was computed against, with nothing changed. The real change, sent afterwards with that
 * version as expectedVersion, must do exactly what the preview said.
 */
describe('previews of settings and per-app changes', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.settings, backend.topics.accessRequests]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const UPDATE = 'selfservice.settings.update-requested.v1';
  const SETTINGS_PREVIEW = 'selfservice.settings.preview-requested.v1';
  const CONFIGURE = 'selfservice.app.self-service-configured.v1';
  const APP_PREVIEW = 'selfservice.app.self-service-preview-requested.v1';
  const ACCEPTED = 'selfservice.command.accepted.v1';
  const REJECTED = 'selfservice.command.rejected.v1';

  interface Config {
    requestsEnabled: boolean;
    approvalRequired: boolean;
    approverSteps?: { type: 'USER' | 'GROUP'; id: string; timeout: { days: number } }[];
    fallbackApproverIds?: string[];
  }

  const approvalBy = (type: 'USER' | 'GROUP', id: string): Config => ({ requestsEnabled: true, approvalRequired: true, approverSteps: [{ type, id, timeout: { days: 7 } }] });

  async function app(org: SeededOrg, config: Config): Promise<string> {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Label ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
    await commands.accepted('adminCommands', CONFIGURE, { orgId: org.orgId, actorId: org.superAdminId, appId, config });
    return appId;
  }

  async function request(org: SeededOrg, user: string, appId: string): Promise<{ requestId: string; workflowId: string }> {
    const result = await commands.accepted('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user(user), appId });
    return { requestId: result.data.requestId as string, workflowId: result.data.workflowId as string };
  }

  async function until(check: () => Promise<boolean>, what: string): Promise<void> {
    for (let attempt = 0; attempt < 300; attempt += 1) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const requestRow = (requestId: string) => backend.db.appRequest.findUniqueOrThrow({ where: { id: requestId } });

  /** The request has begun its first step in its workflow too (the step's timer is running). */
  async function waitingAtStep(workflowId: string): Promise<void> {
    await until(async () => ((await backend.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).some((event) => event.timerStartedEventAttributes), `${workflowId} to wait on its step`);
  }

  async function signalsTo(workflowId: string): Promise<number> {
    const events = (await backend.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    return events.filter((event) => event.workflowExecutionSignaledEventAttributes).length;
  }

  function previewOf(result: SeenRecord): ChangePreview {
    expect({ type: result.type, code: result.data.code, message: result.data.message }).toEqual({ type: ACCEPTED, code: undefined, message: undefined });
    return result.data.preview as ChangePreview;
  }

  function expectRejected(result: SeenRecord, code: string): void {
    expect({ type: result.type, code: result.data.code }).toEqual({ type: REJECTED, code });
    expect(result.data.preview).toBeUndefined();
  }

  const byRequest = <T extends { requestId: string }>(entries: T[]) => [...entries].sort((a, b) => a.requestId.localeCompare(b.requestId));

  /** Closed requests as the database has them, in the preview's shape. */
  async function closedAsDeleted(requestIds: string[]) {
    await until(async () => (await backend.db.appRequest.count({ where: { id: { in: requestIds }, status: 'DELETED' } })) === requestIds.length, 'the requests to close');
    const rows = await backend.db.appRequest.findMany({ where: { id: { in: requestIds } } });
    return byRequest(rows.map((row) => ({ requestId: row.id, appId: row.appId, requesterId: row.requesterId, reason: row.closedReason })));
  }

  test('turning approval off and disabling requests: the preview lists exactly the requests the real change then closes, and changes nothing', async () => {
    const org = await seedOrg(commands, { users: ['alice', 'bob', 'manager'] });
    const appA = await app(org, approvalBy('USER', org.user('manager')));
    const appB = await app(org, approvalBy('USER', org.user('manager')));
    const r1 = await request(org, 'alice', appA);
    const r2 = await request(org, 'bob', appA);
    const r3 = await request(org, 'alice', appB);
    for (const { workflowId } of [r1, r2, r3]) await waitingAtStep(workflowId);
    const signalsBefore = await Promise.all([r1, r2, r3].map(({ workflowId }) => signalsTo(workflowId)));

    const approvalOff = { orgId: org.orgId, actorId: org.superAdminId, appId: appA, config: { requestsEnabled: true, approvalRequired: false } };
    const previewA = previewOf(await commands.send('adminCommands', APP_PREVIEW, approvalOff));
    expect(previewA).toMatchObject({
      change: CONFIGURE,
      appId: appA,
      computedAgainstVersion: 1,
      wouldBeVersion: 2,
      noChange: false,
      pendingReviewed: 2,
      wouldCloseTotal: 2,
      wouldReroute: [],
      wouldRerouteTotal: 0,
      truncated: false,
      listLimit: 500,
      wouldTurnOff: [{ flow: 'APP_APPROVAL', setting: 'approvalRequired', appId: appA, effect: expect.stringContaining('granted at once') }],
    });
    expect(previewA.changed).toEqual(expect.arrayContaining(['approvalRequired', 'approverSteps']));
    expect(byRequest(previewA.wouldClose)).toEqual(
      byRequest([
        { requestId: r1.requestId, appId: appA, requesterId: org.user('alice'), reason: `approval for Label ${appA} is no longer required; request the app again to get it at once` },
        { requestId: r2.requestId, appId: appA, requesterId: org.user('bob'), reason: `approval for Label ${appA} is no longer required; request the app again to get it at once` },
      ]),
    );

    const disable = { orgId: org.orgId, actorId: org.superAdminId, appId: appB, config: { requestsEnabled: false, approvalRequired: true, approverSteps: approvalBy('USER', org.user('manager')).approverSteps } };
    const previewB = previewOf(await commands.send('adminCommands', APP_PREVIEW, disable));
    expect(previewB).toMatchObject({ computedAgainstVersion: 1, wouldBeVersion: 2, changed: ['requestsEnabled'], wouldCloseTotal: 1, wouldRerouteTotal: 0 });
    expect(previewB.wouldClose).toEqual([{ requestId: r3.requestId, appId: appB, requesterId: org.user('alice'), reason: `requests for Label ${appB} were disabled` }]);
    expect(previewB.wouldTurnOff).toEqual([{ flow: 'APP_REQUESTS', setting: 'requestsEnabled', appId: appB, effect: expect.stringContaining('leaves the Available Apps list') }]);

    // Nothing changed: the configurations keep their version, the requests are pending and were told nothing.
    const configs = await backend.db.appSelfServiceConfig.findMany({ where: { appId: { in: [appA, appB] } } });
    expect(configs.map((config) => [config.appId, config.version, config.approvalRequired, config.requestsEnabled]).sort()).toEqual(
      [
        [appA, 1, true, true],
        [appB, 1, true, true],
      ].sort(),
    );
    for (const { requestId } of [r1, r2, r3]) await expect(requestRow(requestId)).resolves.toMatchObject({ status: 'PENDING', currentStep: 1 });
    await expect(Promise.all([r1, r2, r3].map(({ workflowId }) => signalsTo(workflowId)))).resolves.toEqual(signalsBefore);
    await expect(backend.db.appRequestEvent.count({ where: { requestId: { in: [r1.requestId, r2.requestId, r3.requestId] } } })).resolves.toBe(3);
    const audits = await backend.db.auditEntry.findMany({ where: { orgId: org.orgId, action: 'app.self-service.preview' }, orderBy: { id: 'asc' } });
    expect(audits.map((entry) => [entry.actorId, entry.subject, entry.outcome])).toEqual([
      [org.superAdminId, appA, 'ACCEPTED'],
      [org.superAdminId, appB, 'ACCEPTED'],
    ]);

    // The real changes, made against the previewed versions, do what the previews said.
    const changedA = await commands.accepted('adminCommands', CONFIGURE, { ...approvalOff, expectedVersion: previewA.computedAgainstVersion });
    expect(changedA.data.version).toBe(previewA.wouldBeVersion);
    expect(await closedAsDeleted([r1.requestId, r2.requestId])).toEqual(byRequest(previewA.wouldClose));
    await expect(requestRow(r3.requestId)).resolves.toMatchObject({ status: 'PENDING' });
    const changedB = await commands.accepted('adminCommands', CONFIGURE, { ...disable, expectedVersion: previewB.computedAgainstVersion });
    expect(changedB.data.version).toBe(previewB.wouldBeVersion);
    expect(await closedAsDeleted([r3.requestId])).toEqual(previewB.wouldClose);

    // On the settings topic: the configurations and the real changes only, never a preview.
    await probe.waitFor((record) => record.topic === backend.topics.settings && record.data.appId === appB && record.data.version === 2, 'the change of app B');
    const announced = probe.matching((record) => record.topic === backend.topics.settings && record.data.orgId === org.orgId && record.type === 'selfservice.app.self-service-changed.v1');
    expect(announced.map((record) => [record.data.appId, record.data.version]).sort()).toEqual(
      [
        [appA, 1],
        [appB, 1],
        [appA, 2],
        [appB, 2],
      ].sort(),
    );
  });

  test('turning the org switch off: the preview lists every pending request it closes and the flows it switches off; the real change matches', async () => {
    const org = await seedOrg(commands, { users: ['alice', 'bob', 'manager'] });
    expect((await commands.accepted('adminCommands', UPDATE, { orgId: org.orgId, actorId: org.superAdminId, changes: { allowPersonalApps: true } })).data.version).toBe(2);
    const withApproval = await app(org, approvalBy('USER', org.user('manager')));
    const withoutApproval = await app(org, { requestsEnabled: true, approvalRequired: false });
    const pending = [await request(org, 'alice', withApproval), await request(org, 'bob', withApproval)];
    const granted = await request(org, 'alice', withoutApproval);
    await until(async () => (await requestRow(granted.requestId)).status === 'APPROVED', 'the auto-grant');

    const changes = { allowOrgManagedApps: false, allowPersonalApps: false };
    const preview = previewOf(await commands.send('adminCommands', SETTINGS_PREVIEW, { orgId: org.orgId, actorId: org.superAdminId, changes }));
    const reason = 'the org no longer allows users to add org-managed app integrations';
    expect(preview).toMatchObject({
      change: UPDATE,
      computedAgainstVersion: 2,
      wouldBeVersion: 3,
      noChange: false,
      changed: ['allowOrgManagedApps', 'allowPersonalApps'],
      pendingReviewed: 2,
      wouldCloseTotal: 2,
      wouldRerouteTotal: 0,
      truncated: false,
    });
    expect(preview.appId).toBeUndefined();
    expect(byRequest(preview.wouldClose)).toEqual(
      byRequest([
        { requestId: pending[0]!.requestId, appId: withApproval, requesterId: org.user('alice'), reason },
        { requestId: pending[1]!.requestId, appId: withApproval, requesterId: org.user('bob'), reason },
      ]),
    );
    expect(preview.wouldTurnOff).toEqual([
      {
        flow: 'ORG_MANAGED_APP_REQUESTS',
        setting: 'allowOrgManagedApps',
        effect: expect.stringContaining('the 2 apps of the Available Apps list'),
        appIds: [withApproval, withoutApproval].sort(),
        appIdsTotal: 2,
      },
      { flow: 'PERSONAL_APP_ADDS', setting: 'allowPersonalApps', effect: expect.stringContaining('already added stay on their dashboards') },
    ]);

    // Nothing changed: same version, requests pending, no settings event.
    const settings = await backend.db.orgSettings.findUniqueOrThrow({ where: { orgId: org.orgId } });
    expect(settings).toMatchObject({ version: 2, allowOrgManagedApps: true, allowPersonalApps: true });
    for (const { requestId } of pending) await expect(requestRow(requestId)).resolves.toMatchObject({ status: 'PENDING' });

    const changed = await commands.accepted('adminCommands', UPDATE, { orgId: org.orgId, actorId: org.superAdminId, changes, expectedVersion: preview.computedAgainstVersion });
    expect(changed.data).toMatchObject({ version: preview.wouldBeVersion, changed: preview.changed });
    expect(await closedAsDeleted(pending.map(({ requestId }) => requestId))).toEqual(byRequest(preview.wouldClose));
    await probe.waitFor((record) => record.topic === backend.topics.settings && record.data.orgId === org.orgId && record.data.version === 3, 'the settings change');
    const versions = probe
      .matching((record) => record.topic === backend.topics.settings && record.data.orgId === org.orgId && record.type === 'selfservice.settings.changed.v1')
      .map((record) => record.data.version);
    expect(versions).toEqual([1, 2, 3]);
    expect(await backend.db.auditEntry.count({ where: { orgId: org.orgId, action: 'settings.preview', outcome: 'ACCEPTED' } })).toBe(1);

    // The same preview now: computed against the new version, and nothing left to close.
    const after = previewOf(await commands.send('adminCommands', SETTINGS_PREVIEW, { orgId: org.orgId, actorId: org.superAdminId, changes }));
    expect(after).toMatchObject({ computedAgainstVersion: 3, wouldBeVersion: null, noChange: true, changed: [], wouldClose: [], wouldTurnOff: [] });
  });

  test('a step change: the preview lists the re-route the real change then makes', async () => {
    const org = await seedOrg(commands, { users: ['alice', 'finance1', 'manager2', 'fallback'] });
    const groupId = uniqueId('group');
    await commands.directory('group-upserted', { orgId: org.orgId, groupId, name: 'Finance', memberIds: [org.user('finance1')] });
    const appId = await app(org, approvalBy('GROUP', groupId));
    const { requestId, workflowId } = await request(org, 'alice', appId);
    await waitingAtStep(workflowId);
    // The only approver leaves: the step goes to the fallback, the super admins (no fallback approvers yet).
    await commands.directory('user-upserted', { orgId: org.orgId, userId: org.user('finance1'), email: org.email('finance1'), status: 'DEACTIVATED', adminRoles: [] });
    await until(async () => (await requestRow(requestId)).currentApproverIds.join() === org.superAdminId, 'the re-route to the super admin');
    const signals = await signalsTo(workflowId);

    // New requests go to manager2; pending ones keep the steps they were planned with, so the new
    // fallback approver takes over the step nobody in the group can decide.
    const change = {
      orgId: org.orgId,
      actorId: org.superAdminId,
      appId,
      config: { ...approvalBy('USER', org.user('manager2')), fallbackApproverIds: [org.user('fallback')] },
    };
    const preview = previewOf(await commands.send('adminCommands', APP_PREVIEW, change));
    expect(preview).toMatchObject({ computedAgainstVersion: 1, wouldBeVersion: 2, wouldClose: [], wouldCloseTotal: 0, wouldRerouteTotal: 1, wouldTurnOff: [] });
    expect(preview.changed).toEqual(expect.arrayContaining(['approverSteps', 'fallbackApproverIds']));
    expect(preview.wouldReroute).toEqual([
      { requestId, appId, requesterId: org.user('alice'), step: 1, fromApproverIds: [org.superAdminId], toApproverIds: [org.user('fallback')] },
    ]);
    await expect(requestRow(requestId)).resolves.toMatchObject({ status: 'PENDING', currentApproverIds: [org.superAdminId] });
    expect(await signalsTo(workflowId)).toBe(signals);

    await commands.accepted('adminCommands', CONFIGURE, { ...change, expectedVersion: preview.computedAgainstVersion });
    await until(async () => (await requestRow(requestId)).currentApproverIds.join() === org.user('fallback'), 'the re-route to the fallback approver');
    await probe.waitFor(
      (record) => record.topic === backend.topics.accessRequests && record.data.requestId === requestId && (record.data.currentApproverIds as string[] | undefined)?.[0] === org.user('fallback'),
      'the re-route event',
    );
    const row = await requestRow(requestId);
    expect({ step: row.currentStep, toApproverIds: row.currentApproverIds, status: row.status }).toEqual({ step: 1, toApproverIds: preview.wouldReroute[0]!.toApproverIds, status: 'PENDING' });
  });

  test('a preview is refused with the code the change would get: not an admin, not a super admin, unknown app, invalid steps, stale version', async () => {
    const org = await seedOrg(commands, { users: ['enduser', 'appAdmin', 'manager'], adminRoles: { appAdmin: ['APP_ADMIN'] } });
    const appId = await app(org, approvalBy('USER', org.user('manager')));
    const settings = (actorId: string, extra: Record<string, unknown> = {}) =>
      commands.send('adminCommands', SETTINGS_PREVIEW, { orgId: org.orgId, actorId, changes: { allowOrgManagedApps: false }, ...extra });
    const configure = (actorId: string, config: Config, extra: Record<string, unknown> = {}) =>
      commands.send('adminCommands', APP_PREVIEW, { orgId: org.orgId, actorId, appId, config, ...extra });

    expectRejected(await settings(org.user('enduser')), 'NOT_AUTHORIZED');
    // Only a super admin changes org settings, so only a super admin previews them; an app admin configures apps.
    expectRejected(await settings(org.user('appAdmin')), 'NOT_AUTHORIZED');
    expectRejected(await configure(org.user('enduser'), { requestsEnabled: false, approvalRequired: false }), 'NOT_AUTHORIZED');
    previewOf(await configure(org.user('appAdmin'), { requestsEnabled: false, approvalRequired: false }));
    expectRejected(await commands.send('adminCommands', APP_PREVIEW, { orgId: org.orgId, actorId: org.superAdminId, appId: 'app-nowhere', config: { requestsEnabled: false, approvalRequired: false } }), 'APP_NOT_FOUND');
    expectRejected(await configure(org.superAdminId, { requestsEnabled: true, approvalRequired: true }), 'APPROVER_STEPS_REQUIRED');
    expectRejected(await configure(org.superAdminId, approvalBy('USER', 'u-not-in-org')), 'APPROVER_NOT_FOUND');

    const stale = await settings(org.superAdminId, { expectedVersion: 0 });
    expectRejected(stale, 'STALE_VERSION');
    expect(stale.data.message).toContain('are at version 1, but the change was based on version 0');
    expectRejected(await configure(org.superAdminId, { requestsEnabled: false, approvalRequired: false }, { expectedVersion: 5 }), 'STALE_VERSION');
    previewOf(await settings(org.superAdminId, { expectedVersion: 1 }));

    const audited = await backend.db.auditEntry.findMany({ where: { orgId: org.orgId, action: { in: ['settings.preview', 'app.self-service.preview'] } }, orderBy: { id: 'asc' } });
    expect(audited.map((entry) => [entry.action, entry.actorId, entry.outcome, entry.code])).toEqual([
      ['settings.preview', org.user('enduser'), 'REJECTED', 'NOT_AUTHORIZED'],
      ['settings.preview', org.user('appAdmin'), 'REJECTED', 'NOT_AUTHORIZED'],
      ['app.self-service.preview', org.user('enduser'), 'REJECTED', 'NOT_AUTHORIZED'],
      ['app.self-service.preview', org.user('appAdmin'), 'ACCEPTED', null],
      ['app.self-service.preview', org.superAdminId, 'REJECTED', 'APP_NOT_FOUND'],
      ['app.self-service.preview', org.superAdminId, 'REJECTED', 'APPROVER_STEPS_REQUIRED'],
      ['app.self-service.preview', org.superAdminId, 'REJECTED', 'APPROVER_NOT_FOUND'],
      ['settings.preview', org.superAdminId, 'REJECTED', 'STALE_VERSION'],
      ['app.self-service.preview', org.superAdminId, 'REJECTED', 'STALE_VERSION'],
      ['settings.preview', org.superAdminId, 'ACCEPTED', null],
    ]);
    // None of it changed anything.
    await expect(backend.db.orgSettings.findUniqueOrThrow({ where: { orgId: org.orgId } })).resolves.toMatchObject({ version: 1, allowOrgManagedApps: true });
    await expect(backend.db.appSelfServiceConfig.findUniqueOrThrow({ where: { appId } })).resolves.toMatchObject({ version: 1, requestsEnabled: true });
  });

  test('the same preview command sent twice gets one result and changes nothing', async () => {
    const org = await seedOrg(commands, { users: ['manager'], allowOrgManagedApps: false });
    const id = randomUUID();
    const data = { orgId: org.orgId, actorId: org.superAdminId, changes: { allowPersonalApps: true } };
    await sendCommand(backend.producer, backend.topics.adminCommands, SETTINGS_PREVIEW, data, { id });
    await sendCommand(backend.producer, backend.topics.adminCommands, SETTINGS_PREVIEW, data, { id });
    const result = await probe.waitFor(resultFor(id), 'the preview result');
    expect(previewOf(result)).toMatchObject({ computedAgainstVersion: 0, wouldBeVersion: 1, changed: ['allowPersonalApps'], pendingReviewed: 0, wouldTurnOff: [] });
    // A later command of the same org (same partition) has its result once the repeat was handled.
    previewOf(await commands.send('adminCommands', SETTINGS_PREVIEW, data));
    expect(probe.matching(resultFor(id))).toHaveLength(1);
    await expect(backend.db.processedCommand.count({ where: { commandId: id } })).resolves.toBe(1);
    await expect(backend.db.auditEntry.count({ where: { commandId: id } })).resolves.toBe(1);
    await expect(backend.db.orgSettings.findUniqueOrThrow({ where: { orgId: org.orgId } })).resolves.toMatchObject({ version: 0, allowPersonalApps: false });
  });

  describe('the CLI', () => {
    test('settings preview and apps preview-config go through the catalog, print the preview and change nothing', async () => {
      const org = await seedOrg(commands, { users: ['alice', 'manager', 'enduser'] });
      const appId = await app(org, approvalBy('USER', org.user('manager')));
      const { requestId } = await request(org, 'alice', appId);

      const commandId = uniqueId('cli-preview');
      const json = await runCli(backend, 'settings', 'preview', '--org', org.orgId, '--as', org.superAdminId, '--changes', '{"allowOrgManagedApps":false}', '--command-id', commandId, '--json');
      expect(json.stderr).toBe('');
      expect(json.code).toBe(0);
      const recorded = JSON.parse(json.stdout) as { outcome: string; commandType: string; details: { preview: ChangePreview } };
      expect(recorded).toMatchObject({ outcome: 'ACCEPTED', commandType: SETTINGS_PREVIEW });
      expect(recorded.details.preview).toMatchObject({ computedAgainstVersion: 1, wouldBeVersion: 2, wouldCloseTotal: 1 });
      expect(recorded.details.preview.wouldClose.map((entry) => entry.requestId)).toEqual([requestId]);
      // Published on the results topic like any command's result.
      const published = await probe.waitFor(resultFor(commandId), 'the result of the CLI preview');
      expect(published.data.preview).toEqual(recorded.details.preview);
      // The same command id again: the same result, recorded once.
      const again = await runCli(backend, 'settings', 'preview', '--org', org.orgId, '--as', org.superAdminId, '--changes', '{"allowOrgManagedApps":false}', '--command-id', commandId, '--json');
      expect(again.stdout).toBe(json.stdout);
      await expect(backend.db.processedCommand.count({ where: { commandId } })).resolves.toBe(1);

      const text = await runCli(backend, 'apps', 'preview-config', '--org', org.orgId, '--app', appId, '--as', org.superAdminId, '--config', '{"requestsEnabled":false,"approvalRequired":false}');
      expect(text.stderr).toBe('');
      expect(text.code).toBe(0);
      const lines = text.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(new RegExp(`^ACCEPTED configuration preview of app ${appId} in org ${org.orgId} by ${org.superAdminId} \\(command cli-[0-9a-f-]+\\)$`));
      expect(lines).toEqual(
        expect.arrayContaining([
          'computed against version 1: the change would make version 2, changing requestsEnabled, approvalRequired, approverSteps',
          'pending requests judged: 1',
          'would close 1 pending request as DELETED:',
          `  ${requestId}  app ${appId}  requester ${org.user('alice')}: requests for Label ${appId} were disabled`,
          'would re-route no request',
          'would turn off:',
          `to make this change: send ${CONFIGURE} with "expectedVersion": 1`,
        ]),
      );
      expect(text.stdout).toContain(`APP_REQUESTS (requestsEnabled of ${appId}): users can no longer request Label ${appId}`);

      const refused = await runCli(backend, 'settings', 'preview', '--org', org.orgId, '--as', org.user('enduser'), '--changes', '{"allowOrgManagedApps":false}');
      expect(refused.code).toBe(1);
      expect(refused.stdout).toMatch(new RegExp(`^REJECTED settings preview for org ${org.orgId} by ${org.user('enduser')}: NOT_AUTHORIZED: .+ \\(command cli-`));

      const badJson = await runCli(backend, 'apps', 'preview-config', '--org', org.orgId, '--app', appId, '--as', org.superAdminId, '--config', '{requestsEnabled');
      expect(badJson.code).toBe(2);
      expect(badJson.stderr).toContain('--config is not JSON');
      const missing = await runCli(backend, 'settings', 'preview', '--org', org.orgId, '--changes', '{}');
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('settings preview needs --as <adminId>');

      // Nothing changed.
      await expect(requestRow(requestId)).resolves.toMatchObject({ status: 'PENDING' });
      await expect(backend.db.orgSettings.findUniqueOrThrow({ where: { orgId: org.orgId } })).resolves.toMatchObject({ version: 1, allowOrgManagedApps: true });
      await expect(backend.db.appSelfServiceConfig.findUniqueOrThrow({ where: { appId } })).resolves.toMatchObject({ version: 1, requestsEnabled: true });
    });

    const HELP_OF = [['settings'], ['settings', 'preview'], ['apps'], ['apps', 'preview-config']];
    test.each(HELP_OF.map((command): [string, string[]] => [command.join(' '), command]))('%s --help prints its usage, options and an example', async (_name, command) => {
      const run = await runCli(backend, ...command, '--help');
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^usage: npm run cli -- /);
      expect(run.stdout).toContain('options:');
      expect(run.stdout).toMatch(/examples?:\n {2}npm run cli -- /);
    });
  });
});
