import { listAvailableApps } from '../../activities/read-models';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, expectRejected, seedOrg, type SeededOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { runCli } from '../support/cli';
import { uniqueId } from '../support/test-config';

/**
 * Per-app Self Service configuration (spec section 2): who may request an app and who approves it.
 * Commands on selfservice.admin-commands.v1, results on the command-results topic, the stored
 * configuration in PostgreSQL, the announcement on selfservice.settings.v1, and the Available Apps list
 * as the admin's screen (read model) and the CLI show it.
 */
describe('per-app Self Service configuration', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.settings, backend.topics.deadLetters]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const CONFIGURE = 'selfservice.app.self-service-configured.v1';
  const APP_CHANGED = 'selfservice.app.self-service-changed.v1';
  const ACCEPTED = 'selfservice.command.accepted.v1';

  interface Step {
    type: 'USER' | 'GROUP';
    id: string;
    timeout: { days: number };
    reminder?: { daysBefore: number };
  }

  interface Config {
    requestsEnabled: boolean;
    approvalRequired: boolean;
    noteForRequester?: string;
    approverSteps?: Step[];
    notifications?: Record<string, unknown>;
    fallbackApproverIds?: string[];
  }

  function org(options: { allowOrgManagedApps?: boolean } = {}): Promise<SeededOrg> {
    return seedOrg(commands, {
      allowOrgManagedApps: options.allowOrgManagedApps,
      users: ['appAdmin', 'readOnly', 'enduser', 'approver'],
      adminRoles: { appAdmin: ['APP_ADMIN'], readOnly: ['READ_ONLY_ADMIN'] },
    });
  }

  async function app(target: SeededOrg, options: { label?: string; catalogAppId?: string } = {}): Promise<string> {
    const appId = uniqueId('app');
    await commands.directory('org-app-upserted', {
      orgId: target.orgId,
      appId,
      label: options.label ?? `App ${appId}`,
      signOnMode: 'SAML',
      status: 'ACTIVE',
      ...(options.catalogAppId ? { catalogAppId: options.catalogAppId } : {}),
    });
    return appId;
  }

  /** Syncs `count` active users of the org in a row (without waiting for each), then waits for them all. */
  async function users(target: SeededOrg, count: number, status = 'ACTIVE'): Promise<string[]> {
    const ids = Array.from({ length: count }, () => uniqueId('approver'));
    const commandIds: string[] = [];
    for (const userId of ids) {
      commandIds.push(
        await sendCommand(backend.producer, backend.topics.directory, 'selfservice.directory.user-upserted.v1', {
          orgId: target.orgId,
          userId,
          email: `${userId}@${target.domain}`,
          status,
          adminRoles: [],
        }),
      );
    }
    for (const commandId of commandIds) {
      const result = await probe.waitFor(resultFor(commandId), `the user sync ${commandId}`, 60_000);
      expect(result.type).toBe(ACCEPTED);
    }
    return ids;
  }

  async function group(target: SeededOrg, memberIds: string[], groupId = uniqueId('group')): Promise<string> {
    await commands.directory('group-upserted', { orgId: target.orgId, groupId, name: `Approvers ${groupId}`, memberIds });
    return groupId;
  }

  function configure(target: SeededOrg, actorId: string, appId: string, config: Config, expectedVersion?: number): Promise<SeenRecord> {
    return commands.send('adminCommands', CONFIGURE, {
      orgId: target.orgId,
      actorId,
      appId,
      config,
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
    });
  }

  const userStep = (id: string, days = 7): Step => ({ type: 'USER', id, timeout: { days } });
  const approval = (steps: Step[], extra: Partial<Config> = {}): Config => ({ requestsEnabled: true, approvalRequired: true, approverSteps: steps, ...extra });
  const noApproval: Config = { requestsEnabled: true, approvalRequired: false };

  function expectAccepted(result: SeenRecord): void {
    expect({ type: result.type, code: result.data.code, message: result.data.message }).toEqual({ type: ACCEPTED, code: undefined, message: undefined });
  }


  async function stored(appId: string) {
    return backend.db.appSelfServiceConfig.findUnique({ where: { appId } });
  }

  async function auditOf(commandId: unknown) {
    return backend.db.auditEntry.findMany({ where: { commandId: String(commandId) } });
  }

  function appEvents(appId: string): SeenRecord[] {
    return probe.matching((record) => record.topic === backend.topics.settings && record.data.appId === appId);
  }

  function appEvent(appId: string, version: number): Promise<SeenRecord> {
    return probe.waitFor(
      (record) => record.topic === backend.topics.settings && record.data.appId === appId && record.data.version === version,
      `the configuration event of ${appId} version ${version}`,
    );
  }

  describe('who may configure', () => {
    test('a super admin and an app admin configure an app; a read-only admin, an end user and an admin of another org are rejected and audited', async () => {
      const target = await org();
      const appId = await app(target);

      const bySuperAdmin = await configure(target, target.superAdminId, appId, { ...noApproval, noteForRequester: 'Ask your manager first.' });
      expectAccepted(bySuperAdmin);
      expect(bySuperAdmin.data).toMatchObject({ commandType: CONFIGURE, orgId: target.orgId, appId, version: 1 });

      const steps = [{ ...userStep(target.user('approver'), 30), reminder: { daysBefore: 3 } }];
      const notifications = { onApprove: { requester: true }, onDeny: { requester: true, approvers: true }, onExpire: { others: ['it@example.com'] } };
      const byAppAdmin = await configure(target, target.user('appAdmin'), appId, approval(steps, { notifications }));
      expectAccepted(byAppAdmin);
      expect(byAppAdmin.data).toMatchObject({ version: 2 });
      const afterAppAdmin = await stored(appId);
      expect(afterAppAdmin).toMatchObject({
        orgId: target.orgId,
        requestsEnabled: true,
        approvalRequired: true,
        noteForRequester: null,
        approverSteps: steps,
        notifications,
        fallbackApproverIds: [],
        version: 2,
      });

      const stranger = await seedOrg(commands, { users: ['appAdmin'], adminRoles: { appAdmin: ['APP_ADMIN'] } });
      const outsiders: [string, RegExp][] = [
        [target.user('readOnly'), /has READ_ONLY_ADMIN; only a SUPER_ADMIN or APP_ADMIN may do this/],
        [target.user('enduser'), /has no admin role/],
        [stranger.user('appAdmin'), /belongs to another org/],
        [uniqueId('nobody'), /is not a user of org/],
      ];
      for (const [actorId, message] of outsiders) {
        const result = await configure(target, actorId, appId, { requestsEnabled: false, approvalRequired: false });
        expectRejected(result, 'NOT_AUTHORIZED', message);
        await expect(auditOf(result.data.commandId)).resolves.toEqual([
          expect.objectContaining({ orgId: target.orgId, actorId, action: 'app.self-service.configure', subject: appId, outcome: 'REJECTED', code: 'NOT_AUTHORIZED' }),
        ]);
      }
      await expect(stored(appId)).resolves.toEqual(afterAppAdmin);
      await expect(auditOf(byAppAdmin.data.commandId)).resolves.toEqual([
        expect.objectContaining({ actorId: target.user('appAdmin'), outcome: 'ACCEPTED', after: expect.objectContaining({ approverSteps: steps }) }),
      ]);
    });

    test('an app that is not an integration of the org is rejected APP_NOT_FOUND', async () => {
      const target = await org();
      const other = await org();
      const foreignApp = await app(other);
      expectRejected(await configure(target, target.superAdminId, uniqueId('app'), noApproval), 'APP_NOT_FOUND', /is not an app integration of org/);
      expectRejected(await configure(target, target.superAdminId, foreignApp, noApproval), 'APP_NOT_FOUND');
      await expect(stored(foreignApp)).resolves.toBeNull();
    });
  });

  describe('the approver chain', () => {
    test('10 approver steps are accepted, 11 are rejected TOO_MANY_APPROVER_STEPS, and approval with no step is rejected', async () => {
      const target = await org();
      const appId = await app(target);
      const approvers = await users(target, 11);

      const ten = await configure(target, target.superAdminId, appId, approval(approvers.slice(0, 10).map((id) => userStep(id))));
      expectAccepted(ten);
      const eleven = await configure(target, target.superAdminId, appId, approval(approvers.map((id) => userStep(id))));
      expectRejected(eleven, 'TOO_MANY_APPROVER_STEPS', '11 approver steps were given; at most 10 are allowed');
      const none = await configure(target, target.superAdminId, appId, approval([]));
      expectRejected(none, 'APPROVER_STEPS_REQUIRED', 'approval needs 1 to 10 approver steps');

      const row = await stored(appId);
      expect(row?.version).toBe(1);
      expect((row?.approverSteps as unknown as Step[]).map((step) => step.id)).toEqual(approvers.slice(0, 10));
      await expect(auditOf(eleven.data.commandId)).resolves.toEqual([expect.objectContaining({ outcome: 'REJECTED', code: 'TOO_MANY_APPROVER_STEPS' })]);
    });

    test('the same user or group twice in the chain is rejected DUPLICATE_APPROVER', async () => {
      const target = await org();
      const appId = await app(target);
      const [a, b] = await users(target, 2);
      const groupId = await group(target, [a!, b!]);

      const repeatedUser = await configure(target, target.superAdminId, appId, approval([userStep(a!), userStep(b!), userStep(a!)]));
      expectRejected(repeatedUser, 'DUPLICATE_APPROVER', `approver step 3 repeats USER ${a}; each user or group may appear once`);
      const groupStep: Step = { type: 'GROUP', id: groupId, timeout: { days: 7 } };
      const repeatedGroup = await configure(target, target.superAdminId, appId, approval([groupStep, userStep(a!), groupStep]));
      expectRejected(repeatedGroup, 'DUPLICATE_APPROVER', `approver step 3 repeats GROUP ${groupId}`);
      await expect(stored(appId)).resolves.toBeNull();

      expectAccepted(await configure(target, target.superAdminId, appId, approval([groupStep, userStep(a!)])));
    });

    test('an approver group of 101 members is rejected APPROVER_GROUP_TOO_LARGE; with 100 members it is accepted', async () => {
      const target = await org();
      const appId = await app(target);
      const members = await users(target, 101);
      const groupId = await group(target, members);
      const step: Step = { type: 'GROUP', id: groupId, timeout: { days: 7 } };

      const tooLarge = await configure(target, target.user('appAdmin'), appId, approval([step]));
      expectRejected(tooLarge, 'APPROVER_GROUP_TOO_LARGE', `approver step 1: group ${groupId} has 101 members; an approver group may have at most 100`);
      await expect(stored(appId)).resolves.toBeNull();

      await group(target, members.slice(1), groupId);
      const hundred = await configure(target, target.user('appAdmin'), appId, approval([step]));
      expectAccepted(hundred);
      await expect(stored(appId)).resolves.toMatchObject({ approvalRequired: true, approverSteps: [step], version: 1 });
    }, 240_000);

    test('approvers must be active users and non-empty groups of the org; fallback approvers too', async () => {
      const target = await org();
      const other = await org();
      const appId = await app(target);
      const [deactivated] = await users(target, 1, 'DEACTIVATED');
      const emptyGroup = await group(target, []);

      const cases: [Config, string, string][] = [
        [approval([userStep(uniqueId('nobody'))]), 'APPROVER_NOT_FOUND', 'approver step 1: user'],
        [approval([userStep(target.user('approver')), userStep(other.user('approver'))]), 'APPROVER_NOT_FOUND', 'approver step 2: user'],
        [approval([userStep(deactivated!)]), 'APPROVER_INACTIVE', `user ${deactivated} is DEACTIVATED; approvers must be active`],
        [approval([{ type: 'GROUP', id: uniqueId('group'), timeout: { days: 7 } }]), 'APPROVER_GROUP_NOT_FOUND', 'is not a group of org'],
        [approval([{ type: 'GROUP', id: emptyGroup, timeout: { days: 7 } }]), 'APPROVER_GROUP_EMPTY', 'has no members, so nobody could approve'],
        [approval([userStep(target.user('approver'))], { fallbackApproverIds: [deactivated!] }), 'FALLBACK_APPROVER_INVALID', `fallback approver ${deactivated}`],
      ];
      for (const [config, code, message] of cases) {
        expectRejected(await configure(target, target.superAdminId, appId, config), code, message);
      }
      await expect(stored(appId)).resolves.toBeNull();

      expectAccepted(
        await configure(target, target.superAdminId, appId, approval([userStep(target.user('approver'))], { fallbackApproverIds: [target.superAdminId] })),
      );
      await expect(stored(appId)).resolves.toMatchObject({ fallbackApproverIds: [target.superAdminId] });
    });

    test('step timeouts of 1 week, 30 days and custom 1-90 days are accepted; 0, 91 and fractions are rejected; a reminder must come before the timeout', async () => {
      const target = await org();
      const appId = await app(target);
      const approver = target.user('approver');

      for (const days of [7, 30, 1, 45, 90]) {
        const result = await configure(target, target.superAdminId, appId, approval([userStep(approver, days)]));
        expectAccepted(result);
        await expect(stored(appId)).resolves.toMatchObject({ approverSteps: [userStep(approver, days)] });
      }
      for (const days of [0, 91, -7, 2.5]) {
        const result = await configure(target, target.superAdminId, appId, approval([userStep(approver, days)]));
        expectRejected(result, 'INVALID_STEP_TIMEOUT', `approver step 1 times out after ${days} days; use 7 (1 week), 30, or a custom whole number of days from 1 to 90`);
      }
      await expect(stored(appId)).resolves.toMatchObject({ approverSteps: [userStep(approver, 90)], version: 5 });

      const withReminder = { ...userStep(approver, 7), reminder: { daysBefore: 2 } };
      expectAccepted(await configure(target, target.superAdminId, appId, approval([withReminder])));
      await expect(stored(appId)).resolves.toMatchObject({ approverSteps: [withReminder], version: 6 });
      for (const daysBefore of [7, 10, 0, 1.5]) {
        const result = await configure(target, target.superAdminId, appId, approval([{ ...userStep(approver, 7), reminder: { daysBefore } }]));
        expectRejected(result, 'INVALID_REMINDER', `reminds ${daysBefore} days before a 7-day timeout`);
      }
      await expect(stored(appId)).resolves.toMatchObject({ version: 6 });
    });

    test('an app whose catalog app requires personal attributes cannot use approval; without approval it can be requested', async () => {
      const target = await org();
      const catalogAppId = uniqueId('catalog');
      await commands.directory('catalog-app-upserted', { catalogAppId, name: 'Payroll', signOnModes: ['SAML'], requiresPersonalAttributes: true });
      const appId = await app(target, { catalogAppId });

      const refused = await configure(target, target.superAdminId, appId, approval([userStep(target.user('approver'))]));
      expectRejected(refused, 'APPROVAL_NOT_SUPPORTED_FOR_APP', `app ${appId} requires personal attributes, so it cannot use the approval workflow; turn approval off for it`);
      await expect(stored(appId)).resolves.toBeNull();

      expectAccepted(await configure(target, target.superAdminId, appId, noApproval));
      await expect(stored(appId)).resolves.toMatchObject({ requestsEnabled: true, approvalRequired: false });
    });
  });

  describe('the rest of the configuration', () => {
    test('a note for the requester of 500 characters is accepted and one of 501 is rejected NOTE_TOO_LONG', async () => {
      const target = await org();
      const appId = await app(target);
      const note = 'n'.repeat(500);

      expectAccepted(await configure(target, target.superAdminId, appId, { ...noApproval, noteForRequester: note }));
      const tooLong = await configure(target, target.superAdminId, appId, { ...noApproval, noteForRequester: `${note}!` });
      expectRejected(tooLong, 'NOTE_TOO_LONG', 'noteForRequester has 501 characters; at most 500 are allowed');
      await expect(stored(appId)).resolves.toMatchObject({ noteForRequester: note, version: 1 });
    });

    test('a note of 500 characters written with emoji and accents is accepted', async () => {
      const target = await org();
      const appId = await app(target);
      const note = `${'🙂'.repeat(100)}${'é'.repeat(400)}`;
      expect([...note]).toHaveLength(500);

      expectAccepted(await configure(target, target.superAdminId, appId, { ...noApproval, noteForRequester: note }));
      await expect(stored(appId)).resolves.toMatchObject({ noteForRequester: note });
    });

    test('enabling requests while the org does not allow org-managed apps is rejected, pointing to the Self Service settings', async () => {
      const target = await org({ allowOrgManagedApps: false });
      const appId = await app(target);

      const refused = await configure(target, target.superAdminId, appId, noApproval);
      expectRejected(refused, 'ORG_MANAGED_APP_REQUESTS_DISABLED', 'go to the Self Service settings');
      expect(refused.data.message).toContain('Allow users to add org-managed app integrations');
      await expect(auditOf(refused.data.commandId)).resolves.toEqual([expect.objectContaining({ outcome: 'REJECTED', code: 'ORG_MANAGED_APP_REQUESTS_DISABLED' })]);
      await expect(stored(appId)).resolves.toBeNull();

      // With requests off the app can still be prepared; once the switch is on, requests can be enabled.
      expectAccepted(await configure(target, target.superAdminId, appId, { requestsEnabled: false, approvalRequired: false, noteForRequester: 'Soon' }));
      await commands.accepted('adminCommands', 'selfservice.settings.update-requested.v1', {
        orgId: target.orgId,
        actorId: target.superAdminId,
        changes: { allowOrgManagedApps: true },
      });
      expectAccepted(await configure(target, target.superAdminId, appId, noApproval, 1));
      await expect(stored(appId)).resolves.toMatchObject({ requestsEnabled: true, version: 2 });
    });

    test('a change based on a stale expectedVersion is rejected STALE_VERSION and the newer configuration is kept', async () => {
      const target = await org();
      const appId = await app(target);
      expectAccepted(await configure(target, target.superAdminId, appId, { ...noApproval, noteForRequester: 'first' }, 0));

      const stale = await configure(target, target.user('appAdmin'), appId, { ...noApproval, noteForRequester: 'stale' }, 0);
      expectRejected(stale, 'STALE_VERSION', /is at version 1, but the change was based on version 0; reload and retry/);
      await expect(stored(appId)).resolves.toMatchObject({ noteForRequester: 'first', version: 1 });
      await expect(auditOf(stale.data.commandId)).resolves.toEqual([expect.objectContaining({ outcome: 'REJECTED', code: 'STALE_VERSION' })]);

      expectAccepted(await configure(target, target.user('appAdmin'), appId, { ...noApproval, noteForRequester: 'second' }, 1));
      await expect(stored(appId)).resolves.toMatchObject({ noteForRequester: 'second', version: 2 });
    });

    test('an accepted change is announced once on the settings topic with actor, version, before and after; a rejected one is not announced', async () => {
      const target = await org();
      const appId = await app(target);
      const steps = [userStep(target.user('approver'))];

      const first = await configure(target, target.superAdminId, appId, { ...noApproval, noteForRequester: 'hello' });
      expectAccepted(first);
      expectRejected(await configure(target, target.superAdminId, appId, approval([])), 'APPROVER_STEPS_REQUIRED');
      const second = await configure(target, target.user('appAdmin'), appId, approval(steps));
      expectAccepted(second);

      const v1 = await appEvent(appId, 1);
      expect(v1.type).toBe(APP_CHANGED);
      expect(v1.key).toBe(target.orgId);
      expect(v1.id).toBe(`${String(first.data.commandId)}:app-self-service-changed`);
      const firstView = {
        requestsEnabled: true,
        approvalRequired: false,
        noteForRequester: 'hello',
        approverSteps: [],
        notifications: {},
        fallbackApproverIds: [],
      };
      expect(v1.data).toEqual({ orgId: target.orgId, actorId: target.superAdminId, appId, version: 1, before: null, after: firstView });
      const v2 = await appEvent(appId, 2);
      expect(v2.data).toEqual({
        orgId: target.orgId,
        actorId: target.user('appAdmin'),
        appId,
        version: 2,
        before: firstView,
        after: { ...firstView, approvalRequired: true, noteForRequester: null, approverSteps: steps },
      });

      // A later change of another app of the org (same key) marks the end of this app's announcements.
      const marker = await app(target);
      expectAccepted(await configure(target, target.superAdminId, marker, noApproval));
      await appEvent(marker, 1);
      expect(appEvents(appId).map((event) => event.data.version)).toEqual([1, 2]);
    });

    test('a configuration that is not the contract shape goes to the dead-letter topic with a rejected result', async () => {
      const target = await org();
      const appId = await app(target);
      const result = await commands.send('adminCommands', CONFIGURE, {
        orgId: target.orgId,
        actorId: target.superAdminId,
        appId,
        config: { requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'ROLE', id: 'x', timeout: { days: 7 } }] },
      });
      expectRejected(result, 'INVALID_COMMAND', 'approver step type must be USER or GROUP');
      await probe.waitFor(
        (record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === result.data.commandId,
        'the dead letter of the invalid configuration',
      );
      await expect(stored(appId)).resolves.toBeNull();
    });
  });

  describe('Available Apps', () => {
    test('lists every active app with requests enabled and its Approval On/Off, in the read model and the CLI', async () => {
      const target = await org();
      const other = await org();
      const asana = await app(target, { label: 'Asana' });
      const box = await app(target, { label: 'Box' });
      const confluence = await app(target, { label: 'Confluence' });
      const dropbox = await app(target, { label: 'Dropbox' });
      const unconfigured = await app(target, { label: 'Evernote' });
      const foreign = await app(other, { label: 'Asana' });

      expectAccepted(await configure(target, target.superAdminId, asana, approval([userStep(target.user('approver'))], { noteForRequester: 'For PMs' })));
      expectAccepted(await configure(target, target.superAdminId, box, noApproval));
      expectAccepted(await configure(target, target.superAdminId, confluence, { requestsEnabled: false, approvalRequired: false }));
      expectAccepted(await configure(target, target.superAdminId, dropbox, noApproval));
      expectAccepted(await configure(other, other.superAdminId, foreign, noApproval));
      // Dropbox is deactivated in the directory: it cannot be requested any more.
      await commands.directory('org-app-upserted', { orgId: target.orgId, appId: dropbox, label: 'Dropbox', signOnMode: 'SAML', status: 'INACTIVE' });

      const listed = await listAvailableApps(backend.db, target.orgId);
      expect(listed).toEqual([
        { appId: asana, label: 'Asana', approval: 'On', noteForRequester: 'For PMs', approverSteps: 1 },
        { appId: box, label: 'Box', approval: 'Off', noteForRequester: null, approverSteps: 0 },
      ]);

      // Turning approval off shows at once.
      expectAccepted(await configure(target, target.user('appAdmin'), asana, noApproval));
      await expect(listAvailableApps(backend.db, target.orgId)).resolves.toEqual([
        expect.objectContaining({ appId: asana, approval: 'Off', approverSteps: 0 }),
        expect.objectContaining({ appId: box, approval: 'Off' }),
      ]);

      const run = await runCli(backend, 'available-apps', target.orgId);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const rows = run.stdout.split('\n').filter((line) => line.includes(asana) || line.includes(box));
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatch(new RegExp(`${asana}.*Asana.*Off`));
      expect(rows[1]).toMatch(new RegExp(`${box}.*Box.*Off`));
      for (const hidden of [confluence, dropbox, unconfigured, foreign]) expect(run.stdout).not.toContain(hidden);
      expect(run.stdout).toMatch(/appId.*label.*approval/);
    });
  });

});
