import type { AdminCommandType } from '../events/command-router';
import type { Command } from '../events/inbound';
import { recordCommand, type CommandHandler, type CommandResult } from './command-ledger';
import type { Database } from './database';
import { configureAppSelfService } from './app-configuration';
import { upsertCatalogApp, upsertGroup, upsertOrg, upsertOrgApp, upsertUser } from './directory';
import { setTechnicalContact, updateSettings } from './org-settings';

/** The commands that are applied in one step (directory sync and admin changes), by CloudEvent type. */
const adminCommandHandlers: { [T in AdminCommandType]: CommandHandler<Extract<Command, { type: T }>> } = {
  'selfservice.directory.org-upserted.v1': upsertOrg,
  'selfservice.directory.user-upserted.v1': upsertUser,
  'selfservice.directory.group-upserted.v1': upsertGroup,
  'selfservice.directory.catalog-app-upserted.v1': upsertCatalogApp,
  'selfservice.directory.org-app-upserted.v1': upsertOrgApp,
  'selfservice.settings.update-requested.v1': updateSettings,
  'selfservice.technical-contact.set-requested.v1': setTechnicalContact,
  'selfservice.app.self-service-configured.v1': configureAppSelfService,
};

export function createAdminCommandActivities({ db }: { db: Database }) {
  return {
    async applyAdminCommand(command: Command): Promise<CommandResult> {
      const handler = (adminCommandHandlers as Partial<Record<Command['type'], CommandHandler>>)[command.type];
      if (!handler) throw new Error(`no handler for command type ${command.type}`);
      return recordCommand(db, command, handler);
    },
  };
}
