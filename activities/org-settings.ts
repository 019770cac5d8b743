import { z } from 'zod';
import { SETTING_KEYS, type Command, type SettingKey } from '../events/inbound';
import { outboundEvents, type SettingsSnapshot } from '../events/outbound';
import { requireAdmin } from './admin-authorization';
import { CommandRejection, type Accepted, type AuditDraft, type EventDraft } from '../rules/commands';
import type { Transaction } from './database';

/**
 * The org's four Self Service switches and its Technical Contact (spec section 1). Only a super admin
 * changes them; each accepted change bumps the version and is announced on selfservice.settings.v1.
 * A change that changes nothing is accepted and audited but neither versioned nor announced.
 */

type SettingsCommand<T extends Command['type']> = Extract<Command, { type: T }>;

export type { SettingsSnapshot };

/** The actor recorded when the backend changes a setting on its own (a directory change forced it). */
export const SYSTEM_ACTOR = 'system:directory-sync';

const emailSchema = z.email();

interface ContactCandidate {
  id: string;
  orgId: string;
  email: string;
  status: string;
}

/** Why a user cannot be the org's Technical Contact, or null when they can. */
export function technicalContactProblem(orgId: string, user: ContactCandidate | null): { code: string; message: string } | null {
  if (!user || user.orgId !== orgId) {
    return { code: 'TECHNICAL_CONTACT_NOT_FOUND', message: `the Technical Contact must be an existing user of org ${orgId}` };
  }
  if (user.status !== 'ACTIVE') {
    return { code: 'TECHNICAL_CONTACT_INACTIVE', message: `the Technical Contact ${user.id} is ${user.status}; choose an active user` };
  }
  if (!emailSchema.safeParse(user.email).success) {
    return { code: 'TECHNICAL_CONTACT_EMAIL_INVALID', message: `the Technical Contact ${user.id} has no valid email address` };
  }
  return null;
}

async function loadSettings(tx: Transaction, orgId: string) {
  return tx.orgSettings.upsert({ where: { orgId }, create: { orgId }, update: {} });
}

function snapshot(row: SettingsSnapshot): SettingsSnapshot {
  return {
    allowOrgManagedApps: row.allowOrgManagedApps,
    allowPersonalApps: row.allowPersonalApps,
    allowTechnicalContactRequests: row.allowTechnicalContactRequests,
    allowMoveToOktaPersonal: row.allowMoveToOktaPersonal,
    technicalContactUserId: row.technicalContactUserId,
  };
}

function changedKeys(before: SettingsSnapshot, after: SettingsSnapshot): (keyof SettingsSnapshot)[] {
  return (Object.keys(after) as (keyof SettingsSnapshot)[]).filter((key) => before[key] !== after[key]);
}

function settingsChanged(orgId: string, actorId: string, version: number, before: SettingsSnapshot, after: SettingsSnapshot, reason?: string): EventDraft {
  return {
    name: 'settings-changed',
    ...outboundEvents.settingsChanged({ orgId, actorId, version, before, after, changed: changedKeys(before, after), ...(reason ? { reason } : {}) }),
  };
}

/** Writes the new settings only if nobody else changed them since `version` was read. */
async function saveSettings(tx: Transaction, orgId: string, version: number, after: SettingsSnapshot, audit: AuditDraft) {
  const { count } = await tx.orgSettings.updateMany({ where: { orgId, version }, data: { ...after, version: version + 1 } });
  if (count !== 1) {
    throw new CommandRejection('STALE_VERSION', `the settings of org ${orgId} changed while this change was applied; reload and retry`, audit);
  }
  return version + 1;
}

const NO_SETTINGS: SettingsSnapshot = {
  allowOrgManagedApps: false,
  allowPersonalApps: false,
  allowTechnicalContactRequests: false,
  allowMoveToOktaPersonal: false,
  technicalContactUserId: null,
};

/** The settings as stored, or the defaults (version 0) of an org that has none yet; reads only. */
async function readSettings(tx: Transaction, orgId: string) {
  return (await tx.orgSettings.findUnique({ where: { orgId } })) ?? { ...NO_SETTINGS, version: 0 };
}

export type SettingsChangeData = SettingsCommand<'selfservice.settings.update-requested.v1'>['data'];

/** A settings change as checked, before anything is written: the version it was checked against, before and after. */
export interface CheckedSettingsChange {
  version: number;
  before: SettingsSnapshot;
  after: SettingsSnapshot;
  changed: (keyof SettingsSnapshot)[];
  audit: AuditDraft;
}

/**
 * Every rule a settings change must pass (super admin, expectedVersion, a Technical Contact before its
 * switch, the feature flag before the move switch), each refusal with its code and the audit entry
 * under `action`. The change itself and its preview both go through it; `readOnly` (the preview)
 * writes nothing, not even the org's first settings row.
 */
