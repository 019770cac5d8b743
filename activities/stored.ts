import { z } from 'zod';

/**
 * Reads a JSON column through its schema. Data that does not fit is a permanent failure (a TypeError,
 * see activities/failures.ts): no retry makes it fit.
 */
export function parseStored<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new TypeError(`${what} does not fit its schema: ${z.prettifyError(parsed.error).slice(0, 300)}`);
  return parsed.data;
}
