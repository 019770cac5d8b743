import { randomUUID } from 'node:crypto';
import { ADMIN_ACTIONS } from '../../events/inbound';
import type { CommandResult } from '../../rules/commands';
import { loadConfig } from '../config';
import { connectIngress, type IngressRuntime } from '../runtime';
import { helpText, parseArgs, positionals, UsageError, type CliCommand, type CommandSpec } from './args';
import { carryOutCommand } from './carry-out';

type AdminAction = (typeof ADMIN_ACTIONS)[number];

const ADMIN_ACTION = 'selfservice.app-request.admin-action.v1';

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
  REVOKE: {
    summary: 'end a time-bound grant now, as a named admin',
    details: "The app leaves the user's dashboard at once (app-unassigned, ACCESS_REVOKED); the user is emailed\nwith the reason.",
    example: "requests revoke req-5f1c0a9e2b7d4c3a1e0f9b8d --as u-admin --reason 'left the project'",
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

/**
 * Carries out one admin action as the ingress carries out a Kafka record (carry-out.ts): validated by
 * the contract's parser, its id claimed in the ledger, routed by the command catalog (an Update on the
 * request's workflow, whose validator and authorization decide), its result read back from the ledger.
 */
export async function actOnRequest(
  runtime: IngressRuntime,
  input: { action: AdminAction; requestId: string; actorId: string; orgId: string; reason?: string; commandId: string },
): Promise<CommandResult> {
  const data = { orgId: input.orgId, actorId: input.actorId, requestId: input.requestId, action: input.action, ...(input.reason !== undefined ? { reason: input.reason } : {}) };
  return carryOutCommand(runtime, { type: ADMIN_ACTION, orgId: input.orgId, data, commandId: input.commandId });
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
