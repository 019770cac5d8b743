import { randomUUID } from 'node:crypto';
import type { InboundType } from '../../events/inbound';
import type { ChangePreview } from '../../events/outbound';
import type { CommandResult } from '../../rules/commands';
import { loadConfig } from '../config';
import { connectIngress } from '../runtime';
import { helpText, parseArgs, positionals, UsageError, type CliCommand, type CommandSpec, type ParsedArgs } from './args';
import { carryOutCommand } from './carry-out';

/**
 * `settings preview` and `apps preview-config`: the dry runs of an org settings change and of a per-app
 * configuration, sent through the contract's parser and the command catalog as the ingress does
 * (carry-out.ts). The preview is the command's accepted result (recorded, published, audited); nothing
 * else changes.
 */

const SETTINGS_PREVIEW = 'selfservice.settings.preview-requested.v1';
const APP_PREVIEW = 'selfservice.app.self-service-preview-requested.v1';

const COMMON_DETAILS = [
  'Nothing changes: no new version, no request is told anything, no settings event. The preview is',
  "the command's accepted result: recorded in the ledger, published on the results topic and audited,",
  'like any command; the same --command-id gives the same result again. Only who may make the change may',
  'preview it, and a preview is refused with the code the change would get (exit code 1).',
  'Pending requests are judged by the rules their own review uses; lists stop at 500 entries (the totals',
  'count them all). To make exactly the change previewed, send it with expectedVersion set to the',
  '"computed against" version: a change made meanwhile is then refused STALE_VERSION.',
];

const COMMON_OPTIONS = [
  { name: 'org', value: 'ORG', description: 'the org (required)' },
  { name: 'as', value: 'ADMIN', description: 'the admin asking (required): their user id' },
  { name: 'expected-version', value: 'N', description: 'refuse the preview (STALE_VERSION) unless the current version is N' },
  { name: 'command-id', value: 'ID', description: 'the command id (default: a new one); run again with the same id to see the same result' },
  { name: 'json', description: 'print the recorded result as JSON' },
];

const settingsSpec: CommandSpec = {
  name: 'settings preview',
  summary: 'show what an org settings change would do (requests closed, flows switched off), changing nothing',
  details: [
    `Sends ${SETTINGS_PREVIEW} with the changes a settings.update-requested would carry;`,
    'the admin must be an active super admin of the org.',
    '',
    ...COMMON_DETAILS,
  ],
  options: [
    COMMON_OPTIONS[0]!,
    COMMON_OPTIONS[1]!,
    { name: 'changes', value: 'JSON', description: 'the switches to change (required), e.g. \'{"allowOrgManagedApps":false}\'' },
    ...COMMON_OPTIONS.slice(2),
  ],
  examples: [`settings preview --org org-acme --as u-admin --changes '{"allowOrgManagedApps":false}'`],
};

const appSpec: CommandSpec = {
  name: 'apps preview-config',
  summary: "show what an app's Self Service configuration would do (requests closed or re-routed), changing nothing",
  details: [
    `Sends ${APP_PREVIEW} with the config an app.self-service-configured would`,
    'carry; the admin must be an active super admin, or an app admin of the app, of the org.',
    '',
    ...COMMON_DETAILS,
  ],
  options: [
    COMMON_OPTIONS[0]!,
    { name: 'app', value: 'APP', description: 'the app integration (required)' },
    COMMON_OPTIONS[1]!,
    { name: 'config', value: 'JSON', description: 'the whole configuration (required), as in app.self-service-configured' },
    ...COMMON_OPTIONS.slice(2),
  ],
  examples: [`apps preview-config --org org-acme --app app-github --as u-admin --config '{"requestsEnabled":true,"approvalRequired":false}'`],
};

function required(spec: CommandSpec, parsed: ParsedArgs, name: string, what: string): string {
  const value = parsed.values.get(name);
  if (value === undefined || value === '') throw new UsageError(`${spec.name} needs --${name} <${what}>`, helpText(spec));
  return value;
}

function jsonObject(spec: CommandSpec, name: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`--${name} is not JSON: ${(error as Error).message}`, helpText(spec));
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`--${name} must be a JSON object`, helpText(spec));
  return value as Record<string, unknown>;
}

function version(spec: CommandSpec, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`--expected-version must be a whole number (0 or more), not ${JSON.stringify(text)}`, helpText(spec));
  return Number(text);
}

const list = (ids: readonly string[]) => (ids.length > 0 ? ids.join(', ') : '(nobody)');

