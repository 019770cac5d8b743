import { createHash } from 'node:crypto';

/**
 * Ids derived from a command's CloudEvent id, so that a redelivery maps to the same request and the
 * same workflow. Uses Node's crypto: for activities and the processes, not for workflow code (the
 * workflow receives the ids it needs as arguments).
 */

export function requestIdFor(commandId: string): string {
  return `req-${createHash('sha256').update(commandId).digest('hex').slice(0, 24)}`;
}
