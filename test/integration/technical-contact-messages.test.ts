import { randomUUID } from 'node:crypto';
import { startTestBackend, type TestBackend } from '../support/backend';
import { SmtpOutageSwitch } from '../support/smtp-outage';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { mailDetail, mailHeaders, mailsTo, waitForMails } from '../support/mailpit';
import { recordHistory } from '../support/histories';
import { testConfig, uniqueId } from '../support/test-config';

/**
 * "Request an app": a user's message to the Technical Contact, end to end through Kafka, Temporal,
 * PostgreSQL and the SMTP sink (Mailpit), whose API shows what was really delivered.
 */
describe('messages to the Technical Contact', () => {
  let backend: TestBackend;
  let smtp: SmtpOutageSwitch;
  let probe: TopicProbe;

  beforeAll(async () => {
    smtp = await SmtpOutageSwitch.start(testConfig().SMTP_URL);
    backend = await startTestBackend({ overrides: { SMTP_URL: smtp.smtpUrl } });
    probe = await TopicProbe.start(backend.kafka, [
      backend.topics.commandResults,
      backend.topics.technicalContactEmails,
      backend.topics.deadLetters,
    ]);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
    await smtp?.cut();
  });

  const SUBMIT = 'selfservice.technical-contact.message-submitted.v1';
  /** Runs `during` with SMTP cut off for this suite's worker, and always restores it. */
  async function withSmtpDown(during: () => Promise<void>): Promise<void> {
    await smtp.cut();
    try {
      await during();
    } finally {
      await smtp.restore();
    }
  }

  async function resultOf(commandId: string): Promise<SeenRecord> {
    return probe.waitFor(resultFor(commandId), `the result of ${commandId}`, 60_000);
  }

  async function accepted(topic: string, type: string, data: Record<string, unknown>): Promise<void> {
    const commandId = await sendCommand(backend.producer, topic, type, data);
    const result = await resultOf(commandId);
    expect(result.data).toMatchObject({ commandType: type });
    expect(result.type).toBe('selfservice.command.accepted.v1');
  }

  interface Org {
    orgId: string;
    name: string;
    domain: string;
    adminId: string;
    userId: string;
    userEmail: string;
    contactId: string;
    contactEmail: string;
  }

  /** An org with a super admin, an end user and a Technical Contact (unique addresses for the shared mailbox). */
  async function seedOrg({ contact = true, allow = true } = {}): Promise<Org> {
    const orgId = uniqueId('org');
    const domain = `${orgId}.example`;
    const org: Org = {
      orgId,
      name: `Org ${orgId}`,
      domain,
      adminId: uniqueId('admin'),
      userId: uniqueId('user'),
      userEmail: `${uniqueId('requester')}@${domain}`,
      contactId: uniqueId('contact'),
      contactEmail: `${uniqueId('it')}@${domain}`,
    };
    const directory = backend.topics.directory;
    const admin = backend.topics.adminCommands;
    await accepted(directory, 'selfservice.directory.org-upserted.v1', { orgId, name: org.name, emailDomains: [domain] });
    await accepted(directory, 'selfservice.directory.user-upserted.v1', {
      orgId,
      userId: org.adminId,
      email: `${org.adminId}@${domain}`,
      status: 'ACTIVE',
      adminRoles: ['SUPER_ADMIN'],
    });
    await accepted(directory, 'selfservice.directory.user-upserted.v1', {
      orgId,
      userId: org.userId,
      email: org.userEmail,
      displayName: 'Jane Requester',
      status: 'ACTIVE',
      adminRoles: [],
    });
    await accepted(directory, 'selfservice.directory.user-upserted.v1', {
      orgId,
      userId: org.contactId,
      email: org.contactEmail,
      displayName: 'IT Contact',
      status: 'ACTIVE',
      adminRoles: [],
    });
    if (contact) {
      await accepted(admin, 'selfservice.technical-contact.set-requested.v1', { orgId, actorId: org.adminId, contact: org.contactId });
      if (allow) {
        await accepted(admin, 'selfservice.settings.update-requested.v1', {
          orgId,
          actorId: org.adminId,
          changes: { allowTechnicalContactRequests: true },
        });
      }
    }
    return org;
  }

  async function submit(org: Org, message: string, options: { id?: string } = {}) {
    const commandId = await sendCommand(backend.producer, backend.topics.userRequests, SUBMIT, { orgId: org.orgId, userId: org.userId, message }, options);
    return { commandId, result: await resultOf(commandId) };
  }

  function emailOutcome(commandId: string, timeoutMs = 60_000): Promise<SeenRecord> {
    return probe.waitFor(
      (record) => record.topic === backend.topics.technicalContactEmails && record.id?.startsWith(`${commandId}:`) === true,
      `the email outcome of ${commandId}`,
      timeoutMs,
    );
  }

  /** Mail bodies travel with CRLF line ends. */
  function lines(text: string): string {
    return text.replace(/\r\n/g, '\n');
  }

  function outcomes(commandId: string): SeenRecord[] {
    return probe.matching((record) => record.topic === backend.topics.technicalContactEmails && record.id?.startsWith(`${commandId}:`) === true);
  }

  test('a message is emailed to the Technical Contact, naming the requester and the org, and announced as sent', async () => {
    const org = await seedOrg();
    const { commandId, result } = await submit(org, 'Please add Figma to the org.\nOur design team needs SSO.');

    expect(result.type).toBe('selfservice.command.accepted.v1');
    expect(result.data).toMatchObject({ commandType: SUBMIT, orgId: org.orgId, workflowId: `technical-contact-message-${commandId}` });
    const messageId = result.data.messageId as string;

    const [mail] = await waitForMails(org.contactEmail);
    const detail = await mailDetail(mail!.ID);
    const body = lines(detail.Text);
    expect(detail.Subject).toBe(`App integration request from Jane Requester (${org.name})`);
    expect(detail.To.map((to) => to.Address)).toEqual([org.contactEmail]);
    expect(body).toContain('Please add Figma to the org.\nOur design team needs SSO.');
    expect(body).toContain(`Jane Requester <${org.userEmail}>`);
    expect(body).toContain(org.name);

    const sent = await emailOutcome(commandId);
    expect(sent.type).toBe('selfservice.technical-contact.email-sent.v1');
    expect(sent.key).toBe(org.orgId);
    expect(sent.data).toMatchObject({ orgId: org.orgId, requesterId: org.userId, contactEmail: org.contactEmail, messageId: `<${detail.MessageID}>` });
    expect(String(sent.data.messageId)).not.toBe('');

    await expect(backend.db.technicalContactMessage.findUniqueOrThrow({ where: { id: messageId } })).resolves.toMatchObject({
      status: 'SENT',
      contactUserId: org.contactId,
      sentAt: expect.any(Date),
    });
    const handle = backend.client.workflow.getHandle(`technical-contact-message-${commandId}`);
    await handle.result();
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    await recordHistory(handle, 'technical-contact-message-sent');
  });

  test('CR/LF and header text in the message cannot add headers or recipients', async () => {
    const org = await seedOrg();
    const injected = `${uniqueId('intruder')}@evil.example`;
    const copied = `${uniqueId('copied')}@evil.example`;
    const message = `Hi\r\nBcc: ${injected}\r\nCc: ${copied}\r\nSubject: hacked\r\nX-Injected: yes\r\n\r\nplease add Slack`;
    const { commandId, result } = await submit(org, message);
    expect(result.type).toBe('selfservice.command.accepted.v1');
    await emailOutcome(commandId);

    const [mail] = await waitForMails(org.contactEmail);
    const detail = await mailDetail(mail!.ID);
    expect(detail.To.map((to) => to.Address)).toEqual([org.contactEmail]);
    expect(detail.Cc ?? []).toEqual([]);
    expect(detail.Bcc ?? []).toEqual([]);
    expect(detail.Subject).toBe(`App integration request from Jane Requester (${org.name})`);
    // The text arrives in the body, as the user wrote it.
    expect(detail.Text).toContain(`Bcc: ${injected}`);

    const headers = await mailHeaders(mail!.ID);
    const names = Object.keys(headers).map((name) => name.toLowerCase());
    expect(names).not.toContain('bcc');
    expect(names).not.toContain('cc');
    expect(names).not.toContain('x-injected');
    expect(headers.Subject).toEqual([`App integration request from Jane Requester (${org.name})`]);
    expect(JSON.stringify(headers)).not.toContain('evil.example');

    await expect(mailsTo(injected)).resolves.toHaveLength(0);
    await expect(mailsTo(copied)).resolves.toHaveLength(0);
  });

  test('CR/LF in the requester’s directory name is refused, and one stored earlier cannot add headers or recipients', async () => {
    const org = await seedOrg();
    const injected = `${uniqueId('intruder')}@evil.example`;
    const displayName = `Jane\r\nBcc: ${injected}`;
    const refusedId = await sendCommand(backend.producer, backend.topics.directory, 'selfservice.directory.user-upserted.v1', {
      orgId: org.orgId,
      userId: org.userId,
      email: org.userEmail,
      displayName,
      status: 'ACTIVE',
      adminRoles: [],
    });
    const refused = await resultOf(refusedId);
    expect(refused.data).toMatchObject({ code: 'INVALID_COMMAND' });
    expect(String(refused.data.message)).toContain('data.displayName');
    // A name stored before the contract refused control characters: the mail headers stay clean all the same.
    await backend.db.user.update({ where: { id: org.userId }, data: { displayName } });
    const { commandId } = await submit(org, 'Please add Dropbox');
    await emailOutcome(commandId);

    const [mail] = await waitForMails(org.contactEmail);
    const detail = await mailDetail(mail!.ID);
    expect(detail.To.map((to) => to.Address)).toEqual([org.contactEmail]);
    expect(detail.Bcc ?? []).toEqual([]);
    expect(detail.Subject).toBe(`App integration request from Jane Bcc: ${injected} (${org.name})`);
    const names = Object.keys(await mailHeaders(mail!.ID)).map((name) => name.toLowerCase());
    expect(names).not.toContain('bcc');
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await expect(mailsTo(injected)).resolves.toHaveLength(0);
  });

  test('with the switch off the message is refused (TECHNICAL_CONTACT_REQUESTS_DISABLED) and nothing is sent', async () => {
    const org = await seedOrg({ allow: false });
    const { commandId, result } = await submit(org, 'Please add Miro');

    expect(result.type).toBe('selfservice.command.rejected.v1');
    expect(result.data).toMatchObject({ code: 'TECHNICAL_CONTACT_REQUESTS_DISABLED' });
    expect(result.data.message).toMatch(/allowTechnicalContactRequests/);
    await expect(backend.db.technicalContactMessage.count({ where: { userId: org.userId } })).resolves.toBe(0);
    await expect(backend.db.auditEntry.findFirstOrThrow({ where: { commandId } })).resolves.toMatchObject({
      outcome: 'REJECTED',
      code: 'TECHNICAL_CONTACT_REQUESTS_DISABLED',
      actorId: org.userId,
    });
  });

  test('turning the switch off stops the next message at once', async () => {
    const org = await seedOrg();
    const first = await submit(org, 'first');
    expect(first.result.type).toBe('selfservice.command.accepted.v1');
    await accepted(backend.topics.adminCommands, 'selfservice.settings.update-requested.v1', {
      orgId: org.orgId,
      actorId: org.adminId,
      changes: { allowTechnicalContactRequests: false },
    });
    const second = await submit(org, 'second');
    expect(second.result.data).toMatchObject({ code: 'TECHNICAL_CONTACT_REQUESTS_DISABLED' });
    // The message accepted before the switch went off is still delivered.
    await expect(emailOutcome(first.commandId)).resolves.toMatchObject({ type: 'selfservice.technical-contact.email-sent.v1' });
  });

  test('without a Technical Contact, or with one who is no longer active, the message is refused', async () => {
    // Commands cannot turn the switch on without a contact, so that state is written directly.
    const noContact = await seedOrg({ contact: false });
    await backend.db.orgSettings.update({ where: { orgId: noContact.orgId }, data: { allowTechnicalContactRequests: true } });
    const refused = await submit(noContact, 'Please add Notion');
    expect(refused.result.data).toMatchObject({ code: 'TECHNICAL_CONTACT_NOT_SET' });

    // A directory sync deactivating the contact turns the switch off by itself.
    const org = await seedOrg();
    await accepted(backend.topics.directory, 'selfservice.directory.user-upserted.v1', {
      orgId: org.orgId,
      userId: org.contactId,
      email: org.contactEmail,
      status: 'DEACTIVATED',
      adminRoles: [],
    });
    const afterLeaving = await submit(org, 'Please add Notion');
    expect(afterLeaving.result.data).toMatchObject({ code: 'TECHNICAL_CONTACT_REQUESTS_DISABLED' });

    // A contact suspended behind the directory's back is caught when the message arrives.
    const stale = await seedOrg();
    await backend.db.user.update({ where: { id: stale.contactId }, data: { status: 'SUSPENDED' } });
    const suspended = await submit(stale, 'Please add Notion');
    expect(suspended.result.data).toMatchObject({ code: 'TECHNICAL_CONTACT_INACTIVE' });
    await expect(mailsTo(stale.contactEmail)).resolves.toHaveLength(0);
  });

  test('an empty message and a 2001-character message are refused with a result and an audit entry, not dead-lettered', async () => {
    const org = await seedOrg();
    const empty = await submit(org, '  \r\n ');
    expect(empty.result.type).toBe('selfservice.command.rejected.v1');
    expect(empty.result.data).toMatchObject({ code: 'MESSAGE_EMPTY' });

    const tooLong = await submit(org, 'x'.repeat(2001));
    expect(tooLong.result.data).toMatchObject({ code: 'MESSAGE_TOO_LONG' });
    expect(tooLong.result.data.message).toMatch(/2001 characters; at most 2000/);

    const longest = await submit(org, 'y'.repeat(2000));
    expect(longest.result.type).toBe('selfservice.command.accepted.v1');

    for (const { commandId } of [empty, tooLong]) {
      await expect(backend.db.auditEntry.findFirstOrThrow({ where: { commandId } })).resolves.toMatchObject({ outcome: 'REJECTED' });
      expect(probe.matching((record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === commandId)).toHaveLength(0);
    }
    await emailOutcome(longest.commandId);
    await expect(backend.db.technicalContactMessage.count({ where: { userId: org.userId } })).resolves.toBe(1);
  });

  test('a user may send 5 messages an hour: of 6 sent at once, one is refused as RATE_LIMITED with when to retry', async () => {
    const org = await seedOrg();
    const ids = await Promise.all(
      Array.from({ length: 6 }, (_, n) =>
        sendCommand(backend.producer, backend.topics.userRequests, SUBMIT, { orgId: org.orgId, userId: org.userId, message: `app #${n}` }),
      ),
    );
    const results = await Promise.all(ids.map((id) => resultOf(id)));
    const refused = results.filter((result) => result.type === 'selfservice.command.rejected.v1');
    expect(refused).toHaveLength(1);
    expect(refused[0]!.data).toMatchObject({ code: 'RATE_LIMITED' });
    const retryAfter = Date.parse(String(refused[0]!.data.retryAfter));
    expect(retryAfter).toBeGreaterThan(Date.now() + 55 * 60 * 1000);
    expect(refused[0]!.data.message).toContain(String(refused[0]!.data.retryAfter));

    await waitForMails(org.contactEmail, 5);
    await expect(backend.db.technicalContactMessage.count({ where: { userId: org.userId } })).resolves.toBe(5);
  });

  test('with the SMTP sink down while a message is queued, the email goes out once it is back: exactly one arrives', async () => {
    const org = await seedOrg();
    let commandId = '';
    await withSmtpDown(async () => {
      const submitted = await submit(org, 'Please add Linear (sent during an SMTP outage)');
      commandId = submitted.commandId;
      // Accepted as soon as it is queued, before any email could be sent.
      expect(submitted.result.type).toBe('selfservice.command.accepted.v1');
      const messageId = submitted.result.data.messageId as string;
      const deadline = Date.now() + 20_000;
      // Wait until a send attempt has hit the closed port (the delivery is recorded but not sent).
      while (!(await backend.db.emailDelivery.findFirst({ where: { dedupeKey: { contains: messageId } } }))) {
        if (Date.now() > deadline) throw new Error('no send attempt was made during the outage');
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      await expect(backend.db.technicalContactMessage.findUniqueOrThrow({ where: { id: messageId } })).resolves.toMatchObject({ status: 'QUEUED' });
      expect(outcomes(commandId)).toHaveLength(0);
    });

    const sent = await emailOutcome(commandId, 90_000);
    expect(sent.type).toBe('selfservice.technical-contact.email-sent.v1');
    const mails = await waitForMails(org.contactEmail);
    // Give a duplicate time to show up, should one be on its way.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await expect(mailsTo(org.contactEmail)).resolves.toHaveLength(1);
    expect(`<${mails[0]!.MessageID}>`).toBe(sent.data.messageId);
    expect(outcomes(commandId)).toHaveLength(1);
  });

  test('when the contact leaves while the email waits for the SMTP sink, the email is announced as failed', async () => {
    const org = await seedOrg();
    let commandId = '';
    await withSmtpDown(async () => {
      const submitted = await submit(org, 'Please add Asana');
      commandId = submitted.commandId;
      expect(submitted.result.type).toBe('selfservice.command.accepted.v1');
      await accepted(backend.topics.directory, 'selfservice.directory.user-upserted.v1', {
        orgId: org.orgId,
        userId: org.contactId,
        email: org.contactEmail,
        status: 'DEACTIVATED',
        adminRoles: [],
      });
      const failed = await emailOutcome(commandId, 60_000);
      expect(failed.type).toBe('selfservice.technical-contact.email-failed.v1');
      expect(failed.data).toMatchObject({ orgId: org.orgId, requesterId: org.userId, contactEmail: org.contactEmail });
      expect(String(failed.data.error)).toMatch(/^TECHNICAL_CONTACT_INACTIVE/);
    });
    const messageId = (await backend.db.technicalContactMessage.findFirstOrThrow({ where: { userId: org.userId } })).id;
    await expect(backend.db.technicalContactMessage.findUniqueOrThrow({ where: { id: messageId } })).resolves.toMatchObject({ status: 'FAILED' });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await expect(mailsTo(org.contactEmail)).resolves.toHaveLength(0);
  });

  test('the same message delivered twice has one effect: one result, one email, one announcement', async () => {
    const org = await seedOrg();
    const id = randomUUID();
    const data = { orgId: org.orgId, userId: org.userId, message: 'Please add Zoom' };
    await sendCommand(backend.producer, backend.topics.userRequests, SUBMIT, data, { id });
    await sendCommand(backend.producer, backend.topics.userRequests, SUBMIT, data, { id });
    const marker = await submit(org, 'a later message on the same partition');
    await emailOutcome(marker.commandId);
    await emailOutcome(id);

    expect(probe.matching(resultFor(id))).toHaveLength(1);
    expect(outcomes(id)).toHaveLength(1);
    await expect(backend.db.processedCommand.count({ where: { commandId: id } })).resolves.toBe(1);
    const mails = await waitForMails(org.contactEmail, 2);
    const texts = await Promise.all(mails.map(async (mail) => (await mailDetail(mail.ID)).Text));
    expect(texts.filter((text) => text.includes('Please add Zoom'))).toHaveLength(1);
    expect(mails).toHaveLength(2);
    await expect(backend.db.technicalContactMessage.count({ where: { userId: org.userId } })).resolves.toBe(2);
  });
});
