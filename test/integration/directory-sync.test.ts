import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IHeaders } from 'kafkajs';
import { encodeCloudEvent } from '../../events/cloudevents';
import { DeadLetterHeaders } from '../../events/dead-letters';
import type { TopicName } from '../../events/topics';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { runCli } from '../support/cli';
import { uniqueId } from '../support/test-config';

/**
 * Directory sync (spec section 5): orgs, users, groups, the app catalog and the org's app integrations
 * arrive on selfservice.directory.v1 (or through the JSON import CLI), are validated, written to
 * PostgreSQL by the ingress in batches (one transaction each), answered on the command-results topic, and user / group
 * changes are announced on the internal directory-changes topic.
 */
describe('directory sync', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  const workDir = mkdtempSync(path.join(tmpdir(), 'directory-sync-'));

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [
      backend.topics.commandResults,
      backend.topics.directoryChanges,
      backend.topics.deadLetters,
      backend.topics.settings,
    ]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const type = (name: string) => `selfservice.directory.${name}.v1`;
  const ACCEPTED = 'selfservice.command.accepted.v1';
  const REJECTED = 'selfservice.command.rejected.v1';
  const USER_CHANGED = 'selfservice.directory.user-changed.v1';
  const GROUP_CHANGED = 'selfservice.directory.group-changed.v1';

  function expectRejected(result: SeenRecord, code: string, message?: RegExp): void {
    expect({ type: result.type, code: result.data.code }).toEqual({ type: REJECTED, code });
    expect(typeof result.data.message).toBe('string');
    if (message) expect(result.data.message).toMatch(message);
  }

  /** Publishes several commands in a row (no waiting in between), then waits for every result, in order. */
  async function sendInARow(entries: { topic?: TopicName; type: string; data: Record<string, unknown> }[]): Promise<SeenRecord[]> {
    const ids: string[] = [];
    for (const entry of entries) {
      ids.push(await sendCommand(backend.producer, backend.topics[entry.topic ?? 'directory'], entry.type, entry.data));
    }
    const results: SeenRecord[] = [];
    for (const [index, id] of ids.entries()) {
      results.push(await probe.waitFor(resultFor(id), `the result of ${entries[index]!.type} ${id}`, 60_000));
    }
    return results;
  }

  function directoryChanges(orgId: string): SeenRecord[] {
    return probe.matching((record) => record.topic === backend.topics.directoryChanges && record.data.orgId === orgId);
  }

  /**
   * Deactivates a throw-away user of the org and waits for its announcement. Announcements of one org
   * share a key, so once the marker is seen every earlier announcement of the org has been seen too.
   */
  async function flushDirectoryChanges(orgId: string, domain: string): Promise<void> {
    const marker = uniqueId('marker');
    const user = { orgId, userId: marker, email: `${marker}@${domain}`, status: 'ACTIVE', adminRoles: [] };
    await commands.directory('user-upserted', user);
    await commands.directory('user-upserted', { ...user, status: 'DEACTIVATED' });
    await probe.waitFor(
      (record) => record.topic === backend.topics.directoryChanges && record.data.userId === marker,
      'the marker announcement',
    );
  }

  async function seedDirectoryOrg(): Promise<{ orgId: string; domain: string }> {
    const orgId = uniqueId('org');
    const domain = `${orgId}.example`;
    await commands.directory('org-upserted', { orgId, name: `Org ${orgId}`, emailDomains: [domain] });
    return { orgId, domain };
  }

  async function user(orgId: string, domain: string, name: string, extra: Record<string, unknown> = {}): Promise<string> {
    const userId = uniqueId(name);
    await commands.directory('user-upserted', { orgId, userId, email: `${userId}@${domain}`, status: 'ACTIVE', adminRoles: [], ...extra });
    return userId;
  }

  async function memberIds(groupId: string): Promise<string[]> {
    const rows = await backend.db.groupMember.findMany({ where: { groupId }, orderBy: { userId: 'asc' } });
    return rows.map((row) => row.userId);
  }

  function withoutUpdatedAt<T extends { updatedAt: Date }>(row: T): Omit<T, 'updatedAt'> {
    const copy: Partial<T> = { ...row };
    delete copy.updatedAt;
    return copy as Omit<T, 'updatedAt'>;
  }

  async function snapshotDirectory(ids: { orgId: string; userIds: string[]; groupId: string; catalogAppId: string; appId: string }) {
    return {
      org: withoutUpdatedAt(await backend.db.org.findUniqueOrThrow({ where: { id: ids.orgId } })),
      settings: withoutUpdatedAt(await backend.db.orgSettings.findUniqueOrThrow({ where: { orgId: ids.orgId } })),
      users: (await backend.db.user.findMany({ where: { id: { in: ids.userIds } }, orderBy: { id: 'asc' } })).map(withoutUpdatedAt),
      group: withoutUpdatedAt(await backend.db.group.findUniqueOrThrow({ where: { id: ids.groupId } })),
      members: await memberIds(ids.groupId),
      catalogApp: withoutUpdatedAt(await backend.db.catalogApp.findUniqueOrThrow({ where: { id: ids.catalogAppId } })),
      app: withoutUpdatedAt(await backend.db.orgApp.findUniqueOrThrow({ where: { id: ids.appId } })),
    };
  }

  describe('upserts through Kafka', () => {
    test('an org, its users, a group, a catalog app and an org app are written as sent, and sending the same data twice changes nothing', async () => {
      const orgId = uniqueId('org');
      const domain = `${orgId}.example`;
      const [adminId, aliceId, bobId, groupId, catalogAppId, appId] = ['admin', 'alice', 'bob', 'group', 'catalog', 'app'].map(uniqueId) as [
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      const sync = [
        {
          type: type('catalog-app-upserted'),
          data: { catalogAppId, name: 'Expensify', signOnModes: ['SAML', 'SWA'], requiresPersonalAttributes: true },
        },
        {
          type: type('org-upserted'),
          data: {
            orgId,
            name: 'Acme Corp',
            emailDomains: [domain, `mail.${domain}`],
            blockedPersonalDomains: ['competitor.example'],
            features: { PERSONAL_APP_MIGRATION: true },
          },
        },
        {
          type: type('user-upserted'),
          data: { orgId, userId: adminId, email: `Admin.${adminId}@${domain}`, displayName: 'Ada Admin', status: 'ACTIVE', adminRoles: ['SUPER_ADMIN', 'APP_ADMIN'] },
        },
        { type: type('user-upserted'), data: { orgId, userId: aliceId, email: `${aliceId}@${domain}`, status: 'ACTIVE', adminRoles: [] } },
        { type: type('user-upserted'), data: { orgId, userId: bobId, email: `${bobId}@${domain}`, status: 'SUSPENDED', adminRoles: ['READ_ONLY_ADMIN'] } },
        { type: type('group-upserted'), data: { orgId, groupId, name: 'Finance approvers', memberIds: [aliceId, bobId] } },
        { type: type('org-app-upserted'), data: { orgId, appId, label: 'Expenses', signOnMode: 'SAML', status: 'ACTIVE', catalogAppId } },
      ];

      // The catalog is not keyed by org, so it may land on another partition: it is synced first, on its own.
      const syncInOrder = async () => [...(await sendInARow(sync.slice(0, 1))), ...(await sendInARow(sync.slice(1)))];
      const first = await syncInOrder();
      expect(first.map((result) => result.type)).toEqual(sync.map(() => ACCEPTED));
      expect(first.map((result) => result.data.commandType)).toEqual(sync.map((entry) => entry.type));

      await expect(backend.db.org.findUniqueOrThrow({ where: { id: orgId } })).resolves.toMatchObject({
        name: 'Acme Corp',
        emailDomains: [domain, `mail.${domain}`],
        blockedPersonalDomains: ['competitor.example'],
        personalAppMigration: true,
      });
      // Every org starts with all four Self Service switches off, at version 0.
      await expect(backend.db.orgSettings.findUniqueOrThrow({ where: { orgId } })).resolves.toMatchObject({
        allowOrgManagedApps: false,
        allowPersonalApps: false,
        allowTechnicalContactRequests: false,
        allowMoveToOktaPersonal: false,
        technicalContactUserId: null,
        version: 0,
      });
      await expect(backend.db.user.findUniqueOrThrow({ where: { id: adminId } })).resolves.toMatchObject({
        orgId,
        email: `admin.${adminId}@${domain}`.toLowerCase(),
        displayName: 'Ada Admin',
        status: 'ACTIVE',
        adminRoles: ['SUPER_ADMIN', 'APP_ADMIN'],
      });
      await expect(backend.db.user.findUniqueOrThrow({ where: { id: bobId } })).resolves.toMatchObject({
        status: 'SUSPENDED',
        adminRoles: ['READ_ONLY_ADMIN'],
      });
      await expect(backend.db.group.findUniqueOrThrow({ where: { id: groupId } })).resolves.toMatchObject({ orgId, name: 'Finance approvers' });
      await expect(memberIds(groupId)).resolves.toEqual([aliceId, bobId].sort());
      await expect(backend.db.catalogApp.findUniqueOrThrow({ where: { id: catalogAppId } })).resolves.toMatchObject({
        name: 'Expensify',
        signOnModes: ['SAML', 'SWA'],
        requiresPersonalAttributes: true,
      });
      await expect(backend.db.orgApp.findUniqueOrThrow({ where: { id: appId } })).resolves.toMatchObject({
        orgId,
        label: 'Expenses',
        signOnMode: 'SAML',
        status: 'ACTIVE',
        catalogAppId,
      });

      // The org's settings survive a later re-sync of the org.
      await commands.accepted('adminCommands', 'selfservice.settings.update-requested.v1', {
        orgId,
        actorId: adminId,
        changes: { allowOrgManagedApps: true },
      });
      const ids = { orgId, userIds: [adminId, aliceId, bobId], groupId, catalogAppId, appId };
      const before = await snapshotDirectory(ids);

      // The same data again, as new events (new ce_ids): all accepted, nothing changes, nothing is announced.
      const second = await syncInOrder();
      expect(second.map((result) => result.type)).toEqual(sync.map(() => ACCEPTED));
      await expect(snapshotDirectory(ids)).resolves.toEqual(before);
      expect(before.settings).toMatchObject({ allowOrgManagedApps: true, version: 1 });

      await flushDirectoryChanges(orgId, domain);
      expect(directoryChanges(orgId).map((record) => record.data.userId ?? record.data.groupId)).toEqual([expect.stringMatching(/^marker-/)]);
    });

    test('several upserts of one org sent in a row end in the state of the last one', async () => {
      const { orgId, domain } = await seedDirectoryOrg();
      const userId = uniqueId('user');
      const appId = uniqueId('app');
      const userData = (status: string, n: number) => ({ orgId, userId, email: `v${n}.${userId}@${domain}`, displayName: `Version ${n}`, status, adminRoles: [] });
      const statuses = ['ACTIVE', 'SUSPENDED', 'ACTIVE', 'DEACTIVATED', 'ACTIVE', 'SUSPENDED'];
      const entries = [
        ...statuses.map((status, n) => ({ type: type('user-upserted'), data: userData(status, n) })),
        ...[1, 2, 3, 4].map((n) => ({
          type: type('org-app-upserted'),
          data: { orgId, appId, label: `Label ${n}`, signOnMode: n % 2 ? 'SAML' : 'OIDC', status: n % 2 ? 'ACTIVE' : 'INACTIVE' },
        })),
        ...[1, 2, 3].map((n) => ({ type: type('org-upserted'), data: { orgId, name: `Name ${n}`, emailDomains: [domain, `d${n}.${domain}`] } })),
      ];

      const results = await sendInARow(entries);
      expect(results.map((result) => result.type)).toEqual(entries.map(() => ACCEPTED));

      await expect(backend.db.user.findUniqueOrThrow({ where: { id: userId } })).resolves.toMatchObject({
        email: `v5.${userId}@${domain}`,
        displayName: 'Version 5',
        status: 'SUSPENDED',
      });
      await expect(backend.db.orgApp.findUniqueOrThrow({ where: { id: appId } })).resolves.toMatchObject({
        label: 'Label 4',
        signOnMode: 'OIDC',
        status: 'INACTIVE',
      });
      await expect(backend.db.org.findUniqueOrThrow({ where: { id: orgId } })).resolves.toMatchObject({
        name: 'Name 3',
        emailDomains: [domain, `d3.${domain}`],
      });

      // Every status change was announced, in the order it happened.
      await flushDirectoryChanges(orgId, domain);
      const transitions = directoryChanges(orgId)
        .filter((record) => record.data.userId === userId)
        .map((record) => `${String(record.data.previousStatus)}->${String(record.data.status)}`);
      expect(transitions).toEqual(['ACTIVE->SUSPENDED', 'SUSPENDED->ACTIVE', 'ACTIVE->DEACTIVATED', 'DEACTIVATED->ACTIVE', 'ACTIVE->SUSPENDED']);
    });

    test('a user, group or app id that belongs to another org is rejected and stays with its org', async () => {
      const first = await seedDirectoryOrg();
      const second = await seedDirectoryOrg();
      const userId = await user(first.orgId, first.domain, 'user');
      const groupId = uniqueId('group');
      const appId = uniqueId('app');
      await commands.directory('group-upserted', { orgId: first.orgId, groupId, name: 'G', memberIds: [userId] });
      await commands.directory('org-app-upserted', { orgId: first.orgId, appId, label: 'A', signOnMode: 'SAML', status: 'ACTIVE' });

      const results = await sendInARow([
        { type: type('user-upserted'), data: { orgId: second.orgId, userId, email: `${userId}@${second.domain}`, status: 'ACTIVE', adminRoles: ['SUPER_ADMIN'] } },
        { type: type('group-upserted'), data: { orgId: second.orgId, groupId, name: 'Stolen', memberIds: [] } },
        { type: type('org-app-upserted'), data: { orgId: second.orgId, appId, label: 'Stolen', signOnMode: 'SAML', status: 'ACTIVE' } },
      ]);
      expectRejected(results[0]!, 'USER_BELONGS_TO_ANOTHER_ORG', new RegExp(`belongs to org ${first.orgId}`));
      expectRejected(results[1]!, 'GROUP_BELONGS_TO_ANOTHER_ORG', new RegExp(`belongs to org ${first.orgId}`));
      expectRejected(results[2]!, 'APP_BELONGS_TO_ANOTHER_ORG', new RegExp(`belongs to org ${first.orgId}`));

      // The same ids sent for an org that is not synced yet: refused as well, and no placeholder org is left behind.
      const ghostOrgId = uniqueId('ghost-org');
      const ghost = await sendInARow([
        { type: type('user-upserted'), data: { orgId: ghostOrgId, userId, email: `${userId}@ghost.example`, status: 'ACTIVE', adminRoles: [] } },
        { type: type('group-upserted'), data: { orgId: ghostOrgId, groupId, name: 'Stolen', memberIds: [] } },
        { type: type('org-app-upserted'), data: { orgId: ghostOrgId, appId, label: 'Stolen', signOnMode: 'SAML', status: 'ACTIVE' } },
      ]);
      expectRejected(ghost[0]!, 'USER_BELONGS_TO_ANOTHER_ORG', new RegExp(`belongs to org ${first.orgId}, not ${ghostOrgId}`));
      expectRejected(ghost[1]!, 'GROUP_BELONGS_TO_ANOTHER_ORG', new RegExp(`belongs to org ${first.orgId}`));
      expectRejected(ghost[2]!, 'APP_BELONGS_TO_ANOTHER_ORG', new RegExp(`belongs to org ${first.orgId}`));
      await expect(backend.db.org.count({ where: { id: ghostOrgId } })).resolves.toBe(0);

      // A group of another org that lists the user (a user of this org cannot be a member there).
      const foreignGroupId = uniqueId('group');
      await commands.directory('group-upserted', { orgId: second.orgId, groupId: foreignGroupId, name: 'Foreign', memberIds: [] });
      const foreignMember = await commands.send('directory', type('group-upserted'), {
        orgId: second.orgId,
        groupId: foreignGroupId,
        name: 'Foreign renamed',
        memberIds: [uniqueId('not-synced-yet'), userId],
      });
      expectRejected(foreignMember, 'GROUP_MEMBER_BELONGS_TO_ANOTHER_ORG', new RegExp(`lists users of another org: ${userId} \\(org ${first.orgId}\\)$`));
      await expect(backend.db.group.findUniqueOrThrow({ where: { id: foreignGroupId } })).resolves.toMatchObject({ name: 'Foreign' });
      await expect(memberIds(foreignGroupId)).resolves.toEqual([]);

      await expect(backend.db.user.findUniqueOrThrow({ where: { id: userId } })).resolves.toMatchObject({ orgId: first.orgId, adminRoles: [] });
      await expect(backend.db.group.findUniqueOrThrow({ where: { id: groupId } })).resolves.toMatchObject({ orgId: first.orgId, name: 'G' });
      await expect(memberIds(groupId)).resolves.toEqual([userId]);
      await expect(backend.db.orgApp.findUniqueOrThrow({ where: { id: appId } })).resolves.toMatchObject({ orgId: first.orgId, label: 'A' });
    });

    test('an upsert with invalid data goes to the dead-letter topic with a rejected result naming the field, and writes nothing', async () => {
      const { orgId, domain } = await seedDirectoryOrg();
      const userId = uniqueId('user');
      const base = { orgId, userId, email: `${userId}@${domain}`, status: 'ACTIVE', adminRoles: [] };

      const badEmail = await commands.send('directory', type('user-upserted'), { ...base, email: 'not-an-email' });
      expectRejected(badEmail, 'INVALID_COMMAND', /data\.email: must be a valid email address/);
      const badStatus = await commands.send('directory', type('user-upserted'), { ...base, status: 'GONE' });
      expectRejected(badStatus, 'INVALID_COMMAND', /data\.status: status must be one of ACTIVE, SUSPENDED, DEACTIVATED/);
      const badRole = await commands.send('directory', type('user-upserted'), { ...base, adminRoles: ['ROOT'] });
      expectRejected(badRole, 'INVALID_COMMAND', /adminRoles may hold only SUPER_ADMIN, APP_ADMIN, READ_ONLY_ADMIN/);
      const noDomains = await commands.send('directory', type('org-upserted'), { orgId: uniqueId('org'), name: 'No domains', emailDomains: [] });
      expectRejected(noDomains, 'INVALID_COMMAND', /emailDomains must list at least one domain/);
      const badMode = await commands.send('directory', type('catalog-app-upserted'), { catalogAppId: uniqueId('catalog'), name: 'X', signOnModes: [] });
      expectRejected(badMode, 'INVALID_COMMAND', /signOnModes must list at least one mode/);
      const wrongTopic = await commands.send('adminCommands', type('user-upserted'), base);
      expectRejected(wrongTopic, 'WRONG_TOPIC', new RegExp(`belongs on topic ${backend.topics.directory.replace(/\./g, '\\.')}`));

      for (const result of [badEmail, badStatus, badRole, noDomains, badMode, wrongTopic]) {
        const commandId = result.data.commandId as string;
        const dead = await probe.waitFor(
          (record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === commandId,
          `the dead letter of ${commandId}`,
        );
        expect(dead.headers[DeadLetterHeaders.error]).toMatch(new RegExp(`^${String(result.data.code)}: `));
      }
      await expect(backend.db.user.count({ where: { id: userId } })).resolves.toBe(0);

      // The consumer is still running.
      await commands.directory('user-upserted', base);
      await expect(backend.db.user.count({ where: { id: userId } })).resolves.toBe(1);
    });

    test('the same ce_id delivered twice creates one user, one result and one announcement', async () => {
      const { orgId, domain } = await seedDirectoryOrg();
      const userId = await user(orgId, domain, 'user');
      const id = randomUUID();
      const deactivation = { orgId, userId, email: `${userId}@${domain}`, status: 'DEACTIVATED', adminRoles: [] };
      await sendCommand(backend.producer, backend.topics.directory, type('user-upserted'), deactivation, { id });
      await sendCommand(backend.producer, backend.topics.directory, type('user-upserted'), deactivation, { id });
      await flushDirectoryChanges(orgId, domain);

      expect(probe.matching(resultFor(id))).toHaveLength(1);
      await expect(backend.db.processedCommand.count({ where: { commandId: id } })).resolves.toBe(1);
      expect(directoryChanges(orgId).filter((record) => record.data.userId === userId)).toHaveLength(1);
    });
  });

  describe('in any order (issue 8): nothing is refused for arriving early', () => {
    const APP_REQUESTED = 'selfservice.app.requested.v1';
    const PERSONAL_APP_ADD = 'selfservice.personal-app.add-requested.v1';

    type Part = 'org' | 'admin' | 'alice' | 'bob' | 'group' | 'catalog' | 'app';
    interface Run {
      prefix: string;
      ids: { orgId: string; userIds: string[]; groupId: string; catalogAppId: string; appId: string };
      entries: Record<Part, { name: string; data: Record<string, unknown> }>;
    }

    /** One directory (an org, three users, a group of them, a catalog app, an org app naming it) with ids under a fresh prefix. */
    function directoryRun(): Run {
      const prefix = uniqueId('order');
      const id = (part: string) => `${prefix}-${part}`;
      const orgId = id('org');
      const domain = `${orgId}.example`;
      const person = (part: string, status: string, adminRoles: string[]) => ({
        name: 'user-upserted',
        data: { orgId, userId: id(part), email: `${id(part)}@${domain}`, displayName: part, status, adminRoles },
      });
      return {
        prefix,
        ids: { orgId, userIds: [id('admin'), id('alice'), id('bob')], groupId: id('group'), catalogAppId: id('catalog'), appId: id('app') },
        entries: {
          catalog: {
            name: 'catalog-app-upserted',
            data: { catalogAppId: id('catalog'), name: 'Expensify', signOnModes: ['SAML', 'SWA'], requiresPersonalAttributes: true },
          },
          org: {
            name: 'org-upserted',
            data: { orgId, name: 'Acme Corp', emailDomains: [domain], blockedPersonalDomains: ['competitor.example'], features: { PERSONAL_APP_MIGRATION: true } },
          },
          admin: person('admin', 'ACTIVE', ['SUPER_ADMIN']),
          alice: person('alice', 'ACTIVE', []),
          bob: person('bob', 'SUSPENDED', ['READ_ONLY_ADMIN']),
          group: { name: 'group-upserted', data: { orgId, groupId: id('group'), name: 'Finance approvers', memberIds: [id('alice'), id('bob'), id('admin')] } },
          app: {
            name: 'org-app-upserted',
            data: { orgId, appId: id('app'), label: 'Expenses', signOnMode: 'SAML', status: 'ACTIVE', catalogAppId: id('catalog') },
          },
        },
      };
    }

    /** The run's rows with its id prefix replaced, so that runs with different ids compare equal. */
    async function normalizedDirectory(run: Run): Promise<unknown> {
      const snapshot = await snapshotDirectory(run.ids);
      const org: Partial<typeof snapshot.org> = { ...snapshot.org };
      delete org.createdAt;
      return JSON.parse(JSON.stringify({ ...snapshot, org }).split(run.prefix).join('<prefix>')) as unknown;
    }

    /** Syncs the run's parts in exactly this order (each result awaited before the next is sent), then reads the rows. */
    async function syncInOrder(order: Part[]): Promise<unknown> {
      const run = directoryRun();
      for (const part of order) await commands.directory(run.entries[part].name, run.entries[part].data);
      return finishRun(run);
    }

    async function finishRun(run: Run): Promise<unknown> {
      const state = await normalizedDirectory(run);
      // First-time upserts announce nothing, whatever their order.
      await flushDirectoryChanges(run.ids.orgId, 'marker.example');
      expect(directoryChanges(run.ids.orgId).map((record) => record.data.userId ?? record.data.groupId)).toEqual([expect.stringMatching(/^marker-/)]);
      return state;
    }

    const NATURAL: Part[] = ['catalog', 'org', 'admin', 'alice', 'bob', 'group', 'app'];
    let natural: Promise<unknown> | undefined;
    const naturalState = () => (natural ??= syncInOrder(NATURAL));

    test('the natural order (catalog, org, users, group, org app) writes what was sent', async () => {
      const state = (await naturalState()) as Record<string, Record<string, unknown>>;
      expect(state.org).toMatchObject({ name: 'Acme Corp', emailDomains: ['<prefix>-org.example'], personalAppMigration: true, provisional: false });
      expect(state.settings).toMatchObject({ allowOrgManagedApps: false, version: 0 });
      expect(state.members).toEqual(['<prefix>-admin', '<prefix>-alice', '<prefix>-bob']);
      expect(state.app).toMatchObject({ orgId: '<prefix>-org', catalogAppId: '<prefix>-catalog' });
    });

    // Every relation that order could matter for: a user, the group and the org app before or after the org,
    // the group before or after its members, the org app before or after its catalog app.
    test.each<[string, Part[]]>([
      ['everything before the org, in reverse: the org app before its catalog app, the group before its members', ['app', 'group', 'bob', 'alice', 'admin', 'catalog', 'org']],
      ['users, group and org app before the org, the catalog app last', ['admin', 'alice', 'bob', 'group', 'app', 'org', 'catalog']],
      ['group and org app first, then the org, the catalog app and the members', ['group', 'app', 'org', 'catalog', 'bob', 'alice', 'admin']],
      ['the org first, the group before its members, the org app before its catalog app', ['org', 'group', 'app', 'bob', 'admin', 'alice', 'catalog']],
      ['the catalog app first, the org between the members', ['catalog', 'group', 'alice', 'org', 'app', 'admin', 'bob']],
    ])('%s ends in the same rows as the natural order', async (_name, order) => {
      const expected = await naturalState();
      await expect(syncInOrder(order)).resolves.toEqual(expected);
    });

    test('everything sent at once in reverse order, across partitions, is accepted and ends in the same rows', async () => {
      const expected = await naturalState();
      const run = directoryRun();
      const reversed = [...NATURAL].reverse().map((part) => ({ type: type(run.entries[part].name), data: run.entries[part].data }));
      const results = await sendInARow(reversed);
      expect(results.map((result) => result.type)).toEqual(reversed.map(() => ACCEPTED));
      await expect(finishRun(run)).resolves.toEqual(expected);
    });

    test('users, groups and org apps of an org not synced yet are accepted into a provisional org that can do nothing until its org-upserted fills it in', async () => {
      const orgId = uniqueId('early-org');
      const domain = `${orgId}.example`;
      const [userId, groupId, appId, catalogAppId] = ['user', 'group', 'app', 'catalog'].map(uniqueId) as [string, string, string, string];

      const results = await sendInARow([
        { type: type('user-upserted'), data: { orgId, userId, email: `${userId}@${domain}`, status: 'ACTIVE', adminRoles: ['SUPER_ADMIN'] } },
        { type: type('group-upserted'), data: { orgId, groupId, name: 'Early', memberIds: [userId] } },
        { type: type('org-app-upserted'), data: { orgId, appId, label: 'Early app', signOnMode: 'SAML', status: 'ACTIVE' } },
      ]);
      expect(results.map((result) => result.type)).toEqual([ACCEPTED, ACCEPTED, ACCEPTED]);
      expect(results.map((result) => result.key)).toEqual([orgId, orgId, orgId]);

      // A placeholder: named by its id, no domains, features off, no settings row.
      await expect(backend.db.org.findUniqueOrThrow({ where: { id: orgId } })).resolves.toMatchObject({
        name: orgId,
        emailDomains: [],
        blockedPersonalDomains: [],
        personalAppMigration: false,
        provisional: true,
      });
      await expect(backend.db.orgSettings.count({ where: { orgId } })).resolves.toBe(0);
      await expect(backend.db.user.findUniqueOrThrow({ where: { id: userId } })).resolves.toMatchObject({ orgId, status: 'ACTIVE' });
      await expect(memberIds(groupId)).resolves.toEqual([userId]);
      await expect(backend.db.orgApp.findUniqueOrThrow({ where: { id: appId } })).resolves.toMatchObject({ orgId, label: 'Early app' });

      // Its users cannot act in it yet.
      const request = await commands.send('userRequests', APP_REQUESTED, { orgId, userId, appId });
      expectRejected(request, 'ORG_NOT_FOUND');
      const personal = await commands.send('userRequests', PERSONAL_APP_ADD, { orgId, userId, catalogAppId });
      expectRejected(personal, 'PERSONAL_APPS_DISABLED');

      // The org's own upsert fills it in and keeps what arrived before it.
      await commands.directory('org-upserted', { orgId, name: 'Early Corp', emailDomains: [domain] });
      await expect(backend.db.org.findUniqueOrThrow({ where: { id: orgId } })).resolves.toMatchObject({
        name: 'Early Corp',
        emailDomains: [domain],
        blockedPersonalDomains: [],
        personalAppMigration: false,
        provisional: false,
      });
      await expect(backend.db.orgSettings.findUniqueOrThrow({ where: { orgId } })).resolves.toMatchObject({
        allowOrgManagedApps: false,
        allowPersonalApps: false,
        allowTechnicalContactRequests: false,
        allowMoveToOktaPersonal: false,
        technicalContactUserId: null,
        version: 0,
      });
      await expect(backend.db.user.count({ where: { orgId } })).resolves.toBe(1);
      await expect(memberIds(groupId)).resolves.toEqual([userId]);
      await expect(backend.db.orgApp.count({ where: { orgId } })).resolves.toBe(1);
    });

    /** The request's row once its workflow has opened the first approval step. */
    async function atFirstStep(requestId: string) {
      for (let attempt = 0; attempt < 300; attempt += 1) {
        const row = await backend.db.appRequest.findUnique({ where: { id: requestId } });
        if (row?.currentStep === 1) return row;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`request ${requestId} never reached its first approval step`);
    }

    test('a group whose members arrive after it keeps them; each member counts (as an approver too) from the moment it is synced', async () => {
      const org = await seedOrg(commands, { users: ['requester', 'other'] });
      const [aliceId, lateId, laterId] = [uniqueId('alice'), uniqueId('dave'), uniqueId('erin')];
      const groupId = uniqueId('group');
      const syncUser = (userId: string) =>
        commands.directory('user-upserted', { orgId: org.orgId, userId, email: `${userId}@${org.domain}`, status: 'ACTIVE', adminRoles: [] });

      const created = await commands.directory('group-upserted', { orgId: org.orgId, groupId, name: 'Approvers', memberIds: [aliceId, lateId] });
      expect(created.data).toMatchObject({ groupId, memberCount: 2 });
      await expect(memberIds(groupId)).resolves.toEqual([aliceId, lateId].sort());

      // Membership changes name members that are not synced yet like any other.
      await commands.directory('group-upserted', { orgId: org.orgId, groupId, name: 'Approvers', memberIds: [aliceId, lateId, laterId] });
      const announced = await probe.waitFor(
        (record) => record.topic === backend.topics.directoryChanges && record.data.groupId === groupId,
        'the membership announcement',
      );
      expect(announced.data).toEqual({ orgId: org.orgId, groupId, addedMemberIds: [laterId], removedMemberIds: [] });

      await syncUser(aliceId);
      await expect(memberIds(groupId)).resolves.toEqual([aliceId, lateId, laterId].sort());

      const appId = uniqueId('app');
      await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: 'Payroll', signOnMode: 'SAML', status: 'ACTIVE' });
      await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
        orgId: org.orgId,
        actorId: org.superAdminId,
        appId,
        config: { requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'GROUP', id: groupId, timeout: { days: 7 } }] },
      });

      // Members without a user row are not active users: only alice approves.
      const first = await commands.accepted('userRequests', APP_REQUESTED, { orgId: org.orgId, userId: org.user('requester'), appId });
      await expect(atFirstStep(first.data.requestId as string)).resolves.toMatchObject({ status: 'PENDING', currentApproverIds: [aliceId] });

      // A member synced later is a member at once.
      await syncUser(lateId);
      await expect(memberIds(groupId)).resolves.toEqual([aliceId, lateId, laterId].sort());
      const second = await commands.accepted('userRequests', APP_REQUESTED, { orgId: org.orgId, userId: org.user('other'), appId });
      await expect(atFirstStep(second.data.requestId as string)).resolves.toMatchObject({
        status: 'PENDING',
        currentApproverIds: [aliceId, lateId].sort(),
      });
    });

    test('an org app that names a catalog app not synced yet is accepted; the reference resolves when the catalog app arrives', async () => {
      const org = await seedOrg(commands, { users: ['requester'], allowOrgManagedApps: false });
      await commands.accepted('adminCommands', 'selfservice.settings.update-requested.v1', {
        orgId: org.orgId,
        actorId: org.superAdminId,
        changes: { allowPersonalApps: true },
      });
      const appId = uniqueId('app');
      const catalogAppId = uniqueId('catalog');
      const app = { orgId: org.orgId, appId, label: 'Slack', signOnMode: 'SWA', status: 'ACTIVE', catalogAppId };

      const accepted = await commands.directory('org-app-upserted', app);
      expect(accepted.data).toMatchObject({ appId });
      await expect(backend.db.orgApp.findUniqueOrThrow({ where: { id: appId } })).resolves.toMatchObject({ catalogAppId, label: 'Slack' });
      await expect(backend.db.catalogApp.count({ where: { id: catalogAppId } })).resolves.toBe(0);

      // Readers of catalogAppId cope with the dangling reference: the catalog app is simply not there yet.
      const addBefore = await commands.send('userRequests', PERSONAL_APP_ADD, { orgId: org.orgId, userId: org.user('requester'), catalogAppId });
      expectRejected(addBefore, 'CATALOG_APP_NOT_FOUND');

      await commands.directory('catalog-app-upserted', { catalogAppId, name: 'Slack', signOnModes: ['SWA'] });
      await expect(backend.db.orgApp.findUniqueOrThrow({ where: { id: appId } })).resolves.toMatchObject({ catalogAppId, label: 'Slack' });
      await expect(backend.db.catalogApp.findUniqueOrThrow({ where: { id: catalogAppId } })).resolves.toMatchObject({
        name: 'Slack',
        requiresPersonalAttributes: false,
      });
      // Now the org app is known to manage that catalog app.
      const addAfter = await commands.send('userRequests', PERSONAL_APP_ADD, { orgId: org.orgId, userId: org.user('requester'), catalogAppId });
      expectRejected(addAfter, 'APP_MANAGED_BY_ORG', new RegExp(`as app ${appId}`));
    });
  });

  describe('announcements on the internal directory-changes topic', () => {
    test('a user deactivation is announced once with the previous and the new status; re-sending it announces nothing more', async () => {
      const { orgId, domain } = await seedDirectoryOrg();
      const userId = await user(orgId, domain, 'leaver');
      const deactivated = { orgId, userId, email: `${userId}@${domain}`, status: 'DEACTIVATED', adminRoles: [] };

      const result = await commands.directory('user-upserted', deactivated);
      const announced = await probe.waitFor(
        (record) => record.topic === backend.topics.directoryChanges && record.data.userId === userId,
        'the deactivation announcement',
      );
      expect(announced.type).toBe(USER_CHANGED);
      expect(announced.key).toBe(orgId);
      expect(announced.id).toBe(`${String(result.data.commandId)}:user-changed`);
      expect(announced.data).toEqual({ orgId, userId, previousStatus: 'ACTIVE', status: 'DEACTIVATED' });
      await expect(backend.db.user.findUniqueOrThrow({ where: { id: userId } })).resolves.toMatchObject({ status: 'DEACTIVATED' });

      // A profile change without a status change is not announced; neither is the same deactivation again.
      await commands.directory('user-upserted', { ...deactivated, displayName: 'Renamed' });
      await commands.directory('user-upserted', deactivated);
      await flushDirectoryChanges(orgId, domain);
      expect(directoryChanges(orgId).filter((record) => record.data.userId === userId)).toHaveLength(1);
    });

    test('a group membership change is announced with the added and the removed members', async () => {
      const { orgId, domain } = await seedDirectoryOrg();
      const [alice, bob, carol] = [await user(orgId, domain, 'alice'), await user(orgId, domain, 'bob'), await user(orgId, domain, 'carol')];
      const groupId = uniqueId('group');
      await commands.directory('group-upserted', { orgId, groupId, name: 'Approvers', memberIds: [alice, bob] });

      const result = await commands.directory('group-upserted', { orgId, groupId, name: 'Approvers', memberIds: [bob, carol] });
      expect(result.data).toMatchObject({ groupId, memberCount: 2 });
      const announced = await probe.waitFor(
        (record) => record.topic === backend.topics.directoryChanges && record.data.groupId === groupId,
        'the membership announcement',
      );
      expect(announced.type).toBe(GROUP_CHANGED);
      expect(announced.key).toBe(orgId);
      expect(announced.data).toEqual({ orgId, groupId, addedMemberIds: [carol], removedMemberIds: [alice] });
      await expect(memberIds(groupId)).resolves.toEqual([bob, carol].sort());

      // Only the rename: no membership change, nothing announced.
      await commands.directory('group-upserted', { orgId, groupId, name: 'Renamed approvers', memberIds: [carol, bob] });
      await flushDirectoryChanges(orgId, domain);
      expect(directoryChanges(orgId).filter((record) => record.data.groupId === groupId)).toHaveLength(1);
      await expect(backend.db.group.findUniqueOrThrow({ where: { id: groupId } })).resolves.toMatchObject({ name: 'Renamed approvers' });
    });
  });

  describe('JSON import CLI', () => {

    function importFile(content: unknown): string {
      const file = path.join(workDir, `${uniqueId('import')}.json`);
      writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
      return file;
    }

    function demoDirectory() {
      const orgId = uniqueId('org');
      const domain = `${orgId}.example`;
      const ids = {
        orgId,
        domain,
        adminId: uniqueId('admin'),
        aliceId: uniqueId('alice'),
        groupId: uniqueId('group'),
        catalogAppId: uniqueId('catalog'),
        appId: uniqueId('app'),
      };
      const file = {
        commands: [
          { type: type('org-upserted'), data: { orgId, name: 'Imported Org', emailDomains: [domain], features: { PERSONAL_APP_MIGRATION: true } } },
          { type: type('user-upserted'), data: { orgId, userId: ids.adminId, email: `${ids.adminId}@${domain}`, status: 'ACTIVE', adminRoles: ['SUPER_ADMIN'] } },
          { type: type('user-upserted'), data: { orgId, userId: ids.aliceId, email: `${ids.aliceId}@${domain}`, status: 'ACTIVE', adminRoles: [] } },
          { type: type('group-upserted'), data: { orgId, groupId: ids.groupId, name: 'Imported group', memberIds: [ids.adminId, ids.aliceId] } },
          { type: type('catalog-app-upserted'), data: { catalogAppId: ids.catalogAppId, name: 'Zoom', signOnModes: ['SAML'] } },
          {
            type: type('org-app-upserted'),
            data: { orgId, appId: ids.appId, label: 'Zoom', signOnMode: 'SAML', status: 'ACTIVE', catalogAppId: ids.catalogAppId },
          },
          {
            type: 'selfservice.settings.update-requested.v1',
            data: { orgId, actorId: ids.adminId, changes: { allowOrgManagedApps: true, allowMoveToOktaPersonal: true } },
          },
        ],
      };
      return { ids, file };
    }

    test('importing a file writes the directory through the same commands; importing it again changes nothing', async () => {
      const { ids, file } = demoDirectory();
      const filePath = importFile(file);

      const first = await runCli(backend, 'import', filePath);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      const lines = first.stdout.trim().split('\n');
      expect(lines).toEqual([...file.commands.map((entry, index) => `#${index} ${entry.type} ACCEPTED`), `imported 7 of 7 commands`]);

      const snapshot = await snapshotDirectory({
        orgId: ids.orgId,
        userIds: [ids.adminId, ids.aliceId],
        groupId: ids.groupId,
        catalogAppId: ids.catalogAppId,
        appId: ids.appId,
      });
      expect(snapshot.org).toMatchObject({ name: 'Imported Org', personalAppMigration: true });
      expect(snapshot.users.map((row) => row.id)).toEqual([ids.adminId, ids.aliceId].sort());
      expect(snapshot.members).toEqual([ids.adminId, ids.aliceId].sort());
      expect(snapshot.app).toMatchObject({ label: 'Zoom', catalogAppId: ids.catalogAppId });
      expect(snapshot.settings).toMatchObject({ allowOrgManagedApps: true, allowMoveToOktaPersonal: true, version: 1 });
      // Imported commands are answered and announced like Kafka ones.
      const settingsEvent = await probe.waitFor(
        (record) => record.topic === backend.topics.settings && record.data.orgId === ids.orgId,
        'the settings change of the import',
      );
      expect(settingsEvent.data).toMatchObject({ actorId: ids.adminId, version: 1, changed: ['allowOrgManagedApps', 'allowMoveToOktaPersonal'] });
      const commandCount = await backend.db.processedCommand.count({ where: { orgId: ids.orgId } });
      const auditCount = await backend.db.auditEntry.count({ where: { orgId: ids.orgId } });

      const second = await runCli(backend, 'import', filePath);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('imported 7 of 7 commands');
      await expect(
        snapshotDirectory({ orgId: ids.orgId, userIds: [ids.adminId, ids.aliceId], groupId: ids.groupId, catalogAppId: ids.catalogAppId, appId: ids.appId }),
      ).resolves.toEqual(snapshot);
      await expect(backend.db.processedCommand.count({ where: { orgId: ids.orgId } })).resolves.toBe(commandCount);
      await expect(backend.db.auditEntry.count({ where: { orgId: ids.orgId } })).resolves.toBe(auditCount);
      expect(probe.matching((record) => record.topic === backend.topics.settings && record.data.orgId === ids.orgId)).toHaveLength(1);
    });

    test('a file with bad entries reports each bad entry by its position and exits non-zero', async () => {
      const orgId = uniqueId('org');
      const domain = `${orgId}.example`;
      const goodUser = uniqueId('good');
      const badUser = uniqueId('bad');
      const ghostOrgId = uniqueId('ghost-org');
      const file = {
        commands: [
          { type: type('org-upserted'), data: { orgId, name: 'Partly bad', emailDomains: [domain] } },
          { type: type('user-upserted'), data: { orgId, userId: badUser, email: 'not-an-email', status: 'ACTIVE', adminRoles: [] } },
          { type: 'selfservice.app.requested.v1', data: { orgId, userId: goodUser, appId: 'x' } },
          { type: type('user-upserted'), data: { orgId, userId: goodUser, email: `${goodUser}@${domain}`, status: 'ACTIVE', adminRoles: [] } },
          // The same user for another org (one not synced yet): refused, the user stays with its org.
          { type: type('user-upserted'), data: { orgId: ghostOrgId, userId: goodUser, email: `${goodUser}@ghost.example`, status: 'ACTIVE', adminRoles: [] } },
        ],
      };

      const run = await runCli(backend, 'import', importFile(file));
      expect(run.code).not.toBe(0);
      const lines = run.stdout.trim().split('\n');
      expect(lines[0]).toBe(`#0 ${type('org-upserted')} ACCEPTED`);
      expect(lines[1]).toMatch(new RegExp(`^#1 ${type('user-upserted')} REJECTED INVALID_COMMAND: data\\.email: must be a valid email address`));
      expect(lines[2]).toBe('#2 selfservice.app.requested.v1 REJECTED NOT_IMPORTABLE: selfservice.app.requested.v1 is not a directory or admin command');
      expect(lines[3]).toBe(`#3 ${type('user-upserted')} ACCEPTED`);
      expect(lines[4]).toMatch(new RegExp(`^#4 ${type('user-upserted')} REJECTED USER_BELONGS_TO_ANOTHER_ORG: user ${goodUser} belongs to org ${orgId}`));
      expect(lines[5]).toBe('imported 2 of 5 commands');

      await expect(backend.db.user.count({ where: { id: badUser } })).resolves.toBe(0);
      await expect(backend.db.user.findUniqueOrThrow({ where: { id: goodUser } })).resolves.toMatchObject({ orgId });
      await expect(backend.db.org.count({ where: { id: ghostOrgId } })).resolves.toBe(0);
    });

    test('a file that is not JSON, or not an import file, is refused with the reason and the usage', async () => {
      const notJson = await runCli(backend, 'import', importFile('{"commands": ['));
      expect(notJson.code).toBe(2);
      expect(notJson.stderr).toMatch(/cannot read .* as JSON/);
      expect(notJson.stderr).toContain('usage:');

      const empty = await runCli(backend, 'import', importFile({ commands: [] }));
      expect(empty.code).toBe(2);
      expect(empty.stderr).toContain('commands must list at least one command');
    });

    test('a file that changes one user several times ends in the state of its last entry', async () => {
      const orgId = uniqueId('org');
      const domain = `${orgId}.example`;
      const userId = uniqueId('user');
      const userAs = (status: string) => ({ type: type('user-upserted'), data: { orgId, userId, email: `${userId}@${domain}`, status, adminRoles: [] } });
      const file = { commands: [{ type: type('org-upserted'), data: { orgId, name: 'Flip flop', emailDomains: [domain] } }, userAs('ACTIVE'), userAs('DEACTIVATED'), userAs('ACTIVE')] };

      const run = await runCli(backend, 'import', importFile(file));
      expect(run.code).toBe(0);
      await expect(backend.db.user.findUniqueOrThrow({ where: { id: userId } })).resolves.toMatchObject({ status: 'ACTIVE' });
    });
  });
  describe('a sync of thousands in one burst (applied in batches, one transaction each)', () => {
    test('2,000 user upserts sent at once each get one result in order; a user of another org among them is refused alone; a user sent twice ends as the later copy', async () => {
      const { orgId, domain } = await seedDirectoryOrg();
      const other = await seedDirectoryOrg();
      const foreignId = await user(other.orgId, other.domain, 'foreign');
      const ids = Array.from({ length: 1998 }, (_, index) => `${uniqueId('bulk')}-${index}`);
      const twice = ids[100]!;
      const upserts = [
        ...ids.map((userId) => ({ orgId, userId, email: `${userId}@${domain}`, status: 'ACTIVE', adminRoles: [] })),
        { orgId, userId: foreignId, email: `${foreignId}@${domain}`, status: 'ACTIVE', adminRoles: [] },
        { orgId, userId: twice, email: `${twice}@${domain}`, displayName: 'The later copy', status: 'SUSPENDED', adminRoles: [] },
      ];
      const commandIds: string[] = upserts.map(() => randomUUID());
      for (let from = 0; from < upserts.length; from += 500) {
        await backend.producer.send({
          topic: backend.topics.directory,
          messages: upserts.slice(from, from + 500).map((data, offset) => {
            const record = encodeCloudEvent({ specversion: '1.0', id: commandIds[from + offset]!, source: 'urn:test', type: type('user-upserted'), data }, orgId);
            return { key: record.key, value: record.value, headers: record.headers as IHeaders };
          }),
        });
      }
      const last = await probe.waitFor(resultFor(commandIds[commandIds.length - 1]!), 'the result of the last upsert', 60_000);
      expect(last.type).toBe(ACCEPTED);

      const results = probe.matching((record) => record.type?.startsWith('selfservice.command.') === true && commandIds.includes(String(record.data.commandId)));
      expect(results).toHaveLength(commandIds.length);
      // One key (the org), so the results come in the order the commands were sent.
      expect(results.map((record) => record.data.commandId)).toEqual(commandIds);
      const refused = results.filter((record) => record.type === REJECTED);
      expect(refused.map((record) => [record.data.commandId, record.data.code])).toEqual([[commandIds[1998], 'USER_BELONGS_TO_ANOTHER_ORG']]);

      expect(await backend.db.user.count({ where: { orgId, id: { in: ids } } })).toBe(1998);
      await expect(backend.db.user.findUniqueOrThrow({ where: { id: twice } })).resolves.toMatchObject({ status: 'SUSPENDED', displayName: 'The later copy' });
      await expect(backend.db.user.findUniqueOrThrow({ where: { id: foreignId } })).resolves.toMatchObject({ orgId: other.orgId });
      // The status change of the user sent twice is announced once, as one upsert at a time would.
      await probe.waitFor((record) => record.topic === backend.topics.directoryChanges && record.data.userId === twice, 'the announcement of the later copy');
      expect(directoryChanges(orgId).filter((record) => record.data.userId === twice)).toHaveLength(1);
    });
  });
});
