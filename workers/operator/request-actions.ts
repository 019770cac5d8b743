import { randomUUID } from 'node:crypto';
import { claimCommand, recordRejected } from '../../activities/command-ledger';
import { readCommandResult } from '../../activities/operator-views';
import { encodeCloudEvent } from '../../events/cloudevents';
import { ADMIN_ACTIONS, inboundCommands } from '../../events/inbound';
import { parseRecord } from '../../events/parse-record';
import type { CommandResult } from '../../rules/commands';
import { loadConfig } from '../config';
import type { RouteContext } from '../ingress';
import { connectIngress, type IngressRuntime } from '../runtime';
import { helpText, parseArgs, positionals, UsageError, type CliCommand, type CommandSpec } from './args';

type AdminAction = (typeof ADMIN_ACTIONS)[number];

const ADMIN_ACTION = 'selfservice.app-request.admin-action.v1';
/** The CloudEvents source of commands the operator CLI sends. */
export const OPERATOR_SOURCE = 'urn:selfservice-cli:operator';

const WHAT: Record<AdminAction, { summary: string; details: string; example: string }> = {
  RESEND: {
    summary: "email the current step's approvers again, as a named admin",
    details: 'The request stays as it is; its current approvers get the approval email again.',
    example: 'requests resend req-5f1c0a9e2b7d4c3a1e0f9b8d --as u-admin',
  },
  DELETE: {
    summary: 'close a pending request as DELETED, as a named admin',
    details: 'The request closes as DELETED with the reason (default: "deleted by administrator <admin>");\nthe requester is emailed.',
    example: "requests delete req-5f1c0a9e2b7d4c3a1e0f9b8d --as u-admin --reason 'duplicate of req-...'",
  },
  OVERRIDE: {
    summary: 'grant a pending request now (remaining steps dropped), as a named admin',
    details: "The request is approved at once and the app goes on the requester's dashboard; the reason is\nkept as the override's comment.",
    example: "requests override req-5f1c0a9e2b7d4c3a1e0f9b8d --as u-admin --reason 'urgent: quarter close'",
  },
};

function actionSpec(action: AdminAction): CommandSpec {
  const what = WHAT[action];
  return {
    name: `requests ${action.toLowerCase()}`,
    args: '<requestId>',
    summary: what.summary,
    details: [
      what.details,
      '',
      `Sends ${ADMIN_ACTION} (action ${action}) through the contract's parser and the`,
      'command catalog, as the Kafka ingress does: the admin must be an active super admin, or an app admin of',
      "the request's app, of the request's org; the attempt is audited either way, and its result is recorded",
      "and published like any command's. Prints the outcome with its result code; exit code 1 when refused.",
      "The org is read from the request in the database unless --org is given.",
    ],
    options: [
      { name: 'as', value: 'ADMIN', description: 'the admin acting (required): their user id' },
      { name: 'reason', value: 'TEXT', description: 'why (kept in the audit trail and the request history)' },
      { name: 'org', value: 'ORG', description: "the request's org (default: from the database)" },
      { name: 'command-id', value: 'ID', description: 'the command id (default: a new one); run again with the same id to see the same result' },
      { name: 'json', description: 'print the recorded result as JSON' },
    ],
    examples: [what.example],
  };
}

/** Where the command is recorded: its own id, or its conflict record when another command owns the id. */
function conflictLedgerId(commandId: string, fingerprint: string): string {
  return `${commandId}#conflict-${fingerprint.slice(0, 16)}`;
}

/**
 * Carries out one admin action as the ingress carries out a Kafka record: validated by the contract's
 * parser, its id claimed in the ledger, routed by the command catalog (an Update on the request's
 * workflow, whose validator and authorization decide), its result read back from the ledger.
 */
