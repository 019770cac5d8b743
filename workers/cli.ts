import { commandGroup, PROGRAM, UsageError, type CliCommand } from './operator/args';
import { auditExportCommand } from './operator/audit-export';
import { importCommand } from './operator/import';
import { requestActionCommands } from './operator/request-actions';
import { findRequestsCommand, requestTimelineCommand } from './operator/requests';
import { sendCommand } from './operator/send';
import { auditTrailCommand, availableAppsCommand, outboxCommand } from './operator/views';

/**
 * The operator CLI (`npm run cli -- <command>`): a dispatcher over the commands of workers/operator/.
 * Exit codes: 0 done, 1 the command was refused (or found nothing), 2 a usage mistake or a failure.
 */

const requests = commandGroup('requests', 'find app requests, read their timeline, act on one as a named admin', [
  findRequestsCommand,
  requestTimelineCommand,
  ...requestActionCommands,
]);

/** `audit <orgId> [limit]` as before, and `audit export [filters]`. */
const audit: CliCommand = {
  spec: auditTrailCommand.spec,
  run: (args) => (args[0] === 'export' ? auditExportCommand.run(args.slice(1)) : auditTrailCommand.run(args)),
};

const COMMANDS: readonly CliCommand[] = [importCommand, sendCommand, availableAppsCommand, audit, outboxCommand, requests];

/** Every command and subcommand: its synopsis, then what it does. */
const USAGE = [
  `usage: ${PROGRAM} <command> [arguments] [options]`,
  '',
  'commands:',
  ...(
    [
      ['import <file.json> [--progress | --quiet]', importCommand],
      ["send <type> '<json data>'", sendCommand],
      ['available-apps <orgId>', availableAppsCommand],
      ['audit <orgId> [limit]', auditTrailCommand],
      ['audit export [--org O] [--since ISO] [--until ISO] [--actor U] [--action A] [--request R] [--out FILE]', auditExportCommand],
      ['outbox', outboxCommand],
      ['requests find [--org O] [--requester U] [--approver U] [--app A] [--status S] [--limit N] [--json]', findRequestsCommand],
      ['requests timeline <requestId> [--live] [--json]', requestTimelineCommand],
      ...requestActionCommands.map((command): [string, CliCommand] => [`${command.spec.name} <requestId> --as <adminId> [--reason TEXT]`, command]),
    ] as [string, CliCommand][]
  ).flatMap(([synopsis, command]) => [`  ${synopsis}`, `      ${command.spec.summary}`]),
  '',
  `${PROGRAM} <command> --help (and ${PROGRAM} requests <subcommand> --help) shows a command's options and an example.`,
].join('\n');

async function main(args: readonly string[]): Promise<boolean> {
  const [name, ...rest] = args;
  if (name === undefined) throw new UsageError('no command given');
  if (name === '--help' || name === '-h' || name === 'help') {
    if (rest[0] && name === 'help') return main([rest[0], '--help']);
    console.log(USAGE);
    return true;
  }
  const command = COMMANDS.find((candidate) => candidate.spec.name === name);
  if (!command) throw new UsageError(name.startsWith('-') ? `unknown option ${name}` : `unknown command ${name}`);
  return command.run(rest);
}

// A reader that stops early (`| head`) is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

main(process.argv.slice(2)).then(
  (ok) => {
    process.exitCode = ok ? 0 : 1;
  },
  (error: unknown) => {
    console.error(error instanceof UsageError ? `${error.message}\n${error.usage ?? USAGE}` : `cli: ${(error as Error).message}`);
    process.exitCode = 2;
  },
);