export async function checkSettingsChange(
  tx: Transaction,
  data: SettingsChangeData,
  { action, readOnly }: { action: string; readOnly: boolean },
): Promise<CheckedSettingsChange> {
  const { orgId, actorId, changes, expectedVersion } = data;
  const audit: AuditDraft = { orgId, actorId, action, after: changes };
  await requireAdmin(tx, { orgId, actorId, roles: ['SUPER_ADMIN'], action: audit.action });

  const current = readOnly ? await readSettings(tx, orgId) : await loadSettings(tx, orgId);
  const before = snapshot(current);
  audit.before = before;
  if (expectedVersion !== undefined && expectedVersion !== current.version) {
    throw new CommandRejection(
      'STALE_VERSION',
      `the settings of org ${orgId} are at version ${current.version}, but the change was based on version ${expectedVersion}; reload and retry`,
      audit,
    );
  }

  const after: SettingsSnapshot = { ...before };
  for (const key of SETTING_KEYS) {
    const value = changes[key as SettingKey];
    if (value !== undefined) after[key] = value;
  }
  audit.after = after;

  if (after.allowTechnicalContactRequests && !before.allowTechnicalContactRequests) {
    if (!after.technicalContactUserId) {
      throw new CommandRejection(
        'TECHNICAL_CONTACT_REQUIRED',
        'set a Technical Contact (an active user of the org with a valid email) before allowing users to email the Technical Contact',
        audit,
      );
    }
    const contact = await tx.user.findUnique({ where: { id: after.technicalContactUserId } });
    const problem = technicalContactProblem(orgId, contact);
    if (problem) throw new CommandRejection(problem.code, `${problem.message} before allowing users to email the Technical Contact`, audit);
  }
  if (after.allowMoveToOktaPersonal && !before.allowMoveToOktaPersonal) {
    const org = await tx.org.findUniqueOrThrow({ where: { id: orgId } });
    if (!org.personalAppMigration) {
      throw new CommandRejection(
        'FEATURE_NOT_ENABLED',
        `moving apps to Okta Personal needs the PERSONAL_APP_MIGRATION feature, which is not enabled for org ${orgId}; ask support to enable it`,
        audit,
      );
    }
  }
  return { version: current.version, before, after, changed: changedKeys(before, after), audit };
}

export async function updateSettings(
  tx: Transaction,
  { data }: SettingsCommand<'selfservice.settings.update-requested.v1'>,
): Promise<Accepted> {
  const { orgId, actorId } = data;
  const { version: current, before, after, changed, audit } = await checkSettingsChange(tx, data, { action: 'settings.update', readOnly: false });
  if (changed.length === 0) {
    return { details: { version: current, changed: [] }, audit };
  }
  const version = await saveSettings(tx, orgId, current, after, audit);
  return { details: { version, changed }, audit, events: [settingsChanged(orgId, actorId, version, before, after)] };
}

export async function setTechnicalContact(
  tx: Transaction,
  { data }: SettingsCommand<'selfservice.technical-contact.set-requested.v1'>,
): Promise<Accepted> {
  const { orgId, actorId, contact } = data;
  const audit: AuditDraft = { orgId, actorId, action: 'technical-contact.set', subject: contact };
  await requireAdmin(tx, { orgId, actorId, roles: ['SUPER_ADMIN'], action: audit.action, subject: contact });

  const user = contact.includes('@')
    ? await tx.user.findFirst({ where: { orgId, email: contact.toLowerCase() } })
    : await tx.user.findUnique({ where: { id: contact } });
  const problem = technicalContactProblem(orgId, user);
  if (problem || !user) {
    throw new CommandRejection(problem?.code ?? 'TECHNICAL_CONTACT_NOT_FOUND', problem?.message ?? `no user ${contact}`, audit);
  }

  const current = await loadSettings(tx, orgId);
  const before = snapshot(current);
  const after = { ...before, technicalContactUserId: user.id };
  audit.before = before;
  audit.after = after;
  if (before.technicalContactUserId === user.id) {
    return { details: { version: current.version, technicalContactUserId: user.id, changed: [] }, audit };
  }
  const version = await saveSettings(tx, orgId, current.version, after, audit);
  return {
    details: { version, technicalContactUserId: user.id, changed: ['technicalContactUserId'] },
    audit,
    events: [settingsChanged(orgId, actorId, version, before, after)],
  };
}

/**
 * The Technical Contact was deactivated or suspended by a directory sync: nobody could receive the
 * users' emails any more, so the switch goes off (the contact stays recorded for the admins to see)
 * and the change is announced like any other, with the system as actor and the reason.
 */
export async function reactToTechnicalContactLeaving(tx: Transaction, orgId: string, userId: string, status: string): Promise<Accepted> {
  const current = await tx.orgSettings.findUnique({ where: { orgId } });
  if (!current || current.technicalContactUserId !== userId || !current.allowTechnicalContactRequests) return {};
  const before = snapshot(current);
  const after = { ...before, allowTechnicalContactRequests: false };
  const audit: AuditDraft = { orgId, actorId: SYSTEM_ACTOR, action: 'settings.technical-contact-left', subject: userId, before, after };
  const version = await saveSettings(tx, orgId, current.version, after, audit);
  const reason = `TECHNICAL_CONTACT_${status}: the Technical Contact ${userId} is ${status}; set a new contact and turn the switch on again`;
  return { audit, events: [settingsChanged(orgId, SYSTEM_ACTOR, version, before, after, reason)] };
}