export async function actOnRequest(
  runtime: IngressRuntime,
  input: { action: AdminAction; requestId: string; actorId: string; orgId: string; reason?: string; commandId: string },
): Promise<CommandResult> {
  const data = { orgId: input.orgId, actorId: input.actorId, requestId: input.requestId, action: input.action, ...(input.reason !== undefined ? { reason: input.reason } : {}) };
  const record = encodeCloudEvent({ specversion: '1.0', id: input.commandId, source: OPERATOR_SOURCE, type: ADMIN_ACTION, time: new Date().toISOString(), data }, input.orgId);
  const parsed = parseRecord(
    { topic: runtime.topics[inboundCommands[ADMIN_ACTION].topic], partition: 0, offset: '0', key: null, value: record.value, headers: record.headers },
    runtime.topics,
  );
  if (!parsed.ok) {
    // Refused before anything is recorded, as the import refuses an invalid entry.
    return { commandId: input.commandId, commandType: ADMIN_ACTION, outcome: 'REJECTED', code: parsed.code, message: parsed.reason, details: {}, eventIds: [] };
  }
  const claim = await claimCommand(runtime.db, { commandId: input.commandId, source: OPERATOR_SOURCE, fingerprint: parsed.fingerprint });
  if (claim === 'conflict') {
    const ledgerId = conflictLedgerId(input.commandId, parsed.fingerprint);
    return recordRejected(
      runtime.db,
      { commandId: input.commandId, type: ADMIN_ACTION, orgId: input.orgId, ledgerId },
      'COMMAND_ID_CONFLICT',
      `command id ${input.commandId} was already used for a different command (another source, org or content); use a new id for a new command`,
    );
  }
  const context: RouteContext = { repeat: claim === 'repeat', heartbeat: async () => undefined };
  await runtime.router.route(parsed.command, context);
  const result = await readCommandResult(runtime.db, input.commandId);
  if (!result) throw new Error(`command ${input.commandId} was carried out but has no recorded result yet`);
  return result;
}

function outcomeLine(action: AdminAction, input: { requestId: string; actorId: string }, result: CommandResult): string {
  const head = `${result.outcome} ${action.toLowerCase()} ${input.requestId} by ${input.actorId}`;
  const status = typeof result.details.status === 'string' ? `: request ${result.details.status}` : '';
  const body = result.outcome === 'ACCEPTED' ? status : `: ${result.code}: ${result.message}`;
  return `${head}${body} (command ${result.commandId})`;
}

function actionCommand(action: AdminAction): CliCommand {
  const spec = actionSpec(action);
  return {
    spec,
    async run(args) {
      const parsed = parseArgs(spec, args);
      if (parsed.help) {
        console.log(helpText(spec));
        return true;
      }
      const [requestId] = positionals(spec, parsed, ['a requestId']);
      const actorId = parsed.values.get('as');
      if (!actorId) throw new UsageError(`${spec.name} needs --as <adminId>: the admin who acts`, helpText(spec));
      const config = loadConfig();
      const commandId = parsed.values.get('command-id') ?? `cli-${randomUUID()}`;
      const runtime = await connectIngress(config, { clientId: `${config.KAFKA_CLIENT_ID}-cli` });
      try {
        let orgId = parsed.values.get('org');
        if (orgId === undefined) {
          const request = await runtime.db.appRequest.findUnique({ where: { id: requestId! }, select: { orgId: true } });
          if (!request) {
            console.error(`no request ${requestId} in the database; give --org to send the command anyway`);
            return false;
          }
          orgId = request.orgId;
        }
        let result: CommandResult;
        try {
          result = await actOnRequest(runtime, { action, requestId: requestId!, actorId, orgId, reason: parsed.values.get('reason'), commandId });
        } catch (error) {
          throw new Error(`${(error as Error).message}; command ${commandId} may still be carried out: run again with --command-id ${commandId} for its result`);
        }
        console.log(parsed.flags.has('json') ? JSON.stringify(result) : outcomeLine(action, { requestId: requestId!, actorId }, result));
        return result.outcome === 'ACCEPTED';
      } finally {
        await runtime.close();
      }
    },
  };
}

export const requestActionCommands: CliCommand[] = ADMIN_ACTIONS.map(actionCommand);
