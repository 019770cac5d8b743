import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import type { Command } from '../events/inbound';
import { outboundEvents } from '../events/outbound';
import { characterCount } from '../events/validation';
import { recordCommand } from './command-ledger';
import { enqueueEvents } from './outbox';
import { CommandRejection, type Accepted, type AuditDraft, type CommandResult } from '../rules/commands';
import type { Database, Transaction } from './database';
import type { Mailer } from './mailer';
import { technicalContactProblem } from './org-settings';

/**
 * "Request an app" (spec section 1, switch 3): a user's free-text message, emailed to the org's
 * Technical Contact. No approval: the message is accepted (result sent at once), then mailed with
 * retries through SMTP outages, and the outcome announced on selfservice.technical-contact-emails.v1.
 */

export type TechnicalContactMessageCommand = Extract<Command, { type: 'selfservice.technical-contact.message-submitted.v1' }>;

export const MESSAGE_MAX_CHARACTERS = 2000;
/** At most this many messages per user in any rolling window of RATE_LIMIT_WINDOW_MS. */
export const RATE_LIMIT_MESSAGES = 5;
export const RATE_LIMIT_WINDOW_MS = 60 * 60 * 1000;

// --- pure rules -----------------------------------------------------------------------------------

/** The text as it is mailed: line breaks normalised, surrounding blank space dropped. */
export function normaliseMessage(message: string): string {
  return message.replace(/\r\n?/g, '\n').trim();
}

export function messageProblem(message: string): { code: string; message: string } | null {
  const text = normaliseMessage(message);
  if (text.length === 0) return { code: 'MESSAGE_EMPTY', message: 'the message must not be empty' };
  const count = characterCount(text);
  if (count > MESSAGE_MAX_CHARACTERS) {
    return { code: 'MESSAGE_TOO_LONG', message: `the message has ${count} characters; at most ${MESSAGE_MAX_CHARACTERS} are allowed` };
  }
  return null;
}

/** When the user may send again, given the send times of their messages in the current window. */
export function rateLimitRetryAt(recentSends: readonly Date[], now: Date): Date | null {
  const windowStart = now.getTime() - RATE_LIMIT_WINDOW_MS;
  const inWindow = recentSends.map((at) => at.getTime()).filter((at) => at > windowStart).sort((a, b) => a - b);
  if (inWindow.length < RATE_LIMIT_MESSAGES) return null;
  // The oldest send that must leave the window for the count to drop below the limit.
  const blocking = inWindow[inWindow.length - RATE_LIMIT_MESSAGES]!;
  return new Date(blocking + RATE_LIMIT_WINDOW_MS);
}

export interface Requester {
  id: string;
  email: string;
  displayName: string | null;
}

export function technicalContactEmail(requester: Requester, org: { id: string; name: string }, text: string) {
  const who = requester.displayName ? `${requester.displayName} <${requester.email}>` : requester.email;
  return {
    subject: `App integration request from ${requester.displayName ?? requester.email} (${org.name})`,
    text: [
      `${who} (user ${requester.id}) of ${org.name} asks for an app integration to be added to the org.`,
      '',
      'Their message, as they wrote it:',
      '----------------------------------------------------------------',
      text,
      '----------------------------------------------------------------',
      '',
      `You receive this because you are the Technical Contact of ${org.name} (org ${org.id}).`,
      `Reply to the requester at ${requester.email}.`,
    ].join('\n'),
  };
}

export function dedupeKeyFor(messageId: string): string {
  return `technical-contact-message:${messageId}`;
}

// --- command handler ------------------------------------------------------------------------------

async function requireActiveRequester(tx: Transaction, orgId: string, userId: string, audit: AuditDraft): Promise<void> {
  const user = await tx.user.findUnique({ where: { id: userId }, select: { orgId: true, status: true } });
  if (!user || user.orgId !== orgId) throw new CommandRejection('USER_NOT_FOUND', `user ${userId} is not a user of org ${orgId}`, audit);
  if (user.status !== 'ACTIVE') throw new CommandRejection('USER_NOT_ACTIVE', `user ${userId} is ${user.status}; only active users can do this`, audit);
}

export async function acceptTechnicalContactMessage(tx: Transaction, { data }: TechnicalContactMessageCommand): Promise<Accepted> {
  const { orgId, userId } = data;
  // The message text is personal data: the audit records its length, not its content.
  const audit: AuditDraft = { orgId, actorId: userId, action: 'technical-contact.message' };
  const org = await tx.org.findUnique({ where: { id: orgId }, include: { settings: true } });
  if (!org) throw new CommandRejection('ORG_NOT_FOUND', `org ${orgId} is unknown`, audit);
  const settings = org.settings;
  if (!settings?.allowTechnicalContactRequests) {
    throw new CommandRejection(
      'TECHNICAL_CONTACT_REQUESTS_DISABLED',
      `org ${orgId} does not allow users to email the Technical Contact (setting allowTechnicalContactRequests is off)`,
      audit,
    );
  }
  await requireActiveRequester(tx, orgId, userId, audit);
  if (!settings.technicalContactUserId) {
    throw new CommandRejection('TECHNICAL_CONTACT_NOT_SET', `org ${orgId} has no Technical Contact; ask an admin to set one`, audit);
  }
  const contact = await tx.user.findUnique({ where: { id: settings.technicalContactUserId } });
  const contactProblem = technicalContactProblem(orgId, contact);
  if (contactProblem || !contact) {
    throw new CommandRejection(contactProblem?.code ?? 'TECHNICAL_CONTACT_NOT_FOUND', contactProblem?.message ?? 'no Technical Contact', audit);
  }
  const problem = messageProblem(data.message);
  if (problem) throw new CommandRejection(problem.code, problem.message, audit);

  // One user's messages are counted and inserted one at a time, so concurrent sends cannot pass the limit.
  await tx.$queryRaw`SELECT 1 FROM "User" WHERE "id" = ${userId} FOR UPDATE`;
  const now = new Date();
  const recent = await tx.technicalContactMessage.findMany({
    where: { userId, createdAt: { gt: new Date(now.getTime() - RATE_LIMIT_WINDOW_MS) } },
    select: { createdAt: true },
  });
  const retryAt = rateLimitRetryAt(
    recent.map((row) => row.createdAt),
    now,
  );
  if (retryAt) {
    throw new CommandRejection(
      'RATE_LIMITED',
      `at most ${RATE_LIMIT_MESSAGES} messages to the Technical Contact per hour; try again after ${retryAt.toISOString()}`,
      audit,
      { retryAfter: retryAt.toISOString() },
    );
  }

  const messageId = `tcm-${randomUUID()}`;
  await tx.technicalContactMessage.create({
    data: { id: messageId, orgId, userId, contactUserId: contact.id, contactEmail: contact.email, status: 'QUEUED', createdAt: now },
  });
  return {
    details: { messageId },
    audit: { ...audit, subject: messageId, after: { messageId, contactUserId: contact.id, characters: characterCount(normaliseMessage(data.message)) } },
  };
}

