/**
 * Kafka topics of the public contract (product spec section 4). Names are versioned; a breaking change
 * gets a new `.v2` topic beside the old one. A deployment may prefix every name with a namespace.
 */
export const TopicNames = {
  userRequests: 'selfservice.user-requests.v1',
  decisions: 'selfservice.decisions.v1',
  adminCommands: 'selfservice.admin-commands.v1',
  directory: 'selfservice.directory.v1',
  commandResults: 'selfservice.command-results.v1',
  settings: 'selfservice.settings.v1',
  technicalContactEmails: 'selfservice.technical-contact-emails.v1',
  accessRequests: 'selfservice.access-requests.v1',
  dashboard: 'selfservice.dashboard.v1',
  deadLetters: 'selfservice.dlq.v1',
  /** Internal: directory changes that running requests react to (user deactivated, group changed). */
  directoryChanges: 'selfservice.directory-changes.v1',
} as const;

export type TopicName = keyof typeof TopicNames;

export const inboundTopics: readonly TopicName[] = ['userRequests', 'decisions', 'adminCommands', 'directory'];

export type Topics = Record<TopicName, string>;

export function topicsFor(namespace: string): Topics {
  const prefixed = Object.entries(TopicNames).map(([name, topic]) => [name, `${namespace}${topic}`]);
  return Object.fromEntries(prefixed) as Topics;
}
