import { loadConfig } from '../../workers/config';

/** Reads what the SMTP sink (Mailpit) received, through its HTTP API. */
export interface ReceivedMail {
  ID: string;
  MessageID: string;
  Subject: string;
  From: { Address: string };
  To: { Address: string; Name: string }[];
  Cc: { Address: string }[] | null;
  Bcc: { Address: string }[] | null;
  Snippet: string;
}

export interface MailDetail extends ReceivedMail {
  Text: string;
}

const baseUrl = () => loadConfig().MAILPIT_URL;

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(`${baseUrl()}${path}`);
  if (!response.ok) throw new Error(`Mailpit ${path} answered ${response.status}`);
  return (await response.json()) as T;
}

export async function mailsTo(address: string): Promise<ReceivedMail[]> {
  const result = await getJson<{ messages: ReceivedMail[] }>(`/api/v1/search?query=${encodeURIComponent(`to:"${address}"`)}&limit=200`);
  return result.messages;
}

export async function mailDetail(id: string): Promise<MailDetail> {
  return getJson<MailDetail>(`/api/v1/message/${id}`);
}

export async function mailHeaders(id: string): Promise<Record<string, string[]>> {
  return getJson<Record<string, string[]>>(`/api/v1/message/${id}/headers`);
}

/** Waits until `address` has received at least `count` mails, then returns them all. */
export async function waitForMails(address: string, count = 1, timeoutMs = 30_000): Promise<ReceivedMail[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mails = await mailsTo(address);
    if (mails.length >= count) return mails;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} mail(s) to ${address}; got ${mails.length}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
