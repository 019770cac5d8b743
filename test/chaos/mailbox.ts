/** What the private Mailpit received, through its HTTP API (`/api/v1/messages`, newest first, paged). */
export interface ReceivedMail {
  ID: string;
  MessageID: string;
  Subject: string;
  To: { Address: string }[];
  Created: string;
}

export async function allMails(mailpitUrl: string): Promise<ReceivedMail[]> {
  const mails: ReceivedMail[] = [];
  for (let start = 0; ; start += 500) {
    const response = await fetch(`${mailpitUrl}/api/v1/messages?start=${start}&limit=500`);
    if (!response.ok) throw new Error(`Mailpit /api/v1/messages answered ${response.status}`);
    const page = (await response.json()) as { total: number; messages: ReceivedMail[] };
    mails.push(...page.messages);
    if (page.messages.length === 0 || mails.length >= page.total) return mails;
  }
}

/**
 * Every email Mailpit ever showed this run, merged by Mailpit's own message id, so nothing read once is
 * lost to a pruning Mailpit.
 */
export class Mailbox {
  private readonly seen = new Map<string, ReceivedMail>();

  constructor(private readonly mailpitUrl: string) {}

  async refresh(): Promise<ReceivedMail[]> {
    for (const mail of await allMails(this.mailpitUrl)) this.seen.set(mail.ID, mail);
    return [...this.seen.values()];
  }
}

/** A notice is one email to one recipient with one subject; the backend sends each notice once. */
export function noticeKey(mail: ReceivedMail): string {
  return `${mail.To.map((to) => to.Address.toLowerCase()).sort().join(',')}|${mail.Subject}`;
}
