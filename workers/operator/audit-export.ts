import { auditEntries, countUnsealedAuditEntries, lastAuditEntryId, type AuditFilter } from '../../activities/operator-views';
import type { Database } from '../../activities/database';
import { helpText, isoTime, parseArgs, positionals, positiveInteger, UsageError, type CliCommand, type CommandSpec } from './args';
import { lineWriter, withDatabase } from './output';

const spec: CommandSpec = {
  name: 'audit export',
  summary: 'the audit trail as JSON lines, filtered, in the order it was written',
  details: [
    'One JSON object per line: id, at, orgId, actorId, action, outcome, code, message, subject, before, after,',
    "commandId, and the entry's place in its org's hash chain: chainSequence, previousHash, hash (see",
    '`audit verify --help`: `audit verify --file` checks an export offline). Read from the database a page at',
    'a time and written as it is read, so a trail of any size streams without being held in memory. Every',
    'filter given must match; without one, every org. The export covers the entries written before it',
    'starts; it first waits (--seal-wait) until they are sealed, and says on stderr how many went out',
    'unsealed (chain fields null) if the sealer (in the outbox relay process) did not get to them.',
  ],
  options: [
    { name: 'org', value: 'ORG', description: 'only this org' },
    { name: 'since', value: 'ISO', description: 'entries at or after this time (2026-11-29 or 2026-11-29T08:00:00Z)' },
    { name: 'until', value: 'ISO', description: 'entries before this time' },
    { name: 'actor', value: 'USER', description: 'entries by this actor (an admin, a user, system:directory-sync)' },
    { name: 'action', value: 'ACTION', description: 'this action (app-request.delete), or a prefix ending in * (app-request.*)' },
    { name: 'request', value: 'REQUEST', description: 'entries about this request (their subject)' },
    { name: 'out', value: 'FILE', description: 'write to FILE (created or replaced, mode 600) instead of stdout' },
    { name: 'page-size', value: 'N', description: 'rows read per query (default 1000)' },
    { name: 'seal-wait', value: 'SECONDS', description: 'wait at most this long for the entries to be sealed first (default 10, 0: do not wait)' },
  ],
  examples: ['audit export --org org-acme --since 2026-11-01 --until 2026-12-01 --out audit-november.jsonl', "audit export --actor u-admin --action 'app-request.*'"],
};

async function run(args: readonly string[]): Promise<boolean> {
  const parsed = parseArgs(spec, args);
  if (parsed.help) {
    console.log(helpText(spec));
    return true;
  }
  positionals(spec, parsed, []);
  const since = isoTime(spec, '--since', parsed.values.get('since'));
  const until = isoTime(spec, '--until', parsed.values.get('until'));
  if (since && until && since >= until) throw new UsageError('--since must be before --until', helpText(spec));
  const pageSize = positiveInteger(spec, '--page-size', parsed.values.get('page-size'), 1000, 10_000);
  const sealWaitText = parsed.values.get('seal-wait');
  const sealWaitSeconds = sealWaitText === '0' ? 0 : positiveInteger(spec, '--seal-wait', sealWaitText, 10, 3600);
  const out = parsed.values.get('out');
  const filter: AuditFilter = {
    orgId: parsed.values.get('org'),
    since,
    until,
    actorId: parsed.values.get('actor'),
    action: parsed.values.get('action'),
    subject: parsed.values.get('request'),
  };
  const writer = lineWriter(out);
  let count = 0;
  let unsealed = 0;
  try {
    await withDatabase(async (db) => {
      filter.throughId = await lastAuditEntryId(db);
      await untilSealed(db, filter, sealWaitSeconds * 1000);
      for await (const entry of auditEntries(db, filter, pageSize)) {
        await writer.write(JSON.stringify(entry));
        count += 1;
        if (entry.hash === null) unsealed += 1;
      }
    });
  } finally {
    await writer.close();
  }
  if (out) console.error(`exported ${count} audit entries to ${out}`);
  if (unsealed > 0) {
    console.error(`${unsealed} of the ${count} entries exported were not sealed yet: their chainSequence, previousHash and hash are null (the outbox relay process seals them: is it running?)`);
  }
  return true;
}

/** Waits until the sealer has chained the entries of the export, or `ms` have passed. */
async function untilSealed(db: Database, filter: AuditFilter, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await countUnsealedAuditEntries(db, filter)) > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(200, Math.max(0, deadline - Date.now()))));
  }
}

export const auditExportCommand: CliCommand = { spec, run };
