import { createHash } from 'node:crypto';
import { z } from 'zod';
import { encodeCloudEvent } from '../events/cloudevents';
import { inboundCommands, isInboundType, type Command } from '../events/inbound';
import { parseRecord } from '../events/parse-record';
import type { Topics } from '../events/topics';
import type { CommandResult } from '../rules/commands';
import { commandCatalog } from './command-catalog';
import type { TemporalCommandRouter } from './command-router';

/**
 * Imports a JSON file of directory (and admin) commands through the same path as Kafka: each entry
 * becomes a CloudEvent record, is validated by the ingress parser, and is applied as the ingress applies it.
 * Command ids are derived from the file and the entry's position, so importing the same file again
 * changes nothing, while the same entry twice in a file (a user deactivated, then reactivated) runs twice.
 */
export const importFileSchema = z.object({
  commands: z
    .array(z.object({ type: z.string().min(1, 'type is required'), data: z.record(z.string(), z.unknown()) }))
    .min(1, 'commands must list at least one command'),
});

export type ImportFile = z.infer<typeof importFileSchema>;

/** The id of entry `index` of a file: the same file imported again maps to the same commands. */
export function importCommandId(file: ImportFile, index: number): string {
  const fileHash = createHash('sha256').update(JSON.stringify(file.commands)).digest('hex');
  return `import-${createHash('sha256').update(`${fileHash}:${index}`).digest('hex').slice(0, 32)}`;
}

export interface ImportOutcome {
  index: number;
  type: string;
  result: CommandResult | { outcome: 'REJECTED'; code: string; message: string };
}

/** Entries applied per database transaction. */
const IMPORT_CHUNK = 500;

/**
 * Validates every entry, then applies the valid ones in file order, in chunks of one transaction each
 * (as the ingress applies a directory sync); `progress` hears how many are done.
 */
export async function importCommands(
  file: ImportFile,
  topics: Topics,
  router: TemporalCommandRouter,
  progress: (done: number, total: number) => void = () => undefined,
): Promise<ImportOutcome[]> {
  const outcomes: ImportOutcome[] = [];
  const valid: { index: number; command: Command }[] = [];
  for (const [index, entry] of file.commands.entries()) {
    if (!isInboundType(entry.type) || commandCatalog[entry.type].kind !== 'apply') {
      outcomes.push({ index, type: entry.type, result: { outcome: 'REJECTED', code: 'NOT_IMPORTABLE', message: `${entry.type} is not a directory or admin command` } });
      continue;
    }
    const id = importCommandId(file, index);
    const record = encodeCloudEvent({ specversion: '1.0', id, source: 'urn:selfservice-cli:import', type: entry.type, data: entry.data }, null);
    const parsed = parseRecord(
      { topic: topics[inboundCommands[entry.type].topic], partition: 0, offset: String(index), key: null, value: record.value, headers: record.headers },
      topics,
    );
    if (parsed.ok) valid.push({ index, command: parsed.command });
    else outcomes.push({ index, type: entry.type, result: { outcome: 'REJECTED', code: parsed.code, message: parsed.reason } });
  }
  for (let from = 0; from < valid.length; from += IMPORT_CHUNK) {
    const chunk = valid.slice(from, from + IMPORT_CHUNK);
    const results = await router.apply(chunk.map((entry) => entry.command));
    chunk.forEach(({ index, command }, position) => outcomes.push({ index, type: command.type, result: results[position]! }));
    progress(from + chunk.length, valid.length);
  }
  return outcomes.sort((a, b) => a.index - b.index);
}
