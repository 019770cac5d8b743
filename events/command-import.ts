import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { CommandResult } from '../activities/command-ledger';
import { encodeCloudEvent } from './cloudevents';
import type { TemporalCommandRouter } from './command-router';
import { ADMIN_COMMAND_TYPES } from './command-router';
import { inboundCommands, isInboundType } from './inbound';
import { parseRecord } from './ingress';
import type { Topics } from './topics';

/**
 * Imports a JSON file of directory (and admin) commands through the same path as Kafka: each entry
 * becomes a CloudEvent record, is validated by the ingress parser, and runs as the same workflow.
 * Command ids are derived from the content, so importing the same file again changes nothing.
 */
export const importFileSchema = z.object({
  commands: z
    .array(z.object({ type: z.string().min(1, 'type is required'), data: z.record(z.string(), z.unknown()) }))
    .min(1, 'commands must list at least one command'),
});

export type ImportFile = z.infer<typeof importFileSchema>;

export function importCommandId(type: string, data: unknown): string {
  return `import-${createHash('sha256').update(type).update(JSON.stringify(data)).digest('hex').slice(0, 32)}`;
}

export interface ImportOutcome {
  index: number;
  type: string;
  result: CommandResult | { outcome: 'REJECTED'; code: string; message: string };
}

export async function importCommands(file: ImportFile, topics: Topics, router: TemporalCommandRouter): Promise<ImportOutcome[]> {
  const outcomes: ImportOutcome[] = [];
  for (const [index, entry] of file.commands.entries()) {
    if (!isInboundType(entry.type) || !ADMIN_COMMAND_TYPES.has(entry.type)) {
      outcomes.push({ index, type: entry.type, result: { outcome: 'REJECTED', code: 'NOT_IMPORTABLE', message: `${entry.type} is not a directory or admin command` } });
      continue;
    }
    const id = importCommandId(entry.type, entry.data);
    const record = encodeCloudEvent({ specversion: '1.0', id, source: 'urn:selfservice-cli:import', type: entry.type, data: entry.data }, null);
    const parsed = parseRecord(
      { topic: topics[inboundCommands[entry.type].topic], partition: 0, offset: String(index), key: null, value: record.value, headers: record.headers },
      topics,
    );
    if (!parsed.ok) {
      outcomes.push({ index, type: entry.type, result: { outcome: 'REJECTED', code: parsed.code, message: parsed.reason } });
      continue;
    }
    outcomes.push({ index, type: entry.type, result: await router.runAdminCommand(parsed.command) });
  }
  return outcomes;
}
