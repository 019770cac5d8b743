import type { TopicName } from './topics';

/** Outbound events of the public contract (product spec section 4). The backend emits binary mode. */

export const EVENT_SOURCE = 'urn:selfservice-backend';

export const OutboundTypes = {
  commandAccepted: 'selfservice.command.accepted.v1',
  commandRejected: 'selfservice.command.rejected.v1',
  settingsChanged: 'selfservice.settings.changed.v1',
  technicalContactChanged: 'selfservice.technical-contact.changed.v1',
  appSelfServiceChanged: 'selfservice.app.self-service-changed.v1',
  technicalContactEmailSent: 'selfservice.technical-contact.email-sent.v1',
  technicalContactEmailFailed: 'selfservice.technical-contact.email-failed.v1',
  appAssigned: 'selfservice.dashboard.app-assigned.v1',
  personalAppAdded: 'selfservice.dashboard.personal-app-added.v1',
  personalAppsMoved: 'selfservice.dashboard.personal-apps-moved.v1',
  directoryUserChanged: 'selfservice.directory.user-changed.v1',
  directoryGroupChanged: 'selfservice.directory.group-changed.v1',
} as const;

export function accessRequestEventType(auditName: string): string {
  return `selfservice.${auditName}.v1`;
}

/**
 * An event waiting in the outbox. Its `id` is deterministic (derived from the command or request that
 * caused it), so a retried publish carries the same CloudEvent id and consumers can drop the copy.
 */
export interface OutboundEvent {
  id: string;
  topic: TopicName;
  type: string;
  key: string;
  data: Record<string, unknown>;
  time: string;
}

export interface CommandAccepted {
  commandId: string;
  commandType: string;
  orgId?: string;
  requestId?: string;
  workflowId?: string;
  [detail: string]: unknown;
}

export interface CommandRejected {
  commandId: string;
  commandType: string;
  orgId?: string;
  code: string;
  message: string;
  requestId?: string;
  workflowId?: string;
}
