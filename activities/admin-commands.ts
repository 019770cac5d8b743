import type { Command } from '../events/inbound';
import type { CommandResult } from '../rules/commands';
import { recordCommand, type CommandHandler } from './command-ledger';
import type { Database } from './database';

/** The handler that applies a one-transaction command (the command catalog, given by the process wiring). */
export type HandlerLookup = (type: Command['type']) => CommandHandler | undefined;

/**
 * `applyAdminCommand` serves `adminCommandWorkflow`, which applied directory and admin commands before
 * the ingress applied them itself: workflows still running, and their replays, use it.
 */
export function createAdminCommandActivities({ db, handlerFor }: { db: Database; handlerFor: HandlerLookup }) {
  return {
    async applyAdminCommand(command: Command): Promise<CommandResult> {
      const handler = handlerFor(command.type);
      if (!handler) throw new Error(`no handler for command type ${command.type}`);
      return recordCommand(db, command, handler);
    },
  };
}
