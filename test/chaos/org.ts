import type { CommandSender } from './command-sender';

/**
 * The org of a run: a super admin, one approver and one requester per request of a round. Every round
 * gets two apps of its own (one granted at once, one needing one approval step by the approver), so
 * the same requesters serve every round without meeting the duplicate-pending or already-assigned
 * rules, and everything a round caused is told apart by its apps. Ids carry the run, so runs never
 * share state.
 */
export interface ChaosOrg {
  orgId: string;
  domain: string;
  adminId: string;
  approverId: string;
  requesters: string[];
  displayName(userId: string): string;
  email(userId: string): string;
}

/** The apps of one fault round. Labels are unique, so the subject of an email names its round. */
export interface RoundApps {
  round: string;
  autoAppId: string;
  autoAppLabel: string;
  approvalAppId: string;
  approvalAppLabel: string;
}

export function planOrg(run: string, requesters: number): ChaosOrg {
  const orgId = `chaos-${run}`;
  const domain = `${orgId}.example`;
  return {
    orgId,
    domain,
    adminId: `${orgId}-admin`,
    approverId: `${orgId}-approver`,
    requesters: Array.from({ length: requesters }, (_, index) => `${orgId}-u${String(index).padStart(3, '0')}`),
    displayName: (userId) => `Requester ${userId.slice(orgId.length + 1)}`,
    email: (userId) => `${userId}@${domain}`,
  };
}

export function planRound(org: ChaosOrg, round: string): RoundApps {
  return {
    round,
    autoAppId: `${org.orgId}-${round}-wiki`,
    autoAppLabel: `Wiki [${round}]`,
    approvalAppId: `${org.orgId}-${round}-expenses`,
    approvalAppLabel: `Expenses [${round}]`,
  };
}

const SEED = 'seed';

/** Creates the org and its people through Kafka, exactly as a directory sync and an admin console would. */
export async function seedOrg(commands: CommandSender, org: ChaosOrg): Promise<void> {
  await commands.accepted(SEED, 'directory', 'selfservice.directory.org-upserted.v1', {
    orgId: org.orgId,
    name: `Chaos ${org.orgId}`,
    emailDomains: [org.domain],
  });
  const people = [
    { userId: org.adminId, adminRoles: ['SUPER_ADMIN'], displayName: 'Chaos Admin' },
    { userId: org.approverId, adminRoles: [], displayName: 'Chaos Approver' },
    ...org.requesters.map((userId) => ({ userId, adminRoles: [], displayName: org.displayName(userId) })),
  ];
  await Promise.all(
    people.map((person) =>
      commands.accepted(SEED, 'directory', 'selfservice.directory.user-upserted.v1', {
        orgId: org.orgId,
        userId: person.userId,
        email: org.email(person.userId),
        displayName: person.displayName,
        status: 'ACTIVE',
        adminRoles: person.adminRoles,
      }),
    ),
  );
  await commands.accepted(SEED, 'adminCommands', 'selfservice.settings.update-requested.v1', {
    orgId: org.orgId,
    actorId: org.adminId,
    changes: { allowOrgManagedApps: true },
  });
}

/** The two apps of a round, with their Self Service configuration. */
export async function seedRoundApps(commands: CommandSender, org: ChaosOrg, apps: RoundApps): Promise<void> {
  await Promise.all(
    [
      { appId: apps.autoAppId, label: apps.autoAppLabel },
      { appId: apps.approvalAppId, label: apps.approvalAppLabel },
    ].map((app) =>
      commands.accepted(SEED, 'directory', 'selfservice.directory.org-app-upserted.v1', {
        orgId: org.orgId,
        appId: app.appId,
        label: app.label,
        signOnMode: 'SAML',
        status: 'ACTIVE',
      }),
    ),
  );
  await Promise.all([
    commands.accepted(SEED, 'adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.adminId,
      appId: apps.autoAppId,
      config: { requestsEnabled: true, approvalRequired: false },
    }),
    commands.accepted(SEED, 'adminCommands', 'selfservice.app.self-service-configured.v1', {
      orgId: org.orgId,
      actorId: org.adminId,
      appId: apps.approvalAppId,
      config: {
        requestsEnabled: true,
        approvalRequired: true,
        approverSteps: [{ type: 'USER', id: org.approverId, timeout: { days: 7 } }],
      },
    }),
  ]);
}
