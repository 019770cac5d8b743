import { createHash } from 'node:crypto';

/**
 * Ids derived from a command's CloudEvent id, so that a redelivery maps to the same request and the
 * same workflow. Uses Node's crypto: for activities and the processes, not for workflow code (the
 * workflow receives the ids it needs as arguments).
 */

export function requestIdFor(commandId: string): string {
  return `req-${createHash('sha256').update(commandId).digest('hex').slice(0, 24)}`;
}

/** The delegation a `selfservice.delegation.set-requested.v1` command sets (its workflow: `delegation-<id>`). */
export function delegationIdFor(commandId: string): string {
  return `dlg-${createHash('sha256').update(commandId).digest('hex').slice(0, 24)}`;
}

/** A personal bookmark's id, derived from the command that added it. */
export function personalBookmarkIdFor(commandId: string): string {
  return `pb-${createHash('sha256').update(commandId).digest('hex').slice(0, 24)}`;
}
