import { listPersonalAppUsage } from '../../activities/read-models';
import { startTestBackend, type TestBackend } from '../support/backend';
import { runCli, type CliRun } from '../support/cli';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * Personal app usage per catalog app: personal apps added through Kafka by users of two orgs, then
 * counted by the read model and by `apps usage` (the CLI as its own process), per org and across orgs.
 */
describe('personal app usage per catalog app', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;
  let acme: SeededOrg;
  let globex: SeededOrg;
  /** Catalog apps of this test, most used first: popular (4 users), niche (2), moved (1 active, 1 moved). */
  let popular: string;
  let niche: string;
  let movedApp: string;

  const ADD = 'selfservice.personal-app.add-requested.v1';

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults]);
    commands = new CommandClient(backend, probe);
    acme = await seedOrg(commands, { users: ['u1', 'u2', 'u3'], personalAppMigration: true });
    globex = await seedOrg(commands, { users: ['u1', 'u2'] });
    for (const org of [acme, globex]) {
      await commands.accepted('adminCommands', 'selfservice.settings.update-requested.v1', {
        orgId: org.orgId,
        actorId: org.superAdminId,
        changes: { allowPersonalApps: true, ...(org === acme ? { allowMoveToOktaPersonal: true } : {}) },
      });
    }
    [popular, niche, movedApp] = [uniqueId('cat-popular'), uniqueId('cat-niche'), uniqueId('cat-moved')];
    for (const [catalogAppId, name] of [[popular, 'Popular'], [niche, 'Niche'], [movedApp, 'Moved']]) {
      await commands.directory('catalog-app-upserted', { catalogAppId, name, signOnModes: ['SWA'] });
    }
    const add = async (org: SeededOrg, user: string, catalogAppId: string, username?: string) =>
      (await commands.accepted('userRequests', ADD, { orgId: org.orgId, userId: org.user(user), catalogAppId, ...(username ? { username } : {}) })).data.personalAppId as string;
    for (const user of ['u1', 'u2', 'u3']) await add(acme, user, popular);
    await add(globex, 'u1', popular);
    await add(acme, 'u1', niche);
    await add(globex, 'u2', niche);
    // Adding the same app again is one tile: still one user.
    await add(acme, 'u1', niche);
    await add(acme, 'u2', movedApp);
    const moving = await add(acme, 'u3', movedApp, 'jane@personal.example');
    const move = await commands.accepted('userRequests', 'selfservice.personal-app.move-requested.v1', { orgId: acme.orgId, userId: acme.user('u3'), personalAppIds: [moving] });
    expect(move.data).toMatchObject({ moved: 1 });
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const ours = <T extends { catalogAppId: string }>(rows: T[]): T[] => rows.filter((row) => [popular, niche, movedApp].includes(row.catalogAppId));

  test('the read model counts distinct users per catalog app, per org or across orgs, most used first', async () => {
    await expect(listPersonalAppUsage(backend.db, { orgId: acme.orgId, limit: 10 })).resolves.toEqual([
      { catalogAppId: popular, name: 'Popular', users: 3 },
      { catalogAppId: movedApp, name: 'Moved', users: 1 },
      { catalogAppId: niche, name: 'Niche', users: 1 },
    ].sort((a, b) => b.users - a.users || (a.catalogAppId < b.catalogAppId ? -1 : 1)));
    // An org admin's view holds only their org's users.
    await expect(listPersonalAppUsage(backend.db, { orgId: globex.orgId, limit: 10 })).resolves.toEqual(
      [
        { catalogAppId: popular, name: 'Popular', users: 1 },
        { catalogAppId: niche, name: 'Niche', users: 1 },
      ].sort((a, b) => (a.catalogAppId < b.catalogAppId ? -1 : 1)),
    );
    // Across orgs (the database is shared with other test files: only this test's apps are looked at).
    const all = ours(await listPersonalAppUsage(backend.db, { limit: 10_000 }));
    expect(all).toEqual([
      { catalogAppId: popular, name: 'Popular', users: 4 },
      { catalogAppId: niche, name: 'Niche', users: 2 },
      { catalogAppId: movedApp, name: 'Moved', users: 1 },
    ]);
    await expect(listPersonalAppUsage(backend.db, { orgId: acme.orgId, limit: 1 })).resolves.toEqual([{ catalogAppId: popular, name: 'Popular', users: 3 }]);
    await expect(listPersonalAppUsage(backend.db, { orgId: uniqueId('no-such-org'), limit: 10 })).resolves.toEqual([]);
  });

  test('the query is answered from indexes', async () => {
    // With few rows the planner may prefer a sequential scan, so the index is checked with those off.
    await backend.db.$transaction(async (tx) => {
      await tx.$executeRawUnsafe('SET LOCAL enable_seqscan = off');
      const forced = await tx.$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(
        `EXPLAIN SELECT p."catalogAppId", COUNT(*) FROM "PersonalApp" p WHERE p."status" = 'ACTIVE' AND p."orgId" = '${acme.orgId}' GROUP BY p."catalogAppId"`,
      );
      expect(forced.map((row) => row['QUERY PLAN']).join('\n')).toMatch(/Index/);
      const across = await tx.$queryRawUnsafe<{ 'QUERY PLAN': string }[]>(
        `EXPLAIN SELECT p."catalogAppId", COUNT(*) FROM "PersonalApp" p WHERE p."status" = 'ACTIVE' GROUP BY p."catalogAppId"`,
      );
      expect(across.map((row) => row['QUERY PLAN']).join('\n')).toMatch(/PersonalApp_catalogAppId_orgId_status_idx/);
    });
  });

  describe('apps usage (CLI)', () => {
    const cli = (...args: string[]) => runCli(backend, ...args);
    const rowsOf = (run: CliRun) => run.stdout.trim().split('\n');

    test('prints catalog app id, name and users as a table, most used first', async () => {
      const run = await cli('apps', 'usage', '--org', acme.orgId);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const [header, ...rows] = rowsOf(run);
      expect(header).toMatch(/^CATALOG APP\s+NAME\s+USERS$/);
      expect(rows[0]).toMatch(new RegExp(`^${popular}\\s+Popular\\s+3$`));
      expect(rows.slice(1).map((row) => row.split(/\s+/)[2])).toEqual(['1', '1']);
      expect(rows).toHaveLength(3);
    });

    test('--top N and --json', async () => {
      const top = await cli('apps', 'usage', '--org', acme.orgId, '--top', '1', '--json');
      expect(top.code).toBe(0);
      expect(rowsOf(top).map((line) => JSON.parse(line) as unknown)).toEqual([{ catalogAppId: popular, name: 'Popular', users: 3 }]);

      const across = await cli('apps', 'usage', '--top', '10000', '--json');
      expect(across.code).toBe(0);
      const mine = ours(rowsOf(across).map((line) => JSON.parse(line) as { catalogAppId: string; users: number }));
      expect(mine.map((row) => [row.catalogAppId, row.users])).toEqual([
        [popular, 4],
        [niche, 2],
        [movedApp, 1],
      ]);
    });

    test('an org without personal apps says so; --help and mistakes are answered like the other commands', async () => {
      const empty = await cli('apps', 'usage', '--org', uniqueId('no-such-org'));
      expect(empty.code).toBe(0);
      expect(empty.stdout).toMatch(/^no personal apps in org /);

      const help = await cli('apps', 'usage', '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('usage: npm run cli -- apps usage [options]');
      expect(help.stdout).toMatch(/--org ORG\s+this org's users only/);
      expect(help.stdout).toMatch(/--top N\s+the N most used apps/);
      expect(help.stdout).toContain('npm run cli -- apps usage --org org-acme --top 5');

      const group = await cli('apps', '--help');
      expect(group.stdout).toMatch(/apps usage\s+how many users have each catalog app as a personal app/);

      const wrong = await cli('apps', 'usage', '--top', '0');
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain('--top must be a whole number from 1 to 10000');
      const unknown = await cli('apps', 'usage', '--since', '2026-01-01');
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('unknown option --since for apps usage');
    });
  });
});
