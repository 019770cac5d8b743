import {
  AUDIT_CHAIN_GENESIS,
  auditChainLinkOf,
  AuditChainVerifier,
  sealAuditEntries,
  type AuditChainBreak,
  type AuditChainHead,
  type AuditChainVerdict,
} from '../rules/audit-chain';
import type { Database } from './database';
import { auditExportRecordOf } from './read-models';

/**
 * The audit trail's hash chain in the database (rules/audit-chain.ts says what is hashed). Writers
 * insert audit entries unsealed (the three chain columns null); `sealAuditChain` chains an org's
 * unsealed entries after its head, and `verifyStoredAuditChain` recomputes an org's chain.
 *
 * Sealers may run in several processes at once. An org's chain is extended by one sealer at a time: a
 * transaction takes the org's advisory lock (a sealer that finds it taken skips the org, the holder
 * seals it) and then locks the org's AuditChainHead row, and the unique index on (orgId, chainSequence)
 * refuses a doubled place whatever happens. The append-only rule lets the chain columns be set once.
 */

/** Advisory lock space of the audit chains: pg_try_advisory_xact_lock(hashtext(this), hashtext(orgId)). */
const CHAIN_LOCK = 'selfservice-audit-chain';

export interface AuditSealResult {
  orgId: string;
  /** Entries chained by this call. */
  sealed: number;
  /** Another sealer holds the org's chain: nothing was done. */
  busy: boolean;
  /** A full batch was sealed: more may wait. */
  more: boolean;
}

/**
 * Orgs with unsealed entries, at most `limit`: one step of the unsealed entries' partial index per org
 * (a loose index scan), so the cost does not grow with the number of unsealed entries.
 */
export async function orgsWithUnsealedAudit(db: Database, limit: number): Promise<string[]> {
  const rows = await db.$queryRaw<{ orgId: string }[]>`
    WITH RECURSIVE orgs AS (
      (SELECT "orgId" FROM "AuditEntry" WHERE "hash" IS NULL ORDER BY "orgId" LIMIT 1)
      UNION ALL
      SELECT (SELECT e."orgId" FROM "AuditEntry" AS e WHERE e."hash" IS NULL AND e."orgId" > orgs."orgId" ORDER BY e."orgId" LIMIT 1)
      FROM orgs WHERE orgs."orgId" IS NOT NULL
    )
    SELECT "orgId" FROM orgs WHERE "orgId" IS NOT NULL LIMIT ${limit}`;
  return rows.map((row) => row.orgId);
}

/** The key of an org's chain lock (for a test that holds it). */
export const auditChainLockSql = (orgId: string) => ({ sql: `SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2)) AS taken`, values: [CHAIN_LOCK, orgId] });

/**
 * Chains up to `batchSize` of the org's unsealed entries, oldest id first, in one transaction: each gets
 * the next chainSequence, the previous entry's hash and its own, and the org's head moves to the last.
 */
export async function sealAuditChain(db: Database, orgId: string, batchSize = 500): Promise<AuditSealResult> {
  return db.$transaction(async (tx) => {
    const [lock] = await tx.$queryRaw<{ taken: boolean }[]>`SELECT pg_try_advisory_xact_lock(hashtext(${CHAIN_LOCK}), hashtext(${orgId})) AS taken`;
    if (!lock?.taken) return { orgId, sealed: 0, busy: true, more: false };
    await tx.$executeRaw`INSERT INTO "AuditChainHead" ("orgId", "sequence", "hash") VALUES (${orgId}, 0, ${AUDIT_CHAIN_GENESIS}) ON CONFLICT ("orgId") DO NOTHING`;
    const [stored] = await tx.$queryRaw<{ sequence: bigint; hash: string }[]>`
      SELECT "sequence", "hash" FROM "AuditChainHead" WHERE "orgId" = ${orgId} FOR UPDATE`;
    if (!stored) throw new Error(`audit chain of org ${orgId}: no chain head after creating it`);
    const rows = await tx.auditEntry.findMany({ where: { orgId, hash: null }, orderBy: { id: 'asc' }, take: batchSize });
    if (rows.length === 0) return { orgId, sealed: 0, busy: false, more: false };
    const head: AuditChainHead = { sequence: Number(stored.sequence), hash: stored.hash };
    const { seals, head: next } = sealAuditEntries(head, rows.map(auditExportRecordOf));
    // No RETURNING: the append-only rule is conditional, and PostgreSQL refuses RETURNING under it.
    const updated = await tx.$executeRaw`
      UPDATE "AuditEntry" AS e SET "chainSequence" = s."chainSequence", "previousHash" = s."previousHash", "hash" = s."hash"
      FROM unnest(${seals.map((seal) => seal.id)}::bigint[], ${seals.map((seal) => String(seal.chainSequence))}::bigint[],
                  ${seals.map((seal) => seal.previousHash)}::text[], ${seals.map((seal) => seal.hash)}::text[])
        AS s("id", "chainSequence", "previousHash", "hash")
      WHERE e."id" = s."id" AND e."orgId" = ${orgId} AND e."hash" IS NULL`;
    if (updated !== seals.length) throw new Error(`audit chain of org ${orgId}: sealed ${updated} of ${seals.length} entries (rolled back)`);
    const moved = await tx.$executeRaw`
      UPDATE "AuditChainHead" SET "sequence" = ${next.sequence}, "hash" = ${next.hash}, "sealedAt" = now() AT TIME ZONE 'UTC'
      WHERE "orgId" = ${orgId} AND "sequence" = ${head.sequence} AND "hash" = ${head.hash}`;
    if (moved !== 1) throw new Error(`audit chain of org ${orgId}: its head moved meanwhile (rolled back)`);
    return { orgId, sealed: seals.length, busy: false, more: rows.length === batchSize };
  });
}

