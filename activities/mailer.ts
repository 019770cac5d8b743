import nodemailer, { type Transporter } from 'nodemailer';
import type { Database } from './database';

/**
 * Email through SMTP (nodemailer), once per notice and recipient. Each mail has a de-duplication key
 * (for example `<requestId>:approver-step-2:<userId>`); a retried activity finds the delivery already
 * recorded and does not send again. The Message-ID is derived from the key as well, so in the narrow
 * window where the process dies between the SMTP hand-off and the record, the copy that a retry sends
 * carries the same Message-ID and mail systems can drop it.
 */
export interface Mail {
  dedupeKey: string;
  to: string;
  subject: string;
  text: string;
}

export interface SentMail {
  smtpMessageId: string;
  /** False when an earlier attempt had already sent this mail. */
  sentNow: boolean;
}

export interface Mailer {
  send(mail: Mail): Promise<SentMail>;
  close(): void;
}

/** Header values come from data (app labels, names): no CR/LF may reach a header. */
export function headerSafe(value: string): string {
  return value.replace(/[\r\n\u2028\u2029]+/g, ' ').trim();
}

function messageIdFor(dedupeKey: string): string {
  const local = Buffer.from(dedupeKey).toString('base64url');
  return `<${local}@selfservice.local>`;
}

export function createSmtpTransport(smtpUrl: string): Transporter {
  return nodemailer.createTransport(smtpUrl);
}

export function createMailer({ db, transport, from }: { db: Database; transport: Transporter; from: string }): Mailer {
  return {
    async send(mail) {
      const recorded = await db.emailDelivery.findUnique({ where: { dedupeKey: mail.dedupeKey } });
      if (recorded?.sentAt && recorded.smtpMessageId) return { smtpMessageId: recorded.smtpMessageId, sentNow: false };

      const subject = headerSafe(mail.subject);
      const to = headerSafe(mail.to);
      const messageId = messageIdFor(mail.dedupeKey);
      await db.emailDelivery.upsert({
        where: { dedupeKey: mail.dedupeKey },
        create: { dedupeKey: mail.dedupeKey, recipient: to, subject },
        update: {},
      });
      // Recipients come only from `to`: nodemailer does not read addresses or headers out of the body.
      const info = await transport.sendMail({ from, to, subject, text: mail.text, messageId });
      const smtpMessageId = info.messageId || messageId;
      await db.emailDelivery.update({ where: { dedupeKey: mail.dedupeKey }, data: { smtpMessageId, sentAt: new Date() } });
      return { smtpMessageId, sentNow: true };
    },
    close() {
      transport.close();
    },
  };
}
