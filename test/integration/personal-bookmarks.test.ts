import { randomUUID } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import { MAX_BOOKMARKS_PER_USER } from '../../activities/personal-bookmarks';
import { encodeCloudEvent } from '../../events/cloudevents';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * Personal bookmarks end to end: commands on the user-requests topic, applied by the ingress in one
 * transaction (no workflow), rows in PostgreSQL, results, dashboard announcements and dead letters read
 * back from Kafka.
 */
describe('personal bookmarks', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;
  let org: SeededOrg;

  const ADD = 'selfservice.personal-bookmark.add-requested.v1';
  const ADDED = 'selfservice.dashboard.personal-bookmark-added.v1';

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.dashboard, backend.topics.deadLetters]);
    commands = new CommandClient(backend, probe);
    org = await seedOrg(commands, { users: ['alice', 'bob', 'carol', 'dave', 'erin'] });
    await commands.directory('org-upserted', { orgId: org.orgId, name: `Org ${org.orgId}`, emailDomains: [org.domain], blockedPersonalDomains: ['blocked.example'] });
    await commands.accepted('adminCommands', 'selfservice.settings.update-requested.v1', { orgId: org.orgId, actorId: org.superAdminId, changes: { allowPersonalApps: true } });
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  /** A unique site per test, so tests never see each other's bookmarks or catalog apps. */
  const site = (label: string) => `${label}-${randomUUID().slice(0, 8)}.example`;

  async function add(data: Record<string, unknown>, id?: string): Promise<{ commandId: string; result: SeenRecord }> {
    const commandId = await sendCommand(backend.producer, backend.topics.userRequests, ADD, { orgId: org.orgId, userId: org.user('alice'), ...data }, { id });
    return { commandId, result: await probe.waitFor(resultFor(commandId), `the result of ${commandId}`, 60_000) };
  }

  async function rejected(data: Record<string, unknown>, code: string): Promise<{ commandId: string; result: SeenRecord }> {
    const sent = await add(data);
    expect({ type: sent.result.type, code: sent.result.data.code }).toEqual({ type: 'selfservice.command.rejected.v1', code });
    return sent;
  }

  const bookmarksOf = (userId: string) => backend.db.personalBookmark.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } });

  async function catalogApp(signOnModes: string[], domains: string[]): Promise<string> {
    const catalogAppId = uniqueId('catalog');
    await commands.directory('catalog-app-upserted', { catalogAppId, name: `App ${catalogAppId}`, signOnModes, domains });
    return catalogAppId;
  }

  test('a bookmark is stored, answered with its id and announced on the dashboard, its URL normalized', async () => {
    const host = site('wiki');
    const { commandId, result } = await add({ userId: org.user('bob'), name: '  Team wiki ', url: `https://${host.toUpperCase()}:443/team/../handbook` });

    const url = `https://${host}/handbook`;
    expect(result.type).toBe('selfservice.command.accepted.v1');
    expect(result.data).toMatchObject({ commandType: ADD, orgId: org.orgId, name: 'Team wiki', url });
    const bookmarkId = result.data.bookmarkId as string;
    expect(bookmarkId).toMatch(/^pb-[0-9a-f]{24}$/);
    expect(result.data).not.toHaveProperty('workflowId');

    const announced = await probe.waitFor((record) => record.id === `${commandId}:personal-bookmark-added`, 'the personal-bookmark-added announcement');
    expect(announced).toMatchObject({ topic: backend.topics.dashboard, type: ADDED, key: org.orgId });
    expect(announced.data).toEqual({ orgId: org.orgId, userId: org.user('bob'), bookmarkId, name: 'Team wiki', url });

    await expect(bookmarksOf(org.user('bob'))).resolves.toEqual([
      expect.objectContaining({ id: bookmarkId, orgId: org.orgId, userId: org.user('bob'), name: 'Team wiki', url, host, commandId }),
    ]);
    const audit = await backend.db.auditEntry.findFirstOrThrow({ where: { commandId } });
    expect(audit).toMatchObject({ orgId: org.orgId, actorId: org.user('bob'), action: 'personal-bookmark.add', outcome: 'ACCEPTED', subject: host, after: { bookmarkId, host } });
  });

  test('the same URL twice for one user is refused BOOKMARK_EXISTS, naming the bookmark; another user may add it', async () => {
    const host = site('docs');
    const first = await add({ name: 'Docs', url: `https://${host}/start` });
    expect(first.result.type).toBe('selfservice.command.accepted.v1');

    const again = await rejected({ name: 'Docs again', url: `https://${host.toUpperCase()}/start` }, 'BOOKMARK_EXISTS');
    expect(again.result.data).toMatchObject({ existingBookmarkId: first.result.data.bookmarkId });
    expect(again.result.data.message).toBe(`you already have a bookmark of this URL: ${String(first.result.data.bookmarkId)} (Docs)`);
    expect(probe.matching((record) => record.id === `${again.commandId}:personal-bookmark-added`)).toHaveLength(0);

    const other = await add({ userId: org.user('carol'), name: 'Docs', url: `https://${host}/start` });
    expect(other.result.type).toBe('selfservice.command.accepted.v1');
    await expect(backend.db.personalBookmark.count({ where: { url: `https://${host}/start` } })).resolves.toBe(2);
  });

  test('a host in a blocked domain is refused BLOCKED_DOMAIN and audited; a look-alike is not blocked', async () => {
    const { commandId, result } = await rejected({ name: 'Shop', url: 'https://eu.shop.blocked.example/cart' }, 'BLOCKED_DOMAIN');
    expect(result.data.message).toBe(`eu.shop.blocked.example is in the domain blocked.example, which org ${org.orgId} blocks for personal apps and bookmarks`);
    expect(result.data).toMatchObject({ blockedDomain: 'blocked.example' });
    const audit = await backend.db.auditEntry.findFirstOrThrow({ where: { commandId } });
    expect(audit).toMatchObject({ actorId: org.user('alice'), action: 'personal-bookmark.add', outcome: 'REJECTED', code: 'BLOCKED_DOMAIN', subject: 'eu.shop.blocked.example' });
    await expect(backend.db.personalBookmark.count({ where: { host: 'eu.shop.blocked.example' } })).resolves.toBe(0);

    const lookAlike = await add({ name: 'Not blocked', url: `https://notblocked-${randomUUID().slice(0, 8)}.example/` });
    expect(lookAlike.result.type).toBe('selfservice.command.accepted.v1');
  });

  describe('when the catalog has an app for the site', () => {
    test('a username + password app the org does not manage: APP_IN_CATALOG, add it as a personal app', async () => {
      const host = site('streaming');
      const catalogAppId = await catalogApp(['SWA'], [host]);
      const { result } = await rejected({ name: 'Streaming', url: `https://www.${host}/browse` }, 'APP_IN_CATALOG');
      expect(result.data).toMatchObject({ catalogAppId, catalogAppName: `App ${catalogAppId}`, availableAs: 'PERSONAL_APP' });
      expect(result.data.message).toBe(`www.${host} is the site of catalog app ${catalogAppId} (App ${catalogAppId}); add it as a personal app instead of a bookmark`);
    });

    test('an app the org offers for requests: APP_IN_CATALOG naming the org app', async () => {
      const host = site('code');
      const catalogAppId = await catalogApp(['SAML'], [host]);
      const appId = uniqueId('app');
      await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: 'Code hosting', signOnMode: 'SAML', status: 'ACTIVE', catalogAppId });
      await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
        orgId: org.orgId,
        actorId: org.superAdminId,
        appId,
        config: { requestsEnabled: true, approvalRequired: false },
      });
      const { result } = await rejected({ name: 'Code', url: `https://${host}/` }, 'APP_IN_CATALOG');
      expect(result.data).toMatchObject({ catalogAppId, availableAs: 'ORG_APP', appId });
      expect(result.data.message).toContain(`which the org offers as app ${appId} (Code hosting); request that app instead of adding a bookmark`);
    });

    test('an app out of the user’s reach (federated, not managed by the org) may be bookmarked', async () => {
      const host = site('sso');
      await catalogApp(['SAML'], [host]);
      const { result } = await add({ name: 'SSO app', url: `https://${host}/login` });
      expect(result.type).toBe('selfservice.command.accepted.v1');
    });

    test('a catalog sync without domains keeps them; an empty list clears them', async () => {
      const host = site('music');
      const catalogAppId = await catalogApp(['SWA'], [host]);
      await commands.directory('catalog-app-upserted', { catalogAppId, name: 'Renamed', signOnModes: ['SWA'] });
      await expect(backend.db.catalogApp.findUniqueOrThrow({ where: { id: catalogAppId } })).resolves.toMatchObject({ name: 'Renamed', domains: [host] });
      await rejected({ name: 'Music', url: `https://${host}/` }, 'APP_IN_CATALOG');

      await commands.directory('catalog-app-upserted', { catalogAppId, name: 'Renamed', signOnModes: ['SWA'], domains: [] });
      const { result } = await add({ name: 'Music', url: `https://${host}/` });
      expect(result.type).toBe('selfservice.command.accepted.v1');
    });
  });

  describe('refusals by the business rules, each audited', () => {
    test('the personal-apps switch off: PERSONAL_APPS_DISABLED', async () => {
      const off = await seedOrg(commands, { users: ['frank'] });
      const commandId = await sendCommand(backend.producer, backend.topics.userRequests, ADD, { orgId: off.orgId, userId: off.user('frank'), name: 'Wiki', url: `https://${site('wiki')}/` });
      const result = await probe.waitFor(resultFor(commandId), 'the result', 60_000);
      expect(result.data).toMatchObject({ code: 'PERSONAL_APPS_DISABLED' });
      expect(result.data.message).toBe(`org ${off.orgId} does not allow users to add personal app integrations or bookmarks (setting allowPersonalApps is off)`);
      await expect(backend.db.auditEntry.findFirstOrThrow({ where: { commandId } })).resolves.toMatchObject({ outcome: 'REJECTED', code: 'PERSONAL_APPS_DISABLED' });
    });

    test('an unknown org, an unknown user and a suspended user: ORG_NOT_FOUND, USER_NOT_FOUND, USER_NOT_ACTIVE', async () => {
      const url = `https://${site('wiki')}/`;
      const unknownOrg = uniqueId('no-such-org');
      const noOrg = await rejected({ orgId: unknownOrg, name: 'Wiki', url }, 'ORG_NOT_FOUND');
      expect(noOrg.result.data.message).toBe(`org ${unknownOrg} is unknown`);

      const stranger = uniqueId('stranger');
      const noUser = await rejected({ userId: stranger, name: 'Wiki', url }, 'USER_NOT_FOUND');
      expect(noUser.result.data.message).toBe(`user ${stranger} is not a user of org ${org.orgId}`);

      await commands.directory('user-upserted', { orgId: org.orgId, userId: org.user('dave'), email: org.email('dave'), status: 'SUSPENDED', adminRoles: [] });
      const suspended = await rejected({ userId: org.user('dave'), name: 'Wiki', url }, 'USER_NOT_ACTIVE');
      expect(suspended.result.data.message).toBe(`user ${org.user('dave')} is SUSPENDED; only active users can do this`);
      await expect(bookmarksOf(org.user('dave'))).resolves.toEqual([]);
    });

    test(`at most ${MAX_BOOKMARKS_PER_USER} bookmarks per user: the next is refused TOO_MANY_BOOKMARKS`, async () => {
      const userId = org.user('erin');
      const host = site('many');
      const ids = Array.from({ length: MAX_BOOKMARKS_PER_USER }, () => randomUUID());
      // One batch of records: the ingress applies them in one transaction, each with its own result.
      await backend.producer.send({
        topic: backend.topics.userRequests,
        messages: ids.map((id, index) => {
          const record = encodeCloudEvent(
            { specversion: '1.0', id, source: 'urn:test', type: ADD, time: new Date().toISOString(), data: { orgId: org.orgId, userId, name: `Page ${index}`, url: `https://${host}/page/${index}` } },
            org.orgId,
          );
          return { key: record.key, value: record.value, headers: record.headers as IHeaders };
        }),
      });
      for (const id of ids) await probe.waitFor(resultFor(id), `the result of ${id}`, 120_000);
      expect(ids.filter((id) => probe.matching(resultFor(id))[0]?.type !== 'selfservice.command.accepted.v1')).toEqual([]);
      await expect(backend.db.personalBookmark.count({ where: { userId } })).resolves.toBe(MAX_BOOKMARKS_PER_USER);

      const { result } = await rejected({ userId, name: 'One too many', url: `https://${host}/page/last` }, 'TOO_MANY_BOOKMARKS');
      expect(result.data.message).toBe(`user ${userId} already has ${MAX_BOOKMARKS_PER_USER} bookmarks, the most one user may keep (${MAX_BOOKMARKS_PER_USER})`);
      expect(result.data).toMatchObject({ limit: MAX_BOOKMARKS_PER_USER });
      await expect(backend.db.personalBookmark.count({ where: { userId } })).resolves.toBe(MAX_BOOKMARKS_PER_USER);
    });
  });

  describe('refused at the door: dead-lettered, with a rejected result naming the field', () => {
    async function deadLettered(data: Record<string, unknown>, message: string): Promise<{ commandId: string; result: SeenRecord; copy: SeenRecord }> {
      const sent = await rejected(data, 'INVALID_COMMAND');
      expect(sent.result.data.message).toBe(message);
      const copy = await probe.waitFor((record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === sent.commandId, 'the dead letter');
      expect(copy.headers['dlq-error']).toContain('INVALID_COMMAND');
      await expect(backend.db.personalBookmark.count({ where: { commandId: sent.commandId } })).resolves.toBe(0);
      await expect(backend.db.processedCommand.count({ where: { commandId: sent.commandId } })).resolves.toBe(1);
      return { ...sent, copy };
    }

    test('http:// is refused', async () => {
      await deadLettered({ name: 'Wiki', url: `http://${site('wiki')}/` }, 'data.url: url must use https:// (http and other schemes are refused)');
    });

    test('credentials in the URL are refused and hidden in the dead-letter copy', async () => {
      const { copy } = await deadLettered(
        { name: 'Wiki', url: `https://jane:hunter2-secret@${site('wiki')}/` },
        'data.url: url must not carry a username or password (a bookmark holds no credentials) (removed from the dead-letter copy: url (credentials in a URL))',
      );
      expect(copy.value!.toString('utf8')).not.toContain('hunter2-secret');
      expect(copy.headers['dlq-redacted']).toBe('url (credentials in a URL)');
      expect(copy.data.url).toMatch(/^https:\/\/\[redacted\]@/);

      const token = await deadLettered(
        { name: 'Wiki', url: `https://${site('wiki')}/?access_token=tok-secret-1` },
        'data.url: url must not carry credentials (a query or fragment parameter named like a secret: password, token, api key, ...) (removed from the dead-letter copy: url (credentials in a URL))',
      );
      expect(token.copy.value!.toString('utf8')).not.toContain('tok-secret-1');
    });

    test('a password, a username or any other unknown field is refused, and a password is removed from the copy', async () => {
      const password = await deadLettered(
        { name: 'Wiki', url: `https://${site('wiki')}/`, password: 'pw-secret-2' },
        'data: only orgId, userId, name and url are accepted (never a username, password or other credential); unexpected: password (removed from the dead-letter copy: password)',
      );
      expect(password.copy.value!.toString('utf8')).not.toContain('pw-secret-2');
      expect(password.copy.headers['dlq-redacted']).toBe('password');

      await deadLettered(
        { name: 'Wiki', url: `https://${site('wiki')}/`, username: 'jane' },
        'data: only orgId, userId, name and url are accepted (never a username, password or other credential); unexpected: username',
      );
    });

    test('an IP address, localhost, a one-label host and a name with control characters are refused', async () => {
      await deadLettered({ name: 'Router', url: 'https://192.168.0.1/admin' }, 'data.url: url must name its host by a domain name, not an IP address');
      await deadLettered({ name: 'Dev', url: 'https://localhost:3000/' }, 'data.url: url must not point to localhost');
      await deadLettered({ name: 'Intranet', url: 'https://intranet/' }, 'data.url: url must name a host by its full domain name, such as www.example.com');
      await deadLettered({ name: 'Fragment', url: '#top' }, 'data.url: url must be an absolute URL such as https://www.example.com/page');
      await deadLettered({ name: 'Wiki\u0007', url: `https://${site('wiki')}/` }, 'data.name: name must not contain control characters');
    });
  });

  test('the same command delivered twice has one effect, one result and one announcement', async () => {
    const id = randomUUID();
    const data = { orgId: org.orgId, userId: org.user('carol'), name: 'Twice', url: `https://${site('twice')}/` };
    await sendCommand(backend.producer, backend.topics.userRequests, ADD, data, { id });
    await sendCommand(backend.producer, backend.topics.userRequests, ADD, data, { id });
    // A later command on the same partition (same key) proves both copies were consumed.
    const marker = await add({ name: 'Marker', url: 'http://not-https.example/' });
    expect(marker.result.data).toMatchObject({ code: 'INVALID_COMMAND' });
    await probe.waitFor((record) => record.id === `${id}:personal-bookmark-added`, 'the announcement');

    expect(probe.matching(resultFor(id))).toHaveLength(1);
    expect(probe.matching(resultFor(id))[0]!.type).toBe('selfservice.command.accepted.v1');
    expect(probe.matching((record) => record.type === ADDED && record.id?.startsWith(`${id}:`) === true)).toHaveLength(1);
    await expect(backend.db.personalBookmark.count({ where: { commandId: id } })).resolves.toBe(1);
    await expect(backend.db.processedCommand.count({ where: { commandId: id } })).resolves.toBe(1);
  });
});
