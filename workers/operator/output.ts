import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { createDatabase, type Database } from '../../activities/database';
import { loadConfig } from '../config';

/** Runs `work` with a database client of the configured deployment, closed afterwards. */
export async function withDatabase<T>(work: (db: Database) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = createDatabase(config.DATABASE_URL, config.KAFKA_TOPIC_NAMESPACE);
  try {
    return await work(db);
  } finally {
    await db.$disconnect();
  }
}

/** A plain text table: a header row, then one row per record, columns padded to their widest cell. */
export function textTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A line sink that respects back-pressure: stdout, or a file that is complete once `close` resolves. */
export interface LineWriter {
  write(line: string): Promise<void>;
  close(): Promise<void>;
}

async function writeTo(stream: Writable, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

export function lineWriter(path?: string): LineWriter {
  if (!path) return { write: (line) => writeTo(process.stdout, `${line}\n`), close: async () => undefined };
  const file = createWriteStream(path, { flags: 'w', mode: 0o600 });
  const failed = once(file, 'error').then(([error]) => Promise.reject(error as Error));
  failed.catch(() => undefined);
  return {
    write: (line) => Promise.race([writeTo(file, `${line}\n`), failed]),
    async close() {
      file.end();
      await Promise.race([once(file, 'finish'), failed]);
    },
  };
}
