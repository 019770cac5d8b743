import { randomUUID } from 'node:crypto';
import { startTestBackend, type TestBackend } from '../support/backend';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { recordHistory } from '../support/histories';
import { uniqueId } from '../support/test-config';

/**
 * Personal app integrations and the move to Okta Personal, end to end: commands on Kafka, one
 * workflow per command on the real Temporal server, rows in PostgreSQL, results and dashboard
 * announcements read back from Kafka.
 */
describe('personal apps and the move to Okta Personal', () => {
  let backend: TestBackend;
  let probe: TopicProbe;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.dashboard, backend.topics.deadLetters]);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const ADD = 'selfservice.personal-app.add-requested.v1';
  const MOVE = 'selfservice.personal-app.move-requested.v1';

  async function resultOf(commandId: string): Promise<SeenRecord> {
    return probe.waitFor(resultFor(commandId), `the result of ${commandId}`, 60_000);
  }

  async function directory(type: string, data: Record<string, unknown>): Promise<void> {
    const commandId = await sendCommand(backend.producer, backend.topics.directory, type, data);
    const result = await resultOf(commandId);
    expect(result.data).toMatchObject({ commandType: type });
    expect(result.type).toBe('selfservice.command.accepted.v1');
  }

  async function changeSettings(orgId: string, actorId: string, changes: Record<string, boolean>): Promise<void> {
    const type = 'selfservice.settings.update-requested.v1';
    const commandId = await sendCommand(backend.producer, backend.topics.adminCommands, type, { orgId, actorId, changes });
    const result = await resultOf(commandId);
    expect(result.type).toBe('selfservice.command.accepted.v1');
  }

  interface Org {
    orgId: string;
    domain: string;
    adminId: string;
    userId: string;
  }

  /** An org with a super admin and an end user; switches as given (all off unless named). */
  async function seedOrg(
    switches: { allowPersonalApps?: boolean; allowMoveToOktaPersonal?: boolean } = {},
    migration = true,
  ): Promise<Org> {
    const orgId = uniqueId('org');
    const domain = `${orgId}.example`;
    const adminId = uniqueId('admin');
    const userId = uniqueId('user');
    await directory('selfservice.directory.org-upserted.v1', {
      orgId,
      name: `Org ${orgId}`,
      emailDomains: [domain],
      blockedPersonalDomains: ['blocked.example'],
      features: { PERSONAL_APP_MIGRATION: migration },
    });
    await directory('selfservice.directory.user-upserted.v1', {
      orgId,
      userId: adminId,
      email: `${adminId}@${domain}`,
      status: 'ACTIVE',
      adminRoles: ['SUPER_ADMIN'],
    });
    await directory('selfservice.directory.user-upserted.v1', { orgId, userId, email: `${userId}@${domain}`, status: 'ACTIVE', adminRoles: [] });
    const changes = Object.fromEntries(Object.entries(switches).filter(([, on]) => on !== undefined)) as Record<string, boolean>;
    if (Object.keys(changes).length > 0) await changeSettings(orgId, adminId, changes);
    return { orgId, domain, adminId, userId };
  }

  async function catalogApp(signOnModes: string[]): Promise<string> {
    const catalogAppId = uniqueId('catalog');
    await directory('selfservice.directory.catalog-app-upserted.v1', { catalogAppId, name: `App ${catalogAppId}`, signOnModes });
    return catalogAppId;
  }

  async function addApp(org: Org, catalogAppId: string, extra: Record<string, unknown> = {}, userId = org.userId) {
    const commandId = await sendCommand(backend.producer, backend.topics.userRequests, ADD, { orgId: org.orgId, userId, catalogAppId, ...extra });
    return { commandId, result: await resultOf(commandId) };
  }

  async function addedApp(org: Org, username?: string, userId = org.userId): Promise<string> {
    const { result } = await addApp(org, await catalogApp(['SWA']), username ? { username } : {}, userId);
    expect(result.type).toBe('selfservice.command.accepted.v1');
    return result.data.personalAppId as string;
  }

  function dashboardEvents(type: string, commandId: string): SeenRecord[] {
    return probe.matching((record) => record.topic === backend.topics.dashboard && record.type === type && record.id?.startsWith(`${commandId}:`) === true);
  }

  describe('adding a personal app', () => {
    test('a username + password catalog app becomes the user’s own tile and is announced on the dashboard', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const catalogAppId = await catalogApp(['SWA']);
      const { commandId, result } = await addApp(org, catalogAppId, { username: 'jane@personal.example' });

      expect(result.type).toBe('selfservice.command.accepted.v1');
      expect(result.data).toMatchObject({
        commandType: ADD,
        orgId: org.orgId,
        catalogAppId,
        alreadyAdded: false,
        workflowId: `personal-app-add-${commandId}`,
      });
      const personalAppId = result.data.personalAppId as string;
      const tile = await backend.db.personalApp.findUniqueOrThrow({ where: { id: personalAppId } });
      expect(tile).toMatchObject({
        orgId: org.orgId,
        userId: org.userId,
        catalogAppId,
        username: 'jane@personal.example',
        credentialsSet: false,
        onDashboard: true,
        status: 'ACTIVE',
      });

      const added = await probe.waitFor(
        (record) => record.type === 'selfservice.dashboard.personal-app-added.v1' && record.data.personalAppId === personalAppId,
        'the personal-app-added announcement',
      );
      expect(added.topic).toBe(backend.topics.dashboard);
      expect(added.data).toMatchObject({ orgId: org.orgId, userId: org.userId, personalAppId, catalogAppId, username: 'jane@personal.example' });
      const handle = backend.client.workflow.getHandle(`personal-app-add-${commandId}`);
      await handle.result();
      expect((await handle.describe()).status.name).toBe('COMPLETED');
      await recordHistory(handle, 'personal-app-added');
    });

    test('adding the same app twice keeps one tile: the second add is accepted as already added and not announced again', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const catalogAppId = await catalogApp(['SWA']);
      const first = await addApp(org, catalogAppId, { username: 'jane@personal.example' });
      const second = await addApp(org, catalogAppId, { username: 'jane@personal.example' });

      expect(second.result.type).toBe('selfservice.command.accepted.v1');
      expect(second.result.data).toMatchObject({ personalAppId: first.result.data.personalAppId, alreadyAdded: true });
      await expect(backend.db.personalApp.count({ where: { userId: org.userId, catalogAppId } })).resolves.toBe(1);
      await probe.waitFor((record) => record.id === `${first.commandId}:personal-app-added`, 'the first announcement');
      expect(dashboardEvents('selfservice.dashboard.personal-app-added.v1', second.commandId)).toHaveLength(0);
    });

    test('a SAML-only catalog app cannot be a personal app (APP_NEEDS_FEDERATION)', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const catalogAppId = await catalogApp(['SAML']);
      const { commandId, result } = await addApp(org, catalogAppId);

      expect(result.type).toBe('selfservice.command.rejected.v1');
      expect(result.data).toMatchObject({ code: 'APP_NEEDS_FEDERATION' });
      expect(result.data.message).toMatch(/SAML/);
      await expect(backend.db.personalApp.count({ where: { userId: org.userId } })).resolves.toBe(0);
      const audit = await backend.db.auditEntry.findFirstOrThrow({ where: { commandId } });
      expect(audit).toMatchObject({ orgId: org.orgId, actorId: org.userId, action: 'personal-app.add', outcome: 'REJECTED', code: 'APP_NEEDS_FEDERATION' });
    });

    test('an app that offers username + password and OIDC still needs federation, and a bookmark needs an admin', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const mixed = await addApp(org, await catalogApp(['SWA', 'OIDC']));
      expect(mixed.result.data).toMatchObject({ code: 'APP_NEEDS_FEDERATION' });
      const bookmark = await addApp(org, await catalogApp(['BOOKMARK']));
      expect(bookmark.result.data).toMatchObject({ code: 'APP_NEEDS_ADMIN_CONFIGURATION' });
    });

    test('an app the org manages cannot be added as a personal app (APP_MANAGED_BY_ORG)', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const catalogAppId = await catalogApp(['SWA']);
      const appId = uniqueId('org-app');
      await directory('selfservice.directory.org-app-upserted.v1', {
        orgId: org.orgId,
        appId,
        label: 'Managed by the org',
        signOnMode: 'SWA',
        status: 'ACTIVE',
        catalogAppId,
      });
      const { result } = await addApp(org, catalogAppId);

      expect(result.type).toBe('selfservice.command.rejected.v1');
      expect(result.data).toMatchObject({ code: 'APP_MANAGED_BY_ORG' });
      expect(result.data.message).toContain(appId);
      await expect(backend.db.personalApp.count({ where: { userId: org.userId } })).resolves.toBe(0);
    });

    test('with the personal-apps switch off nothing is added (PERSONAL_APPS_DISABLED), and turning it off stops the next add at once', async () => {
      const off = await seedOrg();
      const rejected = await addApp(off, await catalogApp(['SWA']));
      expect(rejected.result.data).toMatchObject({ code: 'PERSONAL_APPS_DISABLED' });
      expect(rejected.result.data.message).toMatch(/allowPersonalApps/);

      const org = await seedOrg({ allowPersonalApps: true });
      const accepted = await addApp(org, await catalogApp(['SWA']));
      expect(accepted.result.type).toBe('selfservice.command.accepted.v1');
      await changeSettings(org.orgId, org.adminId, { allowPersonalApps: false });
      const afterOff = await addApp(org, await catalogApp(['SWA']));
      expect(afterOff.result.data).toMatchObject({ code: 'PERSONAL_APPS_DISABLED' });
      await expect(backend.db.personalApp.count({ where: { userId: org.userId } })).resolves.toBe(1);
    });

    test('an unknown catalog app, an unknown user and a suspended user are refused with their own codes', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const unknownApp = await addApp(org, uniqueId('no-such-app'));
      expect(unknownApp.result.data).toMatchObject({ code: 'CATALOG_APP_NOT_FOUND' });

      const unknownUser = await addApp(org, await catalogApp(['SWA']), {}, uniqueId('stranger'));
      expect(unknownUser.result.data).toMatchObject({ code: 'USER_NOT_FOUND' });

      await directory('selfservice.directory.user-upserted.v1', {
        orgId: org.orgId,
        userId: org.userId,
        email: `${org.userId}@${org.domain}`,
        status: 'SUSPENDED',
        adminRoles: [],
      });
      const suspended = await addApp(org, await catalogApp(['SWA']));
      expect(suspended.result.data).toMatchObject({ code: 'USER_NOT_ACTIVE' });
    });

    test('a password in the command is refused at the door and stored nowhere', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const catalogAppId = await catalogApp(['SWA']);
      const { commandId, result } = await addApp(org, catalogAppId, { username: 'jane@personal.example', password: 'hunter2' });

      expect(result.data).toMatchObject({ code: 'INVALID_COMMAND' });
      expect(result.data.message).toMatch(/never a password/);
      await probe.waitFor((record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === commandId, 'the dead letter');
      await expect(backend.db.personalApp.count({ where: { userId: org.userId } })).resolves.toBe(0);
    });

    test('the same add command delivered twice has one effect and one result', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const catalogAppId = await catalogApp(['SWA']);
      const id = randomUUID();
      const data = { orgId: org.orgId, userId: org.userId, catalogAppId, username: 'jane@personal.example' };
      await sendCommand(backend.producer, backend.topics.userRequests, ADD, data, { id });
      await sendCommand(backend.producer, backend.topics.userRequests, ADD, data, { id });
      // A later command on the same partition (same key) proves both copies were consumed.
      const marker = await addApp(org, await catalogApp(['SAML']));
      expect(marker.result.type).toBe('selfservice.command.rejected.v1');
      await resultOf(id);
      await probe.waitFor((record) => record.id === `${id}:personal-app-added`, 'the announcement');

      expect(probe.matching(resultFor(id))).toHaveLength(1);
      expect(dashboardEvents('selfservice.dashboard.personal-app-added.v1', id)).toHaveLength(1);
      await expect(backend.db.personalApp.count({ where: { userId: org.userId, catalogAppId } })).resolves.toBe(1);
      await expect(backend.db.processedCommand.count({ where: { commandId: id } })).resolves.toBe(1);
    });
  });

  describe('moving personal apps to Okta Personal', () => {
    async function move(org: Org, personalAppIds: string[], removeFromDashboard?: boolean, options: { id?: string } = {}) {
      const commandId = await sendCommand(
        backend.producer,
        backend.topics.userRequests,
        MOVE,
        { orgId: org.orgId, userId: org.userId, personalAppIds, ...(removeFromDashboard === undefined ? {} : { removeFromDashboard }) },
        options,
      );
      return { commandId, result: await resultOf(commandId) };
    }

    test('of three apps, one on the org domain and one org-managed, only the personal one moves; the others are refused with reasons', async () => {
      const org = await seedOrg({ allowPersonalApps: true, allowMoveToOktaPersonal: true });
      const personal = await addedApp(org, 'jane@personal.example');
      const onOrgDomain = await addedApp(org, `jane@${org.domain}`);
      const orgAppId = uniqueId('org-app');
      await directory('selfservice.directory.org-app-upserted.v1', {
        orgId: org.orgId,
        appId: orgAppId,
        label: 'Org-managed',
        signOnMode: 'SAML',
        status: 'ACTIVE',
      });

      const { commandId, result } = await move(org, [personal, onOrgDomain, orgAppId], true);

      const expected = [
        { personalAppId: personal, outcome: 'MOVED' },
        { personalAppId: onOrgDomain, outcome: 'NOT_ELIGIBLE', reason: 'ORG_EMAIL_DOMAIN' },
        { personalAppId: orgAppId, outcome: 'NOT_ELIGIBLE', reason: 'ORG_MANAGED_APP' },
      ];
      expect(result.type).toBe('selfservice.command.accepted.v1');
      expect(result.data).toMatchObject({ commandType: MOVE, moved: 1, notEligible: 2, workflowId: `personal-app-move-${commandId}` });
      expect(result.data.results).toMatchObject(expected);

      const announced = await probe.waitFor((record) => record.id === `${commandId}:personal-apps-moved`, 'the personal-apps-moved announcement');
      expect(announced.topic).toBe(backend.topics.dashboard);
      expect(announced.type).toBe('selfservice.dashboard.personal-apps-moved.v1');
      expect(announced.data).toMatchObject({ orgId: org.orgId, userId: org.userId, results: expected });
      expect(announced.data.exported).toEqual([expect.objectContaining({ personalAppId: personal, username: 'jane@personal.example' })]);

      await expect(backend.db.personalApp.findUniqueOrThrow({ where: { id: personal } })).resolves.toMatchObject({
        status: 'MOVED',
        onDashboard: false,
        movedAt: expect.any(Date),
      });
      await expect(backend.db.personalApp.findUniqueOrThrow({ where: { id: onOrgDomain } })).resolves.toMatchObject({
        status: 'ACTIVE',
        onDashboard: true,
      });
      const handle = backend.client.workflow.getHandle(`personal-app-move-${commandId}`);
      await handle.result();
      await recordHistory(handle, 'personal-apps-moved');
    });

    test('without removeFromDashboard the moved tile stays on the dashboard; moving it again is refused as already moved', async () => {
      const org = await seedOrg({ allowPersonalApps: true, allowMoveToOktaPersonal: true });
      const personal = await addedApp(org, 'jane@personal.example');
      const first = await move(org, [personal]);
      expect(first.result.data.results).toEqual([{ personalAppId: personal, outcome: 'MOVED' }]);
      await expect(backend.db.personalApp.findUniqueOrThrow({ where: { id: personal } })).resolves.toMatchObject({
        status: 'MOVED',
        onDashboard: true,
      });

      const again = await move(org, [personal]);
      expect(again.result.data.results).toMatchObject([{ personalAppId: personal, outcome: 'NOT_ELIGIBLE', reason: 'ALREADY_MOVED' }]);
    });

    test('blocked domains, missing usernames, non-email usernames, unknown ids and other users’ apps are not eligible', async () => {
      const org = await seedOrg({ allowPersonalApps: true, allowMoveToOktaPersonal: true });
      const otherUser = uniqueId('user');
      await directory('selfservice.directory.user-upserted.v1', {
        orgId: org.orgId,
        userId: otherUser,
        email: `${otherUser}@${org.domain}`,
        status: 'ACTIVE',
        adminRoles: [],
      });
      const blocked = await addedApp(org, 'jane@blocked.example');
      const noUsername = await addedApp(org);
      const notEmail = await addedApp(org, 'jane');
      const othersApp = await addedApp(org, 'bob@personal.example', otherUser);
      const unknown = uniqueId('pa');

      const { result } = await move(org, [blocked, noUsername, notEmail, othersApp, unknown, blocked]);

      expect(result.type).toBe('selfservice.command.accepted.v1');
      expect(result.data).toMatchObject({ moved: 0, notEligible: 5 });
      expect(result.data.results).toMatchObject([
        { personalAppId: blocked, reason: 'BLOCKED_DOMAIN' },
        { personalAppId: noUsername, reason: 'NO_USERNAME' },
        { personalAppId: notEmail, reason: 'USERNAME_NOT_AN_EMAIL' },
        { personalAppId: othersApp, reason: 'NOT_ADDED_BY_USER' },
        { personalAppId: unknown, reason: 'PERSONAL_APP_NOT_FOUND' },
      ]);
      await expect(backend.db.personalApp.count({ where: { orgId: org.orgId, status: 'MOVED' } })).resolves.toBe(0);
    });

    test('with the move switch off the move is refused (MOVE_TO_OKTA_PERSONAL_DISABLED) and nothing moves', async () => {
      const org = await seedOrg({ allowPersonalApps: true });
      const personal = await addedApp(org, 'jane@personal.example');
      const { commandId, result } = await move(org, [personal]);

      expect(result.type).toBe('selfservice.command.rejected.v1');
      expect(result.data).toMatchObject({ code: 'MOVE_TO_OKTA_PERSONAL_DISABLED' });
      expect(result.data.message).toMatch(/allowMoveToOktaPersonal/);
      await expect(backend.db.personalApp.findUniqueOrThrow({ where: { id: personal } })).resolves.toMatchObject({ status: 'ACTIVE' });
      expect(dashboardEvents('selfservice.dashboard.personal-apps-moved.v1', commandId)).toHaveLength(0);
    });

    test('when support withdraws the PERSONAL_APP_MIGRATION flag, moves stop (PERSONAL_APP_MIGRATION_NOT_ENABLED)', async () => {
      const org = await seedOrg({ allowPersonalApps: true, allowMoveToOktaPersonal: true });
      const personal = await addedApp(org, 'jane@personal.example');
      await directory('selfservice.directory.org-upserted.v1', {
        orgId: org.orgId,
        name: `Org ${org.orgId}`,
        emailDomains: [org.domain],
        blockedPersonalDomains: ['blocked.example'],
        features: { PERSONAL_APP_MIGRATION: false },
      });
      const { result } = await move(org, [personal]);

      expect(result.data).toMatchObject({ code: 'PERSONAL_APP_MIGRATION_NOT_ENABLED' });
      expect(result.data.message).toMatch(/PERSONAL_APP_MIGRATION/);
      await expect(backend.db.personalApp.findUniqueOrThrow({ where: { id: personal } })).resolves.toMatchObject({ status: 'ACTIVE' });
    });

    test('the same move command delivered twice has one effect and one result', async () => {
      const org = await seedOrg({ allowPersonalApps: true, allowMoveToOktaPersonal: true });
      const personal = await addedApp(org, 'jane@personal.example');
      const id = randomUUID();
      const data = { orgId: org.orgId, userId: org.userId, personalAppIds: [personal], removeFromDashboard: true };
      await sendCommand(backend.producer, backend.topics.userRequests, MOVE, data, { id });
      await sendCommand(backend.producer, backend.topics.userRequests, MOVE, data, { id });
      const marker = await move(org, [uniqueId('pa')]);
      const result = await resultOf(id);
      await probe.waitFor((record) => record.id === `${id}:personal-apps-moved`, 'the announcement');

      expect(marker.result.type).toBe('selfservice.command.accepted.v1');
      expect(result.data.results).toEqual([{ personalAppId: personal, outcome: 'MOVED' }]);
      expect(probe.matching(resultFor(id))).toHaveLength(1);
      expect(dashboardEvents('selfservice.dashboard.personal-apps-moved.v1', id)).toHaveLength(1);
      await expect(backend.db.processedCommand.count({ where: { commandId: id } })).resolves.toBe(1);
    });
  });
});
