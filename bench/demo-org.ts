import type { CommandChannel, OutgoingCommand } from './command-channel';
import type { OutboundWatch } from './outbound-watch';
import { now } from './stats';

/** A requester and an app they may request once (a user cannot hold two requests for one app). */
export interface RequestPair {
  userId: string;
  appId: string;
}

/** Hands out (user, app) pairs that were never requested before, users first, then the next app. */
export class PairPool {
  private next = 0;
  constructor(
    private readonly users: readonly string[],
    private readonly apps: readonly string[],
  ) {}

  take(count: number): RequestPair[] {
    const capacity = this.users.length * this.apps.length;
    if (this.next + count > capacity) throw new Error(`the demo org has ${capacity - this.next} unused pairs left, not ${count}`);
    return Array.from({ length: count }, () => {
      const index = this.next++;
      return { userId: this.users[index % this.users.length]!, appId: this.apps[Math.floor(index / this.users.length)]! };
    });
  }
}

export interface DemoOrg {
  orgId: string;
  adminId: string;
  approverId: string;
  /** A second org, empty, that the directory scenario syncs its users into. */
  directoryOrgId: string;
  autoGrant: PairPool;
  oneApproval: PairPool;
  /** How the org was made: commands sent through Kafka and how long until all were accepted. */
  setup: { commands: number; seconds: number; requesters: number; autoGrantApps: number; approvalApps: number };
}

export interface DemoOrgNeeds {
  autoGrantRequests: number;
  approvalRequests: number;
}

/**
 * The demo org, made through Kafka as its directory connector and admin console would: the org, a
 * super admin, an approver, requesters, apps granted at once and apps that need the approver (one USER
 * step). Enough requesters and apps for every pair the run will request; sized so that the setup sends
 * as few commands as it can (requesters x apps >= requests). Setup records are keyed by the user or app
 * they describe, so they spread over the partitions (the contract allows any order across partitions).
 */
export async function createDemoOrg(
  channel: CommandChannel,
  watch: OutboundWatch,
  run: string,
  needs: DemoOrgNeeds,
  timeoutMs: number,
): Promise<DemoOrg> {
  const started = now();
  const deadline = started + timeoutMs;
  const orgId = `bench-org-${run}`;
  const directoryOrgId = `bench-dir-${run}`;
  const domain = `${orgId}.example`;
  const total = needs.autoGrantRequests + needs.approvalRequests;
  const requesterCount = Math.max(1, Math.ceil(Math.sqrt(2 * total)));
  const appCount = (requests: number) => (requests > 0 ? Math.ceil(requests / requesterCount) : 0);
  const adminId = `${orgId}-admin`;
  const approverId = `${orgId}-approver`;
  const requesters = Array.from({ length: requesterCount }, (_, index) => `${orgId}-u${index}`);
  const autoApps = Array.from({ length: appCount(needs.autoGrantRequests) }, (_, index) => `${orgId}-auto${index}`);
  const approvalApps = Array.from({ length: appCount(needs.approvalRequests) }, (_, index) => `${orgId}-approval${index}`);
  let sentCount = 0;

  const inStages = async (what: string, commands: OutgoingCommand[]) => {
    const sent = await channel.sendMany(commands);
    sentCount += sent.length;
    await watch.results.waitAll(sent.map((command) => command.commandId), deadline);
    sent.forEach(({ commandId }, index) => {
      const result = watch.results.get(commandId);
      const { type } = commands[index]!;
      if (!result) throw new Error(`demo org: no result for ${type} (${what}) within ${Math.round(timeoutMs / 1000)} s`);
      if (!result.accepted) throw new Error(`demo org: ${type} (${what}) was rejected: ${result.code}: ${result.message}`);
    });
  };

  const directory = (type: string, data: Record<string, unknown>, key?: string): OutgoingCommand => ({
    topic: 'directory',
    type: `selfservice.directory.${type}.v1`,
    data,
    key,
  });
  const user = (userId: string, adminRoles: string[]) =>
    directory('user-upserted', { orgId, userId, email: `${userId}@${domain}`, displayName: userId, status: 'ACTIVE', adminRoles }, userId);
  const orgApp = (appId: string, label: string) =>
    directory('org-app-upserted', { orgId, appId, label, signOnMode: 'SAML', status: 'ACTIVE' }, appId);
  const configure = (appId: string, config: Record<string, unknown>): OutgoingCommand => ({
    topic: 'adminCommands',
    type: 'selfservice.app.self-service-configured.v1',
    data: { orgId, actorId: adminId, appId, config },
    key: appId,
  });

  await inStages('orgs', [
    directory('org-upserted', { orgId, name: `Bench ${run}`, emailDomains: [domain] }),
    directory('org-upserted', { orgId: directoryOrgId, name: `Bench directory ${run}`, emailDomains: [`${directoryOrgId}.example`] }),
  ]);
  await inStages('users and apps', [
    user(adminId, ['SUPER_ADMIN']),
    user(approverId, []),
    ...requesters.map((userId) => user(userId, [])),
    ...autoApps.map((appId) => orgApp(appId, `Granted at once ${appId}`)),
    ...approvalApps.map((appId) => orgApp(appId, `One approval ${appId}`)),
  ]);
  await inStages('org settings', [
    { topic: 'adminCommands', type: 'selfservice.settings.update-requested.v1', data: { orgId, actorId: adminId, changes: { allowOrgManagedApps: true } } },
  ]);
  await inStages('app configuration', [
    ...autoApps.map((appId) => configure(appId, { requestsEnabled: true, approvalRequired: false })),
    ...approvalApps.map((appId) =>
      configure(appId, { requestsEnabled: true, approvalRequired: true, approverSteps: [{ type: 'USER', id: approverId, timeout: { days: 30 } }] }),
    ),
  ]);
  return {
    orgId,
    adminId,
    approverId,
    directoryOrgId,
    autoGrant: new PairPool(requesters, autoApps),
    oneApproval: new PairPool(requesters, approvalApps),
    setup: {
      commands: sentCount,
      seconds: Math.round(now() - started) / 1000,
      requesters: requesterCount,
      autoGrantApps: autoApps.length,
      approvalApps: approvalApps.length,
    },
  };
}
