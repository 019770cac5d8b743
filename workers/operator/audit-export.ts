import { auditEntries } from '../../activities/operator-views';
import { helpText, isoTime, parseArgs, positionals, positiveInteger, UsageError, type CliCommand, type CommandSpec } from './args';
import { lineWriter, withDatabase } from './output';

const spec: CommandSpec = {
  name: 'audit export',
  summary: 'the audit trail as JSON lines, filtered, in the order it was written',
  details: [
    'One JSON object per line: id, at, orgId, actorId, action, outcome, code, message, subject, before, after,',
    'commandId. Read from the database a page at a time and written as it is read, so a trail of any size',
    'streams without being held in memory. Every filter given must match; without one, every org.',
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
  const out = parsed.values.get('out');
  const filter = {
    orgId: parsed.values.get('org'),
    since,
    until,
    actorId: parsed.values.get('actor'),
    action: parsed.values.get('action'),
    subject: parsed.values.get('request'),
  };
  const writer = lineWriter(out);
  let count = 0;
  try {
    await withDatabase(async (db) => {
      for await (const entry of auditEntries(db, filter, pageSize)) {
        await writer.write(JSON.stringify(entry));
        count += 1;
      }
    });
  } finally {
    await writer.close();
  }
  if (out) console.error(`exported ${count} audit entries to ${out}`);
  return true;
}

export const auditExportCommand: CliCommand = { spec, run };
