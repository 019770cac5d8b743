import { Pool } from 'pg';
import { listAuditTrail, listAvailableApps } from '../../activities/read-models';
import { loadConfig } from '../config';
import { readOutboxBacklog } from '../outbox-relay';
import { helpText, parseArgs, positionals, positiveInteger, type CliCommand, type CommandSpec } from './args';
import { withDatabase } from './output';

const availableAppsSpec: CommandSpec = {
  name: 'available-apps',
  args: '<orgId>',
  summary: 'the Available Apps list: apps with requests enabled and their Approval On/Off',
  examples: ['available-apps org-acme'],
};

export const availableAppsCommand: CliCommand = {
  spec: availableAppsSpec,
  async run(args) {
    const parsed = parseArgs(availableAppsSpec, args);
    if (parsed.help) {
      console.log(helpText(availableAppsSpec));
      return true;
    }
    const [orgId] = positionals(availableAppsSpec, parsed, ['an orgId']);
    await withDatabase(async (db) => {
      const apps = await listAvailableApps(db, orgId!);
      console.table(apps.map(({ appId, label, approval, approverSteps }) => ({ appId, label, approval, approverSteps })));
    });
    return true;
  },
};

const auditTrailSpec: CommandSpec = {
  name: 'audit',
  args: '<orgId> [limit]',
  summary: "the org's audit trail, newest first, one JSON object per line (default: the last 50)",
  details: [
    'For the whole trail with filters (time range, actor, action, request) in the order written, see',
    '`audit export --help`. To check its hash chain (tamper evidence), `audit verify --help`.',
  ],
  examples: ['audit org-acme', 'audit org-acme 10'],
};

export const auditTrailCommand: CliCommand = {
  spec: auditTrailSpec,
  async run(args) {
    const parsed = parseArgs(auditTrailSpec, args);
    if (parsed.help) {
      console.log(helpText(auditTrailSpec));
      return true;
    }
    const [orgId, limitText] = positionals(auditTrailSpec, parsed, ['an orgId'], ['limit']);
    const limit = positiveInteger(auditTrailSpec, 'limit', limitText, 50);
    await withDatabase(async (db) => {
      for (const entry of await listAuditTrail(db, orgId!, limit)) console.log(JSON.stringify(entry));
    });
    return true;
  },
};

const outboxSpec: CommandSpec = {
  name: 'outbox',
  summary: 'events waiting for the outbox relay, and the age of the oldest',
  examples: ['outbox'],
};

export const outboxCommand: CliCommand = {
  spec: outboxSpec,
  async run(args) {
    const parsed = parseArgs(outboxSpec, args);
    if (parsed.help) {
      console.log(helpText(outboxSpec));
      return true;
    }
    positionals(outboxSpec, parsed, []);
    const config = loadConfig();
    const pool = new Pool({ connectionString: config.DATABASE_URL, max: 1 });
    try {
      const { count, oldestAgeSeconds } = await readOutboxBacklog(pool, config.KAFKA_TOPIC_NAMESPACE);
      console.log(JSON.stringify({ namespace: config.KAFKA_TOPIC_NAMESPACE, unpublished: count, oldestAgeSeconds }));
    } finally {
      await pool.end();
    }
    return true;
  },
};
