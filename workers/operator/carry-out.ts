import { claimCommand, recordRejected } from '../../activities/command-ledger';
import { readCommandResult } from '../../activities/operator-views';
import { encodeCloudEvent } from '../../events/cloudevents';
import { inboundCommands, type InboundType } from '../../events/inbound';
import { parseRecord } from '../../events/parse-record';
import type { CommandResult } from '../../rules/commands';
import type { RouteContext } from '../ingress';
import type { IngressRuntime } from '../runtime';

/** The CloudEvents source of commands the operator CLI sends. */
export const OPERATOR_SOURCE = 'urn:selfservice-cli:operator';

/** Where the command is recorded: its own id, or its conflict record when another command owns the id. */
function conflictLedgerId(commandId: string, fingerprint: string): string {
  return `${commandId}#conflict-${fingerprint.slice(0, 16)}`;
}

/**
 * Carries out one command as the ingress carries out a Kafka record: validated by the contract's
 * parser, its id claimed in the ledger, routed by the command catalog, its result read back from the
 * ledger. A command the parser refuses is answered without being recorded (as the import refuses an
 * invalid entry).
 */
export async function carryOutCommand(
  runtime: IngressRuntime,
  input: { type: InboundType; orgId: string; data: Record<string, unknown>; commandId: string },
): Promise<CommandResult> {
  const { type, orgId, commandId } = input;
  const record = encodeCloudEvent({ specversion: '1.0', id: commandId, source: OPERATOR_SOURCE, type, time: new Date().toISOString(), data: input.data }, orgId);
  const parsed = parseRecord(
    { topic: runtime.topics[inboundCommands[type].topic], partition: 0, offset: '0', key: null, value: record.value, headers: record.headers },
    runtime.topics,
  );
  if (!parsed.ok) {
    return { commandId, commandType: type, outcome: 'REJECTED', code: parsed.code, message: parsed.reason, details: {}, eventIds: [] };
  }
  const claim = await claimCommand(runtime.db, { commandId, source: OPERATOR_SOURCE, fingerprint: parsed.fingerprint });
  if (claim === 'conflict') {
    const ledgerId = conflictLedgerId(commandId, parsed.fingerprint);
    return recordRejected(
      runtime.db,
      { commandId, type, orgId, ledgerId },
      'COMMAND_ID_CONFLICT',
      `command id ${commandId} was already used for a different command (another source, org or content); use a new id for a new command`,
    );
  }
  const context: RouteContext = { repeat: claim === 'repeat', heartbeat: async () => undefined };
  await runtime.router.route(parsed.command, context);
  const result = await readCommandResult(runtime.db, commandId);
  if (!result) throw new Error(`command ${commandId} was carried out but has no recorded result yet`);
  return result;
}
