import { commandGroup, PROGRAM, UsageError, type CliCommand } from './operator/args';
import { auditExportCommand } from './operator/audit-export';
import { auditVerifyCommand } from './operator/audit-verify';
import { appsUsageCommand } from './operator/app-usage';
import { appConfigPreviewCommand, settingsPreviewCommand } from './operator/change-preview';
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

/** `audit <orgId> [limit]` as before, `audit export [filters]` and `audit verify`. */
const AUDIT_SUBCOMMANDS = new Map<string | undefined, CliCommand>([['export', auditExportCommand], ['verify', auditVerifyCommand]]);
const audit: CliCommand = {
  spec: auditTrailCommand.spec,
  run: (args) => AUDIT_SUBCOMMANDS.get(args[0])?.run(args.slice(1)) ?? auditTrailCommand.run(args),
};

/** Dry runs of risky admin changes: what they would close, re-route or switch off, changing nothing. */
const settings = commandGroup('settings', "preview a change of the org's Self Service settings", [settingsPreviewCommand]);
const apps = commandGroup('apps', "preview a change of an app's Self Service configuration; personal app usage per catalog app", [
  appConfigPreviewCommand,
  appsUsageCommand,
]);

const COMMANDS: readonly CliCommand[] = [importCommand, sendCommand, availableAppsCommand, audit, outboxCommand, requests, settings, apps];

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
      ['audit verify --org O | --file FILE [--org O] [--allow-gaps] [--anchor SEQ:HASH] [--json]', auditVerifyCommand],
      ['outbox', outboxCommand],
      ['requests find [--org O] [--requester U] [--approver U] [--app A] [--status S] [--limit N] [--json]', findRequestsCommand],
      ['requests timeline <requestId> [--live] [--json]', requestTimelineCommand],
      ...requestActionCommands.map((command): [string, CliCommand] => [`${command.spec.name} <requestId> --as <adminId> [--reason TEXT]`, command]),
      ["settings preview --org O --as ADMIN --changes '<json>' [--expected-version N] [--json]", settingsPreviewCommand],
      ["apps preview-config --org O --app A --as ADMIN --config '<json>' [--expected-version N] [--json]", appConfigPreviewCommand],
      ['apps usage [--org O] [--top N] [--json]', appsUsageCommand],
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
