import { expect } from '@jest/globals';
import type { TopicName } from '../../events/topics';
import type { TestBackend } from './backend';
import { resultFor, sendCommand, type SeenRecord, type TopicProbe } from './kafka-probe';
import { uniqueId } from './test-config';

/** Sends commands through Kafka as clients would, and reads their results back from Kafka. */
export class CommandClient {
  constructor(
    private readonly backend: TestBackend,
    private readonly probe: TopicProbe,
  ) {}

  async send(topic: TopicName, type: string, data: Record<string, unknown>, id?: string): Promise<SeenRecord> {
    const commandId = await sendCommand(this.backend.producer, this.backend.topics[topic], type, data, { id });
    return this.probe.waitFor(resultFor(commandId), `the result of ${type} ${commandId}`, 60_000);
  }

  /** Sends a command that must be accepted, and fails the test with the rejection if it is not. */
  async accepted(topic: TopicName, type: string, data: Record<string, unknown>): Promise<SeenRecord> {
    const result = await this.send(topic, type, data);
    expect({ type: result.type, code: result.data.code, message: result.data.message }).toEqual({
      type: 'selfservice.command.accepted.v1',
      code: undefined,
      message: undefined,
    });
    return result;
  }

  directory(type: string, data: Record<string, unknown>): Promise<SeenRecord> {
    return this.accepted('directory', `selfservice.directory.${type}.v1`, data);
  }
}

/** A rejected result with this code and, when given, a message containing (string) or matching (RegExp) this. */
export function expectRejected(result: SeenRecord, code: string, message?: RegExp | string): void {
  expect({ type: result.type, code: result.data.code }).toEqual({ type: 'selfservice.command.rejected.v1', code });
  if (message) expect(result.data.message).toEqual(typeof message === 'string' ? expect.stringContaining(message) : expect.stringMatching(message));
}

export interface SeededOrg {
  orgId: string;
  domain: string;
  superAdminId: string;
  user(name: string): string;
  email(name: string): string;
}

/**
 * A fresh org (unique ids, so tests never share state) with a super admin, end users named as given,
 * and the org-managed apps switch on unless said otherwise.
 */
export async function seedOrg(
  commands: CommandClient,
  options: { users?: string[]; adminRoles?: Record<string, string[]>; allowOrgManagedApps?: boolean; personalAppMigration?: boolean } = {},
): Promise<SeededOrg> {
  const orgId = uniqueId('org');
  const domain = `${orgId}.example`;
  const ids = new Map<string, string>();
  const user = (name: string) => {
    const id = ids.get(name);
    if (!id) throw new Error(`no user ${name} in the fixture`);
    return id;
  };
  const email = (name: string) => `${user(name)}@${domain}`;
  await commands.directory('org-upserted', {
    orgId,
    name: `Org ${orgId}`,
    emailDomains: [domain],
    features: { PERSONAL_APP_MIGRATION: options.personalAppMigration ?? false },
  });
  for (const name of ['admin', ...(options.users ?? [])]) {
    ids.set(name, uniqueId(name));
    await commands.directory('user-upserted', {
      orgId,
      userId: user(name),
      email: email(name),
      displayName: name,
      status: 'ACTIVE',
      adminRoles: name === 'admin' ? ['SUPER_ADMIN'] : (options.adminRoles?.[name] ?? []),
    });
  }
  if (options.allowOrgManagedApps ?? true) {
    await commands.accepted('adminCommands', 'selfservice.settings.update-requested.v1', {
      orgId,
      actorId: user('admin'),
      changes: { allowOrgManagedApps: true },
    });
  }
  return { orgId, domain, superAdminId: user('admin'), user, email };
}
