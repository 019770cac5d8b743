import { Client } from 'pg';
import { createDatabase, type Database } from '../../activities/database';
import { ownerDatabase } from '../support/owner-database';
import { APP_DATABASE_ROLE, testConfig, testDatabaseUrl, uniqueId } from '../support/test-config';

/**
 * Least privilege in PostgreSQL, on the real test database: the migrations run as the owner role, the
 * backend connects as the application role, which may read and write what the application needs but
 * can neither alter the schema nor update, delete or truncate the audit trail and the request history.
 */
const APPEND_ONLY = ['AuditEntry', 'AppRequestEvent'] as const;
const OWNER_ONLY = ['_prisma_migrations'];
const READ_WRITE = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'];
const ALL_TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];

describe('database roles', () => {
  let app: Client; // raw SQL as the application role
  let appDb: Database; // Prisma as the application role, exactly as the backend connects
  let owner: Database;
  const orgId = uniqueId('org-roles');
  const requestId = uniqueId('req-roles');
  const eventId = `${requestId}:1`;
  const userId = uniqueId('u-roles');
  let auditId: bigint;

  beforeAll(async () => {
    app = new Client({ connectionString: testDatabaseUrl() });
    await app.connect();
    appDb = createDatabase(testConfig().DATABASE_URL);
    owner = ownerDatabase();
    // As the application role: an org, a request, its history and its audit entry (ids from a sequence).
    await appDb.org.create({ data: { id: orgId, name: 'Roles', emailDomains: ['roles.example'], blockedPersonalDomains: [] } });
    await appDb.appRequest.create({
      data: { id: requestId, orgId, appId: 'app-roles', requesterId: userId, status: 'PENDING', currentApproverIds: [], commandId: requestId, workflowId: `wf-${requestId}` },
    });
    await appDb.appRequestEvent.create({ data: { id: eventId, requestId, sequence: 1, name: 'submitted', actorId: userId, at: new Date() } });
    auditId = (await appDb.auditEntry.create({ data: { orgId, actorId: userId, action: 'roles.test', outcome: 'ACCEPTED', commandId: requestId } })).id;
  });

  afterAll(async () => {
    await app?.end();
    await appDb?.$disconnect();
    await owner?.$disconnect();
  });

  /** A statement as the application role in a transaction that is always rolled back: one that wrongly succeeded would change nothing. */
  async function asApp(sql: string): Promise<unknown> {
    await app.query('BEGIN');
    try {
      return await app.query(sql);
    } finally {
      await app.query('ROLLBACK');
    }
  }

  const permissionDenied = (table: string) => ({ code: '42501', message: `permission denied for table ${table}` });
  const notOwner = (table: string) => ({ code: '42501', message: expect.stringMatching(new RegExp(`^must be owner of (table|relation) ${table}$`)) });

  test('the backend connects as the application role, which owns nothing and has no attribute beyond LOGIN', async () => {
    await expect(appDb.$queryRaw<{ user: string }[]>`SELECT current_user AS "user"`).resolves.toEqual([{ user: APP_DATABASE_ROLE }]);
    const [role] = await owner.$queryRaw<Record<string, boolean>[]>`
      SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = ${APP_DATABASE_ROLE}`;
    expect(role).toEqual({ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false, rolcanlogin: true });
    const ownerRole = (await owner.$queryRaw<{ name: string }[]>`SELECT current_user AS name`)[0]?.name;
    expect(ownerRole).not.toBe(APP_DATABASE_ROLE);
    const owners = await owner.$queryRaw<{ tableowner: string }[]>`SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'`;
    expect(owners).toEqual([{ tableowner: ownerRole }]);
    const owned = await owner.$queryRaw<{ count: bigint }[]>`
      SELECT count(*) AS count FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = ${APP_DATABASE_ROLE})`;
    expect(owned).toEqual([{ count: 0n }]);
  });

  test('as the owner, the migration that grants the application role its rights has been applied', async () => {
    const applied = await owner.$queryRaw<{ name: string }[]>`
      SELECT migration_name AS name FROM "_prisma_migrations"
      WHERE migration_name LIKE '%\\_application\\_role' AND finished_at IS NOT NULL AND rolled_back_at IS NULL`;
    expect(applied).toHaveLength(1);
    // Prisma's bookkeeping is the owner's alone.
    await expect(asApp('SELECT count(*) FROM "_prisma_migrations"')).rejects.toMatchObject(permissionDenied('_prisma_migrations'));
  });

  test('on every table the application role has exactly its rights: the audit trail and the request history are append-only', async () => {
    const tables = await owner.$queryRaw<{ name: string }[]>`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`;
    expect(tables.map((table) => table.name)).toEqual(expect.arrayContaining([...APPEND_ONLY, ...OWNER_ONLY, 'Org', 'User', 'AppRequest']));
    const rights: Record<string, string[]> = {};
    const expected: Record<string, string[]> = {};
    for (const { name } of tables) {
      const granted = await owner.$queryRawUnsafe<{ privilege: string }[]>(
        `SELECT p AS privilege FROM unnest($1::text[]) AS p WHERE has_table_privilege($2, format('public.%I', $3::text), p)`,
        ALL_TABLE_PRIVILEGES,
        APP_DATABASE_ROLE,
        name,
      );
      rights[name] = granted.map((row) => row.privilege);
      // A table created by a later migration gets the default privileges (read and write); an
      // append-only one must revoke UPDATE, DELETE in its migration and be listed above.
      expected[name] = OWNER_ONLY.includes(name) ? [] : (APPEND_ONLY as readonly string[]).includes(name) ? ['SELECT', 'INSERT'] : READ_WRITE;
    }
    expect(rights).toEqual(expected);
    // Ids from sequences: nextval only, no setval.
    const sequences = await owner.$queryRaw<{ name: string; usage: boolean; update: boolean }[]>`
      SELECT sequencename AS name, has_sequence_privilege(${APP_DATABASE_ROLE}, format('public.%I', sequencename), 'USAGE') AS usage,
             has_sequence_privilege(${APP_DATABASE_ROLE}, format('public.%I', sequencename), 'UPDATE') AS update
      FROM pg_sequences WHERE schemaname = 'public'`;
    expect(sequences.length).toBeGreaterThan(0);
    for (const sequence of sequences) expect(sequence).toEqual({ name: sequence.name, usage: true, update: false });
  });

  test('the application role does what the application does: upserts, updates, deletes, and appends to the audit trail and the request history', async () => {
    // The directory sync's upserts (update, then insert), the settings row, a locked user row.
    await appDb.org.upsert({ where: { id: orgId }, create: { id: orgId, name: 'Roles', emailDomains: [], blockedPersonalDomains: [] }, update: { name: 'Roles renamed' } });
    const otherOrg = uniqueId('org-roles');
    await appDb.org.upsert({ where: { id: otherOrg }, create: { id: otherOrg, name: 'Other', emailDomains: [], blockedPersonalDomains: [] }, update: {} });
    await appDb.orgSettings.upsert({ where: { orgId }, create: { orgId }, update: {} });
    await appDb.user.upsert({ where: { id: userId }, create: { id: userId, orgId, email: `${userId}@roles.example`, status: 'ACTIVE', adminRoles: [] }, update: {} });
    await appDb.$transaction(async (tx) => tx.$queryRaw`SELECT 1 FROM "User" WHERE "id" = ${userId} FOR UPDATE`);
    // Group membership is replaced (the one DELETE the application makes).
    const groupId = uniqueId('g-roles');
    await appDb.group.upsert({ where: { id: groupId }, create: { id: groupId, orgId, name: 'G' }, update: {} });
    await appDb.groupMember.createMany({ data: [{ groupId, userId }] });
    await expect(appDb.groupMember.deleteMany({ where: { groupId, userId: { in: [userId] } } })).resolves.toEqual({ count: 1 });
    // The request moves on, its history and the audit trail grow (as in beforeAll): insert and read only.
    await appDb.appRequest.update({ where: { id: requestId }, data: { status: 'APPROVED', closedAt: new Date() } });
    const decided = `${requestId}:decided`;
    await appDb.appRequestEvent.create({ data: { id: decided, requestId, sequence: 2, name: 'approved', actorId: userId, at: new Date() } });
    await appDb.auditEntry.createMany({ data: [{ orgId, actorId: userId, action: 'roles.test.decided', outcome: 'ACCEPTED' }] });

    await expect(appDb.org.findUniqueOrThrow({ where: { id: orgId } })).resolves.toMatchObject({ name: 'Roles renamed' });
    await expect(appDb.appRequest.findUniqueOrThrow({ where: { id: requestId } })).resolves.toMatchObject({ status: 'APPROVED' });
    const history = await appDb.appRequestEvent.findMany({ where: { requestId }, orderBy: { sequence: 'asc' } });
    expect(history.map((event) => event.id)).toEqual([eventId, decided]);
    const trail = await appDb.auditEntry.findMany({ where: { orgId }, orderBy: { id: 'asc' } });
    expect(trail.map((entry) => entry.action)).toEqual(['roles.test', 'roles.test.decided']);
    expect(trail[0]?.id).toBe(auditId);
  });

  describe.each(APPEND_ONLY)('%s, as the application role', (table) => {
    const key = () => (table === 'AuditEntry' ? `"id" = ${auditId}` : `"id" = '${eventId}'`);

    test('TRUNCATE is refused: permission denied', async () => {
      await expect(asApp(`TRUNCATE "${table}"`)).rejects.toMatchObject(permissionDenied(table));
      await expect(asApp(`TRUNCATE "${table}" CASCADE`)).rejects.toMatchObject(permissionDenied(table));
    });

    test('UPDATE and DELETE of a row are refused: permission denied, in SQL and through Prisma', async () => {
      await expect(asApp(`UPDATE "${table}" SET "actorId" = 'tampered' WHERE ${key()}`)).rejects.toMatchObject(permissionDenied(table));
      await expect(asApp(`DELETE FROM "${table}" WHERE ${key()}`)).rejects.toMatchObject(permissionDenied(table));
      await expect(asApp(`DELETE FROM "${table}"`)).rejects.toMatchObject(permissionDenied(table));
      const model = table === 'AuditEntry' ? appDb.auditEntry : appDb.appRequestEvent;
      const where = table === 'AuditEntry' ? { id: auditId } : { id: eventId };
      await expect((model as typeof appDb.appRequestEvent).updateMany({ where: where as never, data: { actorId: 'tampered' } })).rejects.toThrow(/permission denied/);
      await expect((model as typeof appDb.appRequestEvent).deleteMany({ where: where as never })).rejects.toThrow(/permission denied/);
    });

    test('changing or dropping the table is refused: it belongs to the owner', async () => {
      await expect(asApp(`ALTER TABLE "${table}" ADD COLUMN "tampered" text`)).rejects.toMatchObject(notOwner(table));
      await expect(asApp(`ALTER TABLE "${table}" DISABLE TRIGGER ALL`)).rejects.toMatchObject(notOwner(table));
      await expect(asApp(`ALTER TABLE "${table}" OWNER TO ${APP_DATABASE_ROLE}`)).rejects.toMatchObject(notOwner(table));
      await expect(asApp(`DROP TABLE "${table}"`)).rejects.toMatchObject(notOwner(table));
    });

    test('inserting and reading still work, and the row is unchanged afterwards (read by the owner)', async () => {
      await expect(owner.$queryRawUnsafe(`SELECT "actorId" FROM "${table}" WHERE ${key()}`)).resolves.toEqual([{ actorId: userId }]);
      await expect(asApp(`SELECT count(*) FROM "${table}" WHERE ${key()}`)).resolves.toMatchObject({ rows: [{ count: '1' }] });
    });
  });

  test("the audit trail's append-only rules cannot be dropped or switched off by the application role", async () => {
    for (const rule of ['AuditEntry_no_update', 'AuditEntry_no_delete']) {
      await expect(asApp(`DROP RULE "${rule}" ON "AuditEntry"`)).rejects.toMatchObject(notOwner('AuditEntry'));
      await expect(asApp(`ALTER TABLE "AuditEntry" DISABLE RULE "${rule}"`)).rejects.toMatchObject(notOwner('AuditEntry'));
    }
    const rules = await owner.$queryRaw<{ name: string }[]>`SELECT rulename AS name FROM pg_rules WHERE tablename = 'AuditEntry' ORDER BY 1`;
    expect(rules.map((rule) => rule.name)).toEqual(['AuditEntry_no_delete', 'AuditEntry_no_update']);
  });

  test('the application role can neither create objects nor alter, drop or truncate any other table', async () => {
    await expect(asApp('CREATE TABLE "Tampered" ("id" int)')).rejects.toMatchObject({ code: '42501', message: 'permission denied for schema public' });
    await expect(asApp('TRUNCATE "Org" CASCADE')).rejects.toMatchObject(permissionDenied('Org'));
    await expect(asApp('TRUNCATE "ProcessedCommand"')).rejects.toMatchObject(permissionDenied('ProcessedCommand'));
    await expect(asApp(`ALTER TABLE "OrgSettings" ADD CONSTRAINT "tampered" CHECK (false) NOT VALID`)).rejects.toMatchObject(notOwner('OrgSettings'));
    await expect(asApp('DROP TABLE "ProcessedCommand"')).rejects.toMatchObject(notOwner('ProcessedCommand'));
    await expect(asApp(`CREATE TRIGGER "tampered" BEFORE INSERT ON "Org" FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()`)).rejects.toMatchObject({ code: '42501' });
  });
});
