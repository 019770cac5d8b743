import type { EventPublisher } from '../events/publisher';
import { createAdminCommandActivities } from './admin-commands';
import { createAppRequestActivities } from './app-requests';
import type { Database } from './database';
import type { Mailer } from './mailer';
import { createOutboxActivities } from './outbox';
import { createPersonalAppActivities } from './personal-apps';
import { createTechnicalContactMessageActivities } from './technical-contact-messages';

export interface ActivityDependencies {
  db: Database;
  publisher: EventPublisher;
  mailer: Mailer;
}

/** Every activity the worker registers; the workflows' `proxyActivities` types derive from this. */
export function createActivities(deps: ActivityDependencies) {
  return {
    ...createAdminCommandActivities(deps),
    ...createAppRequestActivities(deps),
    ...createOutboxActivities(deps),
    ...createPersonalAppActivities(deps),
    ...createTechnicalContactMessageActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
