import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { auditChainLockSql, sealAuditChain, verifyStoredAuditChain } from '../../activities/audit-chain';
import type { Database } from '../../activities/database';
import { auditExportRecordOf } from '../../activities/read-models';
import type { AuditEntry } from '../../prisma/client/client';
import { AUDIT_CHAIN_GENESIS, auditEntryHash, sealAuditEntries, type AuditChainVerdict } from '../../rules/audit-chain';
import { startAuditSealer } from '../../workers/audit-sealer';
import { startTestBackend, type TestBackend } from '../support/backend';
import { runCli } from '../support/cli';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { TopicProbe } from '../support/kafka-probe';
import { ownerDatabase } from '../support/owner-database';
import { APP_DATABASE_ROLE, testDatabaseUrl, uniqueId } from '../support/test-config';

/**
 * The tamper-evident audit trail on the real services: the entries that commands sent through Kafka
 * write are chained by the audit sealer (beside the outbox relay); `audit verify` recomputes the chain
 * and names the first entry that breaks it when the owner of the database (who may switch the
 * append-only rules off) changes or removes one; the application role cannot; sealers racing on one org
 * make one chain; and an export carries the chain so that it verifies offline.
 */
describe('tamper-evident audit trail', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;
  let owner: Database;
  let app: Client; // raw SQL as the application role
  let org: SeededOrg;
  const workDir = mkdtempSync(path.join(tmpdir(), 'audit-chain-'));
  const UPDATE = 'selfservice.settings.update-requested.v1';

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults]);
    commands = new CommandClient(backend, probe);
    owner = ownerDatabase();
    app = new Client({ connectionString: testDatabaseUrl() });
    await app.connect();
    // Audited commands of every kind the ingress applies: directory upserts, settings accepted and refused.
    org = await seedOrg(commands, { users: ['requester', 'approver'] });
    for (const allowPersonalApps of [true, false, true]) await commands.accepted('adminCommands', UPDATE, { orgId: org.orgId, actorId: org.superAdminId, changes: { allowPersonalApps } });
    const refused = await commands.send('adminCommands', UPDATE, { orgId: org.orgId, actorId: org.user('requester'), changes: { allowPersonalApps: false } });
    expect(refused.type).toBe('selfservice.command.rejected.v1');
    const refusedRequest = await commands.send('userRequests', 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user('requester'), appId: uniqueId('app-missing') });
    expect(refusedRequest.type).toBe('selfservice.command.rejected.v1');
    await commands.accepted('adminCommands', 'selfservice.technical-contact.set-requested.v1', { orgId: org.orgId, actorId: org.superAdminId, contact: org.user('approver') });
    await untilSealed(org.orgId);
  });

  afterAll(async () => {
    await app?.end();
    await owner?.$disconnect();
    await probe?.stop();
    await backend?.stop();
  });

  async function untilSealed(orgId: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const [all, unsealed] = await Promise.all([
        backend.db.auditEntry.count({ where: { orgId } }),
        backend.db.auditEntry.count({ where: { orgId, hash: null } }),
      ]);
      if (all > 0 && unsealed === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the audit entries of ${orgId} were not sealed within ${timeoutMs} ms`);
  }

  const chainOf = (orgId: string) => backend.db.auditEntry.findMany({ where: { orgId }, orderBy: { chainSequence: 'asc' } });
  const cli = (...args: string[]) => runCli(backend, ...args);
  async function verifyJson(...args: string[]): Promise<{ code: number | null; verdicts: (AuditChainVerdict & { unsealed: number })[] }> {
    const run = await cli('audit', 'verify', ...args, '--json');
    expect(run.stderr).toBe('');
    return { code: run.code, verdicts: run.stdout.trim().split('\n').map((line) => JSON.parse(line) as AuditChainVerdict & { unsealed: number }) };
  }

  /** SQL as the owner with an append-only rule switched off, in one transaction (the rule is on again at commit). */
  async function asOwnerWithout(rule: 'AuditEntry_no_update' | 'AuditEntry_no_delete', ...statements: string[]): Promise<void> {
    await owner.$transaction([
      owner.$executeRawUnsafe(`ALTER TABLE "AuditEntry" DISABLE RULE "${rule}"`),
      ...statements.map((statement) => owner.$executeRawUnsafe(statement)),
      owner.$executeRawUnsafe(`ALTER TABLE "AuditEntry" ENABLE RULE "${rule}"`),
    ]);
  }

  /** A statement as the application role in a transaction that is always rolled back. */
  async function asApp(sql: string, values: unknown[] = []): Promise<unknown> {
    await app.query('BEGIN');
    try {
      return await app.query(sql, values);
    } finally {
      await app.query('ROLLBACK');
    }
  }

  const sqlText = (value: string | null) => (value === null ? 'NULL' : `'${value.replace(/'/g, "''")}'`);

  test('the entries that commands write are chained within seconds: places 1 to n, each linked to the one before, and audit verify says OK', async () => {
    const chain = await chainOf(org.orgId);
    expect(chain.length).toBeGreaterThanOrEqual(6);
    expect(chain.map((entry) => Number(entry.chainSequence))).toEqual(chain.map((_, index) => index + 1));
    // One writer per org here (the ingress, one partition): the chain follows the order written.
    expect(chain.map((entry) => entry.id)).toEqual([...chain.map((entry) => entry.id)].sort((a, b) => (a < b ? -1 : 1)));
    chain.forEach((entry, index) => {
      expect(entry.previousHash).toBe(index === 0 ? AUDIT_CHAIN_GENESIS : chain[index - 1]!.hash);
      expect(entry.hash).toBe(auditEntryHash({ ...auditExportRecordOf(entry), chainSequence: index + 1, previousHash: entry.previousHash! }));
    });
    const last = chain[chain.length - 1]!;
    await expect(owner.auditChainHead.findUniqueOrThrow({ where: { orgId: org.orgId } })).resolves.toMatchObject({ sequence: last.chainSequence, hash: last.hash });
    expect(chain.map((entry) => entry.action)).toEqual(expect.arrayContaining(['settings.update', 'technical-contact.set', 'app-request.request']));
    expect(chain.filter((entry) => entry.outcome === 'REJECTED')).toHaveLength(2);

    const run = await cli('audit', 'verify', '--org', org.orgId);
    expect(run).toEqual({ code: 0, stderr: '', stdout: `${org.orgId}: OK, ${chain.length} entries chained, last sequence ${chain.length}, last hash ${last.hash}\n` });
    await expect(verifyJson('--org', org.orgId)).resolves.toEqual({
      code: 0,
      verdicts: [{ orgId: org.orgId, ok: true, entries: chain.length, lastSequence: chain.length, lastHash: last.hash, unsealed: 0, oldestUnsealedAgeSeconds: null }],
    });
  });

  test('the application role cannot change the trail: its content is denied, the chain columns are set once and never again', async () => {
    const [entry] = await chainOf(org.orgId);
    const id = entry!.id.toString();
    const columns = await owner.$queryRaw<{ name: string }[]>`
      SELECT attname AS name FROM pg_attribute WHERE attrelid = '"AuditEntry"'::regclass AND attnum > 0 AND NOT attisdropped
        AND has_column_privilege(${APP_DATABASE_ROLE}, attrelid, attnum, 'UPDATE') ORDER BY attname`;
    expect(columns.map((column) => column.name)).toEqual(['chainSequence', 'hash', 'previousHash']);
    const denied = { code: '42501', message: 'permission denied for table AuditEntry' };
    const appendOnly = { message: `invalid input syntax for type integer: "the audit trail is append-only, AuditEntry rows cannot be updated: id ${id}"` };
    await expect(asApp(`UPDATE "AuditEntry" SET "message" = 'tampered' WHERE "id" = $1`, [id])).rejects.toMatchObject(denied);
    await expect(asApp(`UPDATE "AuditEntry" SET "actorId" = 'tampered', "hash" = $2 WHERE "id" = $1`, [id, 'a'.repeat(64)])).rejects.toMatchObject(denied);
    await expect(asApp(`DELETE FROM "AuditEntry" WHERE "id" = $1`, [id])).rejects.toMatchObject(denied);
    await expect(backend.db.auditEntry.updateMany({ where: { id: entry!.id }, data: { message: 'tampered' } })).rejects.toThrow(/permission denied/);
    // The chain columns of a sealed entry: neither resealed nor unsealed.
    await expect(asApp(`UPDATE "AuditEntry" SET "hash" = $2 WHERE "id" = $1`, [id, 'a'.repeat(64)])).rejects.toMatchObject(appendOnly);
    await expect(asApp(`UPDATE "AuditEntry" SET "chainSequence" = NULL, "previousHash" = NULL, "hash" = NULL WHERE "id" = $1`, [id])).rejects.toMatchObject(appendOnly);

    // An entry not sealed yet (uncommitted, so no sealer sees it): its place must be free and its chain fields whole.
    await app.query('BEGIN');
    try {
      const inserted = await app.query<{ id: string }>(`INSERT INTO "AuditEntry" ("orgId", "actorId", "action", "outcome") VALUES ($1, 'u-x', 'roles.test', 'ACCEPTED') RETURNING "id"`, [org.orgId]);
      const fresh = inserted.rows[0]!.id;
      await app.query('SAVEPOINT s');
      await expect(app.query(`UPDATE "AuditEntry" SET "chainSequence" = 1, "previousHash" = $2, "hash" = $2 WHERE "id" = $1`, [fresh, AUDIT_CHAIN_GENESIS])).rejects.toMatchObject({
        code: '23505',
        message: expect.stringContaining('AuditEntry_orgId_chainSequence_key'),
      });
      await app.query('ROLLBACK TO SAVEPOINT s');
      await expect(app.query(`UPDATE "AuditEntry" SET "hash" = $2 WHERE "id" = $1`, [fresh, AUDIT_CHAIN_GENESIS])).rejects.toMatchObject({ code: '23514' });
    } finally {
      await app.query('ROLLBACK');
    }
    await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({ code: 0, verdicts: [{ ok: true }] });
  });

  test("an entry edited with the owner's rights is named by audit verify, also when its hash was recomputed; put back, the chain is whole again", async () => {
    const chain = await chainOf(org.orgId);
    const k = Math.floor(chain.length / 2);
    const target = chain[k - 1]!; // sequence k
    const next = chain[k]!;
    const id = target.id.toString();
    const tampered = 'changed by the owner';

    try {
      await asOwnerWithout('AuditEntry_no_update', `UPDATE "AuditEntry" SET "message" = '${tampered}' WHERE "id" = ${id}`);
      const edited = await cli('audit', 'verify', '--org', org.orgId);
      expect(edited.code).toBe(1);
      expect(edited.stdout).toBe(
        `${org.orgId}: BROKEN (hash-mismatch): entry ${id} (sequence ${k}): its content does not match its hash (changed after it was sealed); ${k - 1} entries before it verified\n`,
      );
      await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({
        code: 1,
        verdicts: [{ orgId: org.orgId, ok: false, entries: k - 1, break: { problem: 'hash-mismatch', entryId: id, chainSequence: k } }],
      });

      // A better forger recomputes the entry's hash: the next entry, which holds the old one, names it.
      const forged = auditEntryHash({ ...auditExportRecordOf({ ...target, message: tampered }), chainSequence: k, previousHash: target.previousHash! });
      await asOwnerWithout('AuditEntry_no_update', `UPDATE "AuditEntry" SET "hash" = '${forged}' WHERE "id" = ${id}`);
      await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({
        code: 1,
        verdicts: [{ ok: false, entries: k, break: { problem: 'previous-hash-mismatch', entryId: next.id.toString(), chainSequence: k + 1 } }],
      });
    } finally {
      await asOwnerWithout('AuditEntry_no_update', `UPDATE "AuditEntry" SET "message" = ${sqlText(target.message)}, "hash" = '${target.hash}' WHERE "id" = ${id}`);
    }
    await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({ code: 0, verdicts: [{ ok: true, entries: chain.length }] });
  });

  test("an entry deleted with the owner's rights is named: the missing place, at the entry after it; a deleted last entry by the chain head", async () => {
    const chain = await chainOf(org.orgId);
    const k = 2;
    const removed = chain[k - 1]!;
    try {
      await asOwnerWithout('AuditEntry_no_delete', `DELETE FROM "AuditEntry" WHERE "id" = ${removed.id}`);
      const run = await cli('audit', 'verify', '--org', org.orgId);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe(
        `${org.orgId}: BROKEN (missing-entry): entry ${chain[k]!.id} (sequence ${k + 1}): sequence ${k} is missing between entry ${chain[0]!.id} (sequence 1) and it (removed); 1 entry before it verified\n`,
      );
      await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({
        code: 1,
        verdicts: [{ ok: false, entries: 1, break: { problem: 'missing-entry', entryId: chain[k]!.id.toString(), chainSequence: k + 1, missing: { from: k, to: k } } }],
      });
    } finally {
      await putBack(removed);
    }
    await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({ code: 0, verdicts: [{ ok: true, entries: chain.length }] });

    const last = chain[chain.length - 1]!;
    try {
      await asOwnerWithout('AuditEntry_no_delete', `DELETE FROM "AuditEntry" WHERE "id" = ${last.id}`);
      await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({
        code: 1,
        verdicts: [{ ok: false, entries: chain.length - 1, break: { problem: 'missing-entry', entryId: null, chainSequence: chain.length, missing: { from: chain.length, to: chain.length } } }],
      });
    } finally {
      await putBack(last);
    }
    await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({ code: 0, verdicts: [{ ok: true, entries: chain.length }] });
  });

  test("a chain the owner recomputed after an edit verifies, but not against an anchor noted earlier outside the database", async () => {
    const chain = await chainOf(org.orgId);
    const n = chain.length;
    const last = chain[n - 1]!;
    const anchor = `${n}:${last.hash}`;
    await expect(verifyJson('--org', org.orgId, '--anchor', anchor)).resolves.toMatchObject({ code: 0, verdicts: [{ ok: true, entries: n }] });

    // The owner changes entry 3 and reseals it and every entry after it, and moves the head.
    const k = 3;
    const contents = chain.map(auditExportRecordOf).map((record, index) => (index === k - 1 ? { ...record, message: 'rewritten by the owner' } : record));
    const { seals, head } = sealAuditEntries({ sequence: k - 1, hash: chain[k - 2]!.hash! }, contents.slice(k - 1));
    const reseal = (rows: { id: string; message: string | null; previousHash: string; hash: string }[], headHash: string) =>
      asOwnerWithout(
        'AuditEntry_no_update',
        ...rows.map((row) => `UPDATE "AuditEntry" SET "message" = ${sqlText(row.message)}, "previousHash" = '${row.previousHash}', "hash" = '${row.hash}' WHERE "id" = ${row.id}`),
        `UPDATE "AuditChainHead" SET "hash" = '${headHash}' WHERE "orgId" = ${sqlText(org.orgId)}`,
      );
    try {
      await reseal(seals.map((seal, index) => ({ ...seal, message: contents[k - 1 + index]!.message })), head.hash);
      await expect(verifyJson('--org', org.orgId)).resolves.toMatchObject({ code: 0, verdicts: [{ ok: true, entries: n }] });
      const caught = await cli('audit', 'verify', '--org', org.orgId, '--anchor', anchor);
      expect(caught.code).toBe(1);
      expect(caught.stdout).toBe(
        `${org.orgId}: BROKEN (anchor-mismatch): entry ${last.id} (sequence ${n}): its hash is ${head.hash}, not ${last.hash} as noted earlier: the chain was rewritten up to here; ${n - 1} entries before it verified\n`,
      );
    } finally {
      await reseal(chain.slice(k - 1).map((row) => ({ id: row.id.toString(), message: row.message, previousHash: row.previousHash!, hash: row.hash! })), last.hash!);
    }
    await expect(verifyJson('--org', org.orgId, '--anchor', anchor)).resolves.toMatchObject({ code: 0, verdicts: [{ ok: true, entries: n }] });
  });

  /** The owner inserts a removed row again, exactly as it was (its id and chain columns too). */
  async function putBack(row: AuditEntry): Promise<void> {
    const { before, after, ...rest } = row;
    await owner.auditEntry.create({ data: { ...rest, before: before ?? undefined, after: after ?? undefined } });
  }

  test('sealers racing on one org make one linear chain: no fork, no doubled place; a sealer that finds the chain taken skips it', async () => {
    const raceOrg = uniqueId('org-race');
    const sealedBy = [0, 0];
    const failures = [0, 0];
    const sealers = [0, 1].map((index) =>
      startAuditSealer({
        databaseUrl: testDatabaseUrl(),
        batchSize: 7,
        pollIntervalMs: 5,
        metrics: { sealed: (count) => (sealedBy[index]! += count), sealFailed: () => (failures[index]! += 1) },
        log: (message) => console.warn(`racing sealer ${index}: ${message}`),
      }),
    );
    let direct = 0;
    let busy = 0;
    try {
      for (let round = 0; round < 12; round += 1) {
        await backend.db.auditEntry.createMany({
          data: Array.from({ length: 25 }, (_, index) => ({ orgId: raceOrg, actorId: `u-${round}`, action: 'race.test', outcome: 'ACCEPTED' as const, message: `round ${round} entry ${index}`, after: { round, index } })),
        });
        // And direct calls, all at once, beside the two sealers and the backend's.
        const results = await Promise.all(Array.from({ length: 4 }, () => sealAuditChain(backend.db, raceOrg, 5)));
        direct += results.reduce((sum, result) => sum + result.sealed, 0);
        busy += results.filter((result) => result.busy).length;
      }
      await untilSealed(raceOrg);
    } finally {
      await Promise.all(sealers.map((sealer) => sealer.stop()));
    }
    const chain = await chainOf(raceOrg);
    expect(chain).toHaveLength(300);
    expect(chain.map((entry) => Number(entry.chainSequence))).toEqual(chain.map((_, index) => index + 1));
    chain.forEach((entry, index) => expect(entry.previousHash).toBe(index === 0 ? AUDIT_CHAIN_GENESIS : chain[index - 1]!.hash));
    await expect(verifyStoredAuditChain(backend.db, raceOrg)).resolves.toMatchObject({ ok: true, entries: 300, lastSequence: 300, lastHash: chain[299]!.hash, unsealed: 0 });
    expect(failures).toEqual([0, 0]);
    expect(sealedBy[0]! + sealedBy[1]! + direct).toBeLessThanOrEqual(300);
    expect(busy).toBeGreaterThan(0); // four calls at once on one org: all but one found it taken

    // While another holds an org's chain, a sealer leaves it alone; the holder's commit frees it.
    const held = uniqueId('org-held');
    await backend.db.auditEntry.create({ data: { orgId: held, actorId: 'u-held', action: 'race.test', outcome: 'ACCEPTED' } });
    const { sql, values } = auditChainLockSql(held);
    await app.query('BEGIN');
    try {
      await expect(app.query(sql, values)).resolves.toMatchObject({ rows: [{ taken: true }] });
      await expect(sealAuditChain(backend.db, held)).resolves.toEqual({ orgId: held, sealed: 0, busy: true, more: false });
      await expect(backend.db.auditEntry.count({ where: { orgId: held, hash: null } })).resolves.toBe(1);
    } finally {
      await app.query('COMMIT');
    }
    await untilSealed(held);
  });

  test('the export carries the chain and verifies offline; an edited, shortened or filtered file is caught', async () => {
    const chain = await chainOf(org.orgId);
    const head = await owner.auditChainHead.findUniqueOrThrow({ where: { orgId: org.orgId } });
    const file = path.join(workDir, 'audit.jsonl');
    const exported = await cli('audit', 'export', '--org', org.orgId, '--out', file);
    expect(exported).toEqual({ code: 0, stdout: '', stderr: `exported ${chain.length} audit entries to ${file}\n` });
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const byId = new Map(chain.map((entry) => [entry.id.toString(), entry]));
    for (const record of records) {
      const stored = byId.get(record.id as string)!;
      expect(record).toMatchObject({ chainSequence: Number(stored.chainSequence), previousHash: stored.previousHash, hash: stored.hash });
      expect(Object.keys(record).slice(-3)).toEqual(['chainSequence', 'previousHash', 'hash']);
    }

    const ok = await cli('audit', 'verify', '--file', file);
    expect(ok).toEqual({ code: 0, stderr: '', stdout: `${org.orgId}: OK, ${chain.length} entries chained, last sequence ${chain.length}, last hash ${head.hash}\n` });
    const write = (name: string, content: string[]) => {
      const target = path.join(workDir, name);
      writeFileSync(target, `${content.join('\n')}\n`);
      return target;
    };
    // In any order.
    await expect(cli('audit', 'verify', '--file', write('reversed.jsonl', [...lines].reverse()))).resolves.toMatchObject({ code: 0, stdout: ok.stdout });

    const k = 3;
    const edited = lines.map((line, index) => (index === k - 1 ? JSON.stringify({ ...records[index], actorId: 'someone else' }) : line));
    await expect(verifyJson('--file', write('edited.jsonl', edited))).resolves.toMatchObject({
      code: 1,
      verdicts: [{ orgId: org.orgId, ok: false, entries: k - 1, break: { problem: 'hash-mismatch', entryId: records[k - 1]!.id, chainSequence: k } }],
    });
    const shortened = lines.filter((_, index) => index !== k - 1);
    await expect(verifyJson('--file', write('shortened.jsonl', shortened))).resolves.toMatchObject({
      code: 1,
      verdicts: [{ ok: false, break: { problem: 'missing-entry', entryId: records[k]!.id, missing: { from: k, to: k } } }],
    });

    // A filtered export has gaps: it verifies entry by entry with --allow-gaps only.
    const filtered = path.join(workDir, 'contact.jsonl');
    await expect(cli('audit', 'export', '--org', org.orgId, '--action', 'technical-contact.set', '--out', filtered)).resolves.toMatchObject({ code: 0 });
    await expect(verifyJson('--file', filtered)).resolves.toMatchObject({ code: 1, verdicts: [{ ok: false, break: { problem: 'missing-entry' } }] });
    await expect(verifyJson('--file', filtered, '--allow-gaps')).resolves.toMatchObject({ code: 0, verdicts: [{ ok: true }] });

    const notAnExport = await cli('audit', 'verify', '--file', write('garbage.jsonl', [lines[0]!, '{"id":"1"}']));
    expect(notAnExport.code).toBe(1);
    expect(notAnExport.stderr).toMatch(/garbage\.jsonl:2: not an audit export line/);
  });

  test('audit verify: --help, and a usage error without --org or --file', async () => {
    const help = await cli('audit', 'verify', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run cli -- audit verify \[options\]/);
    expect(help.stdout).toContain('--allow-gaps');
    const usage = await cli('audit', 'verify');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('audit verify needs --org ORG (or --file FILE)');
    await expect(cli('audit', 'verify', '--org', uniqueId('org-none'))).resolves.toMatchObject({ code: 1, stderr: expect.stringContaining('no audit entries of org') });
    await expect(cli('audit', 'verify', '--org', org.orgId, '--anchor', '3:ABC')).resolves.toMatchObject({ code: 2, stderr: expect.stringContaining('--anchor must be SEQ:HASH') });
  });
});