// --- activities -----------------------------------------------------------------------------------

export interface SentTechnicalContactEmail {
  smtpMessageId: string;
  contactEmail: string;
}

export type TechnicalContactEmailOutcome =
  | ({ status: 'SENT' } & SentTechnicalContactEmail)
  | { status: 'FAILED'; error: string };

export function createTechnicalContactMessageActivities({ db, mailer }: { db: Database; mailer: Mailer }) {
  return {
    async applyTechnicalContactMessage(command: TechnicalContactMessageCommand, workflowId: string): Promise<CommandResult> {
      return recordCommand(db, command, async (tx, cmd) => {
        const accepted = await acceptTechnicalContactMessage(tx, cmd);
        return { ...accepted, details: { ...accepted.details, workflowId } };
      });
    },

    /**
     * Mails one accepted message to the org's Technical Contact as it is at the time of sending. Retried
     * by the workflow through SMTP outages; the mailer's de-duplication key (the message id) keeps a
     * retried attempt from sending a second copy. No valid contact any more is final (not retried).
     */
    async sendTechnicalContactEmail({ messageId, message }: { messageId: string; message: string }): Promise<SentTechnicalContactEmail> {
      const row = await db.technicalContactMessage.findUniqueOrThrow({ where: { id: messageId } });
      const delivered = await db.emailDelivery.findUnique({ where: { dedupeKey: dedupeKeyFor(messageId) } });
      if (delivered?.sentAt && delivered.smtpMessageId) return { smtpMessageId: delivered.smtpMessageId, contactEmail: delivered.recipient };

      const org = await db.org.findUniqueOrThrow({ where: { id: row.orgId }, include: { settings: true } });
      const contactId = org.settings?.technicalContactUserId;
      const contact = contactId ? await db.user.findUnique({ where: { id: contactId } }) : null;
      const problem = contactId
        ? technicalContactProblem(org.id, contact)
        : { code: 'TECHNICAL_CONTACT_NOT_SET', message: `org ${org.id} has no Technical Contact any more` };
      if (problem || !contact) {
        throw ApplicationFailure.nonRetryable(problem?.message ?? 'no Technical Contact', problem?.code ?? 'TECHNICAL_CONTACT_NOT_FOUND');
      }
      const requester = await db.user.findUniqueOrThrow({ where: { id: row.userId } });
      const mail = technicalContactEmail(requester, org, normaliseMessage(message));
      const sent = await mailer.send({ dedupeKey: dedupeKeyFor(messageId), to: contact.email, ...mail });
      return { smtpMessageId: sent.smtpMessageId, contactEmail: contact.email };
    },

    /** Records how the delivery ended and queues its announcement; returns the outbox event id (idempotent). */
    async recordTechnicalContactEmailOutcome({
      commandId,
      messageId,
      outcome,
    }: {
      commandId: string;
      messageId: string;
      outcome: TechnicalContactEmailOutcome;
    }): Promise<string> {
      return db.$transaction(async (tx) => {
        const row = await tx.technicalContactMessage.findUniqueOrThrow({ where: { id: messageId } });
        if (row.status !== 'QUEUED') return `${commandId}:${row.status === 'SENT' ? 'email-sent' : 'email-failed'}`;
        const now = new Date();
        const sent = outcome.status === 'SENT';
        const contactEmail = sent ? outcome.contactEmail : row.contactEmail;
        await tx.technicalContactMessage.update({
          where: { id: messageId },
          data: sent
            ? { status: 'SENT', contactEmail, smtpMessageId: outcome.smtpMessageId, sentAt: now }
            : { status: 'FAILED', error: outcome.error.slice(0, 2000) },
        });
        const id = `${commandId}:${sent ? 'email-sent' : 'email-failed'}`;
        const base = { orgId: row.orgId, requesterId: row.userId, contactEmail, technicalContactMessageId: messageId };
        const event = sent
          ? outboundEvents.technicalContactEmailSent({ ...base, messageId: outcome.smtpMessageId })
          : outboundEvents.technicalContactEmailFailed({ ...base, error: outcome.error });
        await enqueueEvents(tx, [{ id, ...event, time: now.toISOString() }]);
        return id;
      });
    },
  };
}
