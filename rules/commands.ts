import { z } from 'zod';
import type { Command } from '../events/inbound';
import type { TopicName } from '../events/topics';

/**
 * What a command comes to: accepted (with the events and audit entries it causes) or rejected with a
 * code. Pure types and the refusal that business rules throw; the ledger (activities/command-ledger.ts)
 * records them.
 */

/** A business rule said no. Thrown by a handler before it writes anything. */
export class CommandRejection extends Error {
  override readonly name = 'CommandRejection';
  constructor(
    readonly code: string,
    message: string,
    readonly audit?: AuditDraft,
    /** Extra fields for the rejected result, e.g. the id of the pending request that blocks a new one. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** What the ledger needs to know of a command to record its result. */
export interface CommandRef {
  commandId: string;
  type: string;
  orgId?: string;
  /**
   * The ledger row and result event id, when not the command id: a command that conflicts with the one
   * owning its id is recorded apart (`<id>#conflict-<fingerprint>`), so each gets one result.
   */
  ledgerId?: string;
}

export interface AuditDraft {
  orgId: string;
  actorId: string;
  action: string;
  subject?: string;
  before?: unknown;
  after?: unknown;
}

export interface EventDraft {
  /** Unique per command; the event's CloudEvent id is `<commandId>:<name>`. */
  name: string;
  topic: TopicName;
  type: string;
  key: string;
  data: Record<string, unknown>;
}

export interface Accepted {
  details?: Record<string, unknown>;
  events?: EventDraft[];
  audit?: AuditDraft | AuditDraft[];
}

/** A command's result as the ledger stores it (a JSON column, read back through this schema). */
export const commandResultSchema = z.object({
  commandId: z.string(),
  commandType: z.string(),
  outcome: z.enum(['ACCEPTED', 'REJECTED']),
  code: z.string().optional(),
  message: z.string().optional(),
  details: z.record(z.string(), z.unknown()),
  eventIds: z.array(z.string()),
});

export type CommandResult = z.infer<typeof commandResultSchema>;

export function commandRef(command: Command): CommandRef {
  return { commandId: command.commandId, type: command.type, orgId: 'orgId' in command.data ? command.data.orgId : undefined };
}