export interface AuditSealBacklog {
  /** Entries not chained yet (every org). */
  count: number;
  /** Age of the oldest of them, null when there is none. */
  oldestAgeSeconds: number | null;
}

/** The unsealed entries and the age of the oldest: what the sealers have still to do. */
export async function readAuditSealBacklog(db: Database, orgId?: string): Promise<AuditSealBacklog> {
  const rows = orgId === undefined
    ? await db.$queryRaw<AuditSealBacklog[]>`
        SELECT count(*)::int AS count, extract(epoch FROM now() AT TIME ZONE 'UTC' - min("at"))::float8 AS "oldestAgeSeconds"
        FROM "AuditEntry" WHERE "hash" IS NULL`
    : await db.$queryRaw<AuditSealBacklog[]>`
        SELECT count(*)::int AS count, extract(epoch FROM now() AT TIME ZONE 'UTC' - min("at"))::float8 AS "oldestAgeSeconds"
        FROM "AuditEntry" WHERE "hash" IS NULL AND "orgId" = ${orgId}`;
  const row = rows[0];
  return { count: row?.count ?? 0, oldestAgeSeconds: row?.oldestAgeSeconds ?? null };
}

export async function readAuditChainHead(db: Database, orgId: string): Promise<AuditChainHead | null> {
  const head = await db.auditChainHead.findUnique({ where: { orgId } });
  return head ? { sequence: Number(head.sequence), hash: head.hash } : null;
}

export type StoredAuditChainVerdict = AuditChainVerdict & {
  /** Entries of the org not chained yet (not verified). */
  unsealed: number;
  oldestUnsealedAgeSeconds: number | null;
  /** Whether the database has anything of the org: an entry or a chain head. */
  found: boolean;
};

/**
 * Recomputes an org's chain from the database, a page at a time in chainSequence order (the unique
 * index), up to its recorded head, and checks the head. The first break is kept: the entry, its place
 * and what is wrong. Sealers may go on meanwhile: what they seal after the head was read is not read.
 */
export async function verifyStoredAuditChain(
  db: Database,
  orgId: string,
  options: { pageSize?: number; anchor?: AuditChainHead } = {},
): Promise<StoredAuditChainVerdict> {
  const { pageSize = 1000, anchor } = options;
  const verifier = new AuditChainVerifier(orgId, { anchor });
  const head = await readAuditChainHead(db, orgId);
  const through = BigInt(head?.sequence ?? 0);
  // An entry with a hash but no place cannot be followed: it was tampered with.
  const stray = await db.auditEntry.findFirst({ where: { orgId, chainSequence: null, OR: [{ hash: { not: null } }, { previousHash: { not: null } }] }, orderBy: { id: 'asc' } });
  if (stray) failWith(verifier, auditChainLinkOf(auditExportRecordOf(stray)));
  let after = 0n;
  let read = 0;
  while (!verifier.firstBreak) {
    const page = await db.auditEntry.findMany({ where: { orgId, chainSequence: { gt: after, lte: through } }, orderBy: { chainSequence: 'asc' }, take: pageSize });
    for (const row of page) {
      const link = auditChainLinkOf(auditExportRecordOf(row));
      if (link === 'unsealed' || 'problem' in link ? failWith(verifier, link) : verifier.add(link)) break;
    }
    read += page.length;
    if (page.length < pageSize) break;
    after = page[page.length - 1]!.chainSequence!;
  }
  if (!verifier.firstBreak) {
    // An entry beyond the head is fine only if a sealer has moved the head past it since.
    const beyond = await db.auditEntry.findFirst({ where: { orgId, chainSequence: { gt: through } }, orderBy: { chainSequence: 'asc' } });
    if (beyond) {
      read += 1;
      const now = await readAuditChainHead(db, orgId);
      if (!now || now.sequence < Number(beyond.chainSequence)) {
        verifier.fail({
          problem: 'head-mismatch',
          entryId: beyond.id.toString(),
          chainSequence: Number(beyond.chainSequence),
          message: `entry ${beyond.id} (sequence ${beyond.chainSequence}) lies beyond the chain head (sequence ${now?.sequence ?? 0})`,
        });
      }
    }
  }
  const verdict = verifier.finish(head);
  const backlog = await readAuditSealBacklog(db, orgId);
  return { ...verdict, unsealed: backlog.count, oldestUnsealedAgeSeconds: backlog.oldestAgeSeconds, found: head !== null || read > 0 || backlog.count > 0 };
}

/** A malformed entry met on the way (or one without a place where places are read) breaks the chain there. */
function failWith(verifier: AuditChainVerifier, found: ReturnType<typeof auditChainLinkOf>): AuditChainBreak {
  if (typeof found === 'object' && 'problem' in found) return verifier.fail(found);
  return verifier.fail({ problem: 'malformed', entryId: typeof found === 'object' ? found.id : null, chainSequence: null, message: 'an entry without a place in the chain was read in its place' });
}