/** The preview as a person reads it. */
export function previewText(preview: ChangePreview): string[] {
  const lines: string[] = [];
  const versions = preview.noChange
    ? `computed against version ${preview.computedAgainstVersion}: the change would change nothing (no new version)`
    : `computed against version ${preview.computedAgainstVersion}: the change would make version ${preview.wouldBeVersion}, changing ${preview.changed.join(', ')}`;
  lines.push(versions, `pending requests judged: ${preview.pendingReviewed}`);
  const more = (shown: number, total: number) => (total > shown ? [`  ... and ${total - shown} more`] : []);
  if (preview.wouldCloseTotal === 0) lines.push('would close no request');
  else {
    lines.push(`would close ${preview.wouldCloseTotal} pending request${preview.wouldCloseTotal === 1 ? '' : 's'} as DELETED:`);
    for (const entry of preview.wouldClose) lines.push(`  ${entry.requestId}  app ${entry.appId}  requester ${entry.requesterId}: ${entry.reason}`);
    lines.push(...more(preview.wouldClose.length, preview.wouldCloseTotal));
  }
  if (preview.wouldRerouteTotal === 0) lines.push('would re-route no request');
  else {
    lines.push(`would re-route ${preview.wouldRerouteTotal} pending request${preview.wouldRerouteTotal === 1 ? '' : 's'}:`);
    for (const entry of preview.wouldReroute) {
      lines.push(`  ${entry.requestId}  app ${entry.appId}  step ${entry.step}: ${list(entry.fromApproverIds)} -> ${list(entry.toApproverIds)}`);
    }
    lines.push(...more(preview.wouldReroute.length, preview.wouldRerouteTotal));
  }
  if (preview.wouldTurnOff.length === 0) lines.push('would turn nothing off');
  else {
    lines.push('would turn off:');
    for (const item of preview.wouldTurnOff) {
      lines.push(`  ${item.flow} (${item.setting}${item.appId ? ` of ${item.appId}` : ''}): ${item.effect}`);
      if (item.appIds && item.appIds.length > 0) lines.push(`    apps: ${item.appIds.join(', ')}${(item.appIdsTotal ?? 0) > item.appIds.length ? ', ...' : ''}`);
    }
  }
  if (preview.truncated) lines.push(`(lists stop at ${preview.listLimit} entries; the totals count them all)`);
  if (!preview.noChange) lines.push(`to make this change: send ${preview.change} with "expectedVersion": ${preview.computedAgainstVersion}`);
  return lines;
}

function resultText(what: string, result: CommandResult): string {
  if (result.outcome !== 'ACCEPTED') return `REJECTED ${what}: ${result.code}: ${result.message} (command ${result.commandId})`;
  const preview = result.details.preview as ChangePreview | undefined;
  return [`ACCEPTED ${what} (command ${result.commandId})`, ...(preview ? previewText(preview) : [])].join('\n');
}

function previewCommand(
  spec: CommandSpec,
  build: (parsed: ParsedArgs) => { type: InboundType; orgId: string; what: string; data: Record<string, unknown> },
): CliCommand {
  return {
    spec,
    async run(args) {
      const parsed = parseArgs(spec, args);
      if (parsed.help) {
        console.log(helpText(spec));
        return true;
      }
      positionals(spec, parsed, []);
      const { type, orgId, what, data } = build(parsed);
      const config = loadConfig();
      const commandId = parsed.values.get('command-id') ?? `cli-${randomUUID()}`;
      const runtime = await connectIngress(config, { clientId: `${config.KAFKA_CLIENT_ID}-cli` });
      try {
        let result: CommandResult;
        try {
          result = await carryOutCommand(runtime, { type, orgId, data, commandId });
        } catch (error) {
          throw new Error(`${(error as Error).message}; command ${commandId} may still be carried out: run again with --command-id ${commandId} for its result`);
        }
        console.log(parsed.flags.has('json') ? JSON.stringify(result) : resultText(what, result));
        return result.outcome === 'ACCEPTED';
      } finally {
        await runtime.close();
      }
    },
  };
}

export const settingsPreviewCommand = previewCommand(settingsSpec, (parsed) => {
  const orgId = required(settingsSpec, parsed, 'org', 'orgId');
  const actorId = required(settingsSpec, parsed, 'as', 'adminId');
  const changes = jsonObject(settingsSpec, 'changes', required(settingsSpec, parsed, 'changes', 'json'));
  const expectedVersion = version(settingsSpec, parsed.values.get('expected-version'));
  return {
    type: SETTINGS_PREVIEW,
    orgId,
    what: `settings preview for org ${orgId} by ${actorId}`,
    data: { orgId, actorId, changes, ...(expectedVersion === undefined ? {} : { expectedVersion }) },
  };
});

export const appConfigPreviewCommand = previewCommand(appSpec, (parsed) => {
  const orgId = required(appSpec, parsed, 'org', 'orgId');
  const appId = required(appSpec, parsed, 'app', 'appId');
  const actorId = required(appSpec, parsed, 'as', 'adminId');
  const config = jsonObject(appSpec, 'config', required(appSpec, parsed, 'config', 'json'));
  const expectedVersion = version(appSpec, parsed.values.get('expected-version'));
  return {
    type: APP_PREVIEW,
    orgId,
    what: `configuration preview of app ${appId} in org ${orgId} by ${actorId}`,
    data: { orgId, actorId, appId, config, ...(expectedVersion === undefined ? {} : { expectedVersion }) },
  };
});
