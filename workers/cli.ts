import { readFileSync } from 'node:fs';
import { createDatabase } from '../activities/database';
import { listAuditTrail, listAvailableApps } from '../activities/read-models';
import { importCommands, importFileSchema } from '../events/command-import';
import { describeIssues } from '../events/validation';
import { loadConfig } from './config';
import { connectIngress } from './runtime';

const USAGE = `usage:
  npm run cli -- import <file.json>           run directory/admin commands from a file (same validation and workflows as Kafka)
  npm run cli -- available-apps <orgId>       the Available Apps list: apps with requests enabled and their Approval On/Off
  npm run cli -- audit <orgId> [limit]        the org's audit trail, newest first`;

class UsageError extends Error {}

async function runImport(path: string): Promise<boolean> {
  const config = loadConfig();
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read ${path} as JSON: ${(error as Error).message}`);
  }
  const file = importFileSchema.safeParse(json);
  if (!file.success) throw new UsageError(`${path} is not an import file: ${describeIssues(file.error.issues)}`);

  const runtime = await connectIngress(config, { clientId: `${config.KAFKA_CLIENT_ID}-cli` });
  try {
    const outcomes = await importCommands(file.data, runtime.topics, runtime.router);
    for (const { index, type, result } of outcomes) {
      const detail = result.outcome === 'ACCEPTED' ? '' : ` ${result.code}: ${result.message}`;
      console.log(`#${index} ${type} ${result.outcome}${detail}`);
    }
    const rejected = outcomes.filter((outcome) => outcome.result.outcome === 'REJECTED').length;
    console.log(`imported ${outcomes.length - rejected} of ${outcomes.length} commands`);
    return rejected === 0;
  } finally {
    await runtime.close();
  }
}

async function main(args: string[]): Promise<boolean> {
  const [command, ...rest] = args;
  switch (command) {
    case 'import': {
      if (!rest[0]) throw new UsageError('import needs a file');
      return runImport(rest[0]);
    }
    case 'available-apps':
    case 'audit': {
      const orgId = rest[0];
      if (!orgId) throw new UsageError(`${command} needs an orgId`);
      const db = createDatabase(loadConfig().DATABASE_URL);
      try {
        if (command === 'available-apps') {
          const apps = await listAvailableApps(db, orgId);
          console.table(apps.map(({ appId, label, approval, approverSteps }) => ({ appId, label, approval, approverSteps })));
        } else {
          const limit = rest[1] ? Number(rest[1]) : 50;
          if (!Number.isInteger(limit) || limit < 1) throw new UsageError('limit must be a positive whole number');
          for (const entry of await listAuditTrail(db, orgId, limit)) console.log(JSON.stringify(entry));
        }
      } finally {
        await db.$disconnect();
      }
      return true;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'no command given');
  }
}

main(process.argv.slice(2)).then(
  (ok) => {
    process.exitCode = ok ? 0 : 1;
  },
  (error: unknown) => {
    console.error(error instanceof UsageError ? `${error.message}\n${USAGE}` : `cli: ${(error as Error).message}`);
    process.exitCode = 2;
  },
);
