import { randomUUID } from 'node:crypto';
import { DeadLetterHeaders } from '../../events/dead-letters';
import { listAuditTrail } from '../../activities/read-models';
import { startTestBackend, type TestBackend } from '../support/backend';
import { CommandClient, expectRejected, seedOrg, type SeededOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe, type SeenRecord } from '../support/kafka-probe';
import { runCli } from '../support/cli';
import { uniqueId } from '../support/test-config';

/**
 * The org's Self Service settings (spec section 1) and its Technical Contact: admin commands on
 * selfservice.admin-commands.v1, answered on the command-results topic, every accepted change versioned
 * and announced on selfservice.settings.v1, every attempt (accepted or not) in the org's audit trail.
 */
describe('org Self Service settings and the Technical Contact', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults, backend.topics.settings, backend.topics.deadLetters]);
    commands = new CommandClient(backend, probe);
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  const UPDATE = 'selfservice.settings.update-requested.v1';
  const SET_CONTACT = 'selfservice.technical-contact.set-requested.v1';
  const CHANGED = 'selfservice.settings.changed.v1';
  const ACCEPTED = 'selfservice.command.accepted.v1';
  const SYSTEM_ACTOR = 'system:directory-sync';

  const ALL_OFF = {
    allowOrgManagedApps: false,
    allowPersonalApps: false,
    allowTechnicalContactRequests: false,
    allowMoveToOktaPersonal: false,
    technicalContactUserId: null,
  };

  type Changes = Partial<Record<'allowOrgManagedApps' | 'allowPersonalApps' | 'allowTechnicalContactRequests' | 'allowMoveToOktaPersonal', boolean>>;

  /** An org with every switch off (version 0), its super admin, and users with the given admin roles. */
  function org(options: { personalAppMigration?: boolean } = {}): Promise<SeededOrg> {
    return seedOrg(commands, {
      allowOrgManagedApps: false,
      personalAppMigration: options.personalAppMigration,
      users: ['secondAdmin', 'appAdmin', 'readOnly', 'enduser', 'contact', 'other'],
      adminRoles: { secondAdmin: ['SUPER_ADMIN'], appAdmin: ['APP_ADMIN'], readOnly: ['READ_ONLY_ADMIN'] },
    });
  }

  function update(target: SeededOrg, actorId: string, changes: Changes, expectedVersion?: number): Promise<SeenRecord> {
    return commands.send('adminCommands', UPDATE, {
      orgId: target.orgId,
      actorId,
      changes,
      ...(expectedVersion === undefined ? {} : { expectedVersion }),
    });
  }

  function setContact(target: SeededOrg, actorId: string, contact: string): Promise<SeenRecord> {
    return commands.send('adminCommands', SET_CONTACT, { orgId: target.orgId, actorId, contact });
  }

  function setStatus(target: SeededOrg, name: string, status: string): Promise<SeenRecord> {
    return commands.directory('user-upserted', { orgId: target.orgId, userId: target.user(name), email: target.email(name), displayName: name, status, adminRoles: [] });
  }

  function expectAccepted(result: SeenRecord): void {
    expect({ type: result.type, code: result.data.code, message: result.data.message }).toEqual({ type: ACCEPTED, code: undefined, message: undefined });
  }


  async function settingsOf(target: SeededOrg) {
    const row = await backend.db.orgSettings.findUniqueOrThrow({ where: { orgId: target.orgId } });
    return {
      allowOrgManagedApps: row.allowOrgManagedApps,
      allowPersonalApps: row.allowPersonalApps,
      allowTechnicalContactRequests: row.allowTechnicalContactRequests,
      allowMoveToOktaPersonal: row.allowMoveToOktaPersonal,
      technicalContactUserId: row.technicalContactUserId,
      version: row.version,
    };
  }

  function settingsEvents(target: SeededOrg): SeenRecord[] {
    return probe.matching((record) => record.topic === backend.topics.settings && record.data.orgId === target.orgId);
  }

  function settingsEvent(target: SeededOrg, version: number): Promise<SeenRecord> {
    return probe.waitFor(
      (record) => record.topic === backend.topics.settings && record.data.orgId === target.orgId && record.data.version === version,
      `the settings event of version ${version}`,
    );
  }

  /**
   * A last change by the super admin, waited for on the settings topic. Events of one org share a key,
   * so once it is seen every earlier announcement of the org has been seen too. Returns its version.
   */
  async function flushSettings(target: SeededOrg): Promise<number> {
    const current = await settingsOf(target);
    const result = await update(target, target.superAdminId, { allowPersonalApps: !current.allowPersonalApps });
    expectAccepted(result);
    await settingsEvent(target, current.version + 1);
    return current.version + 1;
  }

  async function auditOf(commandId: unknown) {
    return backend.db.auditEntry.findMany({ where: { commandId: String(commandId) }, orderBy: { id: 'asc' } });
  }

  describe('the four switches', () => {
    test('a super admin changes switches: each change is persisted with its version and announced once with actor, version, before, after and changed keys', async () => {
      const target = await org();
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, version: 0 });

      const first = await update(target, target.superAdminId, { allowOrgManagedApps: true, allowPersonalApps: true }, 0);
      expectAccepted(first);
      expect(first.data).toMatchObject({ commandType: UPDATE, orgId: target.orgId, version: 1, changed: ['allowOrgManagedApps', 'allowPersonalApps'] });
      const second = await update(target, target.user('secondAdmin'), { allowPersonalApps: false }, 1);
      expectAccepted(second);
      expect(second.data).toMatchObject({ version: 2, changed: ['allowPersonalApps'] });

      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, allowOrgManagedApps: true, version: 2 });

      const v1 = await settingsEvent(target, 1);
      expect(v1.type).toBe(CHANGED);
      expect(v1.key).toBe(target.orgId);
      expect(v1.id).toBe(`${String(first.data.commandId)}:settings-changed`);
      expect(v1.data).toEqual({
        orgId: target.orgId,
        actorId: target.superAdminId,
        version: 1,
        before: ALL_OFF,
        after: { ...ALL_OFF, allowOrgManagedApps: true, allowPersonalApps: true },
        changed: ['allowOrgManagedApps', 'allowPersonalApps'],
      });
      const v2 = await settingsEvent(target, 2);
      expect(v2.data).toEqual({
        orgId: target.orgId,
        actorId: target.user('secondAdmin'),
        version: 2,
        before: { ...ALL_OFF, allowOrgManagedApps: true, allowPersonalApps: true },
        after: { ...ALL_OFF, allowOrgManagedApps: true },
        changed: ['allowPersonalApps'],
      });

      const last = await flushSettings(target);
      const events = settingsEvents(target);
      expect(events.map((event) => event.data.version)).toEqual([1, 2, last]);
      expect(new Set(events.map((event) => event.id)).size).toBe(events.length);

      const [audit] = await auditOf(first.data.commandId);
      expect(audit).toMatchObject({
        orgId: target.orgId,
        actorId: target.superAdminId,
        action: 'settings.update',
        outcome: 'ACCEPTED',
        code: null,
        before: ALL_OFF,
        after: { ...ALL_OFF, allowOrgManagedApps: true, allowPersonalApps: true },
      });
    });

    const outsiders: [string, (target: SeededOrg, stranger: SeededOrg) => string, RegExp][] = [
      ['an APP_ADMIN', (target) => target.user('appAdmin'), /has APP_ADMIN; only a SUPER_ADMIN may do this/],
      ['a READ_ONLY_ADMIN', (target) => target.user('readOnly'), /has READ_ONLY_ADMIN; only a SUPER_ADMIN may do this/],
      ['a user without an admin role', (target) => target.user('enduser'), /has no admin role; only a SUPER_ADMIN may do this/],
      ['an unknown actor', () => uniqueId('nobody'), /is not a user of org/],
      ['a super admin of another org', (_target, stranger) => stranger.superAdminId, /belongs to another org/],
    ];

    test.each(outsiders)('%s changing a switch is rejected NOT_AUTHORIZED, nothing changes, and the attempt is audited', async (_who, actorOf, message) => {
      const target = await org();
      const stranger = await seedOrg(commands);
      const actorId = actorOf(target, stranger);

      const result = await update(target, actorId, { allowOrgManagedApps: true }, 0);
      expectRejected(result, 'NOT_AUTHORIZED', message);
      expect(result.data).toMatchObject({ commandType: UPDATE, orgId: target.orgId });
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, version: 0 });

      await expect(auditOf(result.data.commandId)).resolves.toEqual([
        expect.objectContaining({
          orgId: target.orgId,
          actorId,
          action: 'settings.update',
          outcome: 'REJECTED',
          code: 'NOT_AUTHORIZED',
          message: result.data.message,
        }),
      ]);
      await flushSettings(target);
      expect(settingsEvents(target).map((event) => event.data.actorId)).toEqual([target.superAdminId]);
    });

    test('a super admin who has been suspended is rejected NOT_AUTHORIZED', async () => {
      const target = await org();
      await commands.directory('user-upserted', {
        orgId: target.orgId,
        userId: target.user('secondAdmin'),
        email: target.email('secondAdmin'),
        status: 'SUSPENDED',
        adminRoles: ['SUPER_ADMIN'],
      });
      const result = await update(target, target.user('secondAdmin'), { allowOrgManagedApps: true });
      expectRejected(result, 'NOT_AUTHORIZED', /is SUSPENDED; only an active SUPER_ADMIN may do this/);
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, version: 0 });
    });

    test('a change based on a stale expectedVersion is rejected STALE_VERSION and the newer change is kept', async () => {
      const target = await org();
      // Two super admins load the settings at version 0; the first saves.
      expectAccepted(await update(target, target.superAdminId, { allowOrgManagedApps: true }, 0));

      const stale = await update(target, target.user('secondAdmin'), { allowOrgManagedApps: false, allowPersonalApps: true }, 0);
      expectRejected(stale, 'STALE_VERSION', /are at version 1, but the change was based on version 0; reload and retry/);
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, allowOrgManagedApps: true, version: 1 });
      await expect(auditOf(stale.data.commandId)).resolves.toEqual([
        expect.objectContaining({ actorId: target.user('secondAdmin'), outcome: 'REJECTED', code: 'STALE_VERSION', before: { ...ALL_OFF, allowOrgManagedApps: true } }),
      ]);
      const ahead = await update(target, target.user('secondAdmin'), { allowPersonalApps: true }, 7);
      expectRejected(ahead, 'STALE_VERSION');

      // Reloaded, the second admin's change applies on top of the first.
      const retried = await update(target, target.user('secondAdmin'), { allowPersonalApps: true }, 1);
      expectAccepted(retried);
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, allowOrgManagedApps: true, allowPersonalApps: true, version: 2 });
      await settingsEvent(target, 2);
      expect(settingsEvents(target).map((event) => event.data.version)).toEqual([1, 2]);
    });

    test('a change that changes nothing is accepted and audited, but neither versioned nor announced', async () => {
      const target = await org();
      expectAccepted(await update(target, target.superAdminId, { allowOrgManagedApps: true }));

      const noop = await update(target, target.superAdminId, { allowOrgManagedApps: true, allowPersonalApps: false }, 1);
      expectAccepted(noop);
      expect(noop.data).toMatchObject({ version: 1, changed: [] });
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, allowOrgManagedApps: true, version: 1 });
      await expect(auditOf(noop.data.commandId)).resolves.toEqual([expect.objectContaining({ outcome: 'ACCEPTED', action: 'settings.update' })]);

      const last = await flushSettings(target);
      expect(last).toBe(2);
      expect(settingsEvents(target).map((event) => event.data.version)).toEqual([1, 2]);
    });

    test('the Technical Contact switch cannot be turned on without a Technical Contact', async () => {
      const target = await org();
      const result = await update(target, target.superAdminId, { allowOrgManagedApps: true, allowTechnicalContactRequests: true });
      expectRejected(result, 'TECHNICAL_CONTACT_REQUIRED', 'set a Technical Contact (an active user of the org with a valid email)');
      // The whole change is refused, including the part that was allowed.
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, version: 0 });
      await expect(auditOf(result.data.commandId)).resolves.toEqual([expect.objectContaining({ outcome: 'REJECTED', code: 'TECHNICAL_CONTACT_REQUIRED' })]);
    });

    test('the Technical Contact switch cannot be turned on when the contact has been deactivated', async () => {
      const target = await org();
      expectAccepted(await setContact(target, target.superAdminId, target.user('contact')));
      await setStatus(target, 'contact', 'DEACTIVATED');

      const result = await update(target, target.superAdminId, { allowTechnicalContactRequests: true });
      expectRejected(result, 'TECHNICAL_CONTACT_INACTIVE', `the Technical Contact ${target.user('contact')} is DEACTIVATED; choose an active user`);
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, technicalContactUserId: target.user('contact'), version: 1 });
    });

    test('the Technical Contact switch is turned on with a valid, active contact', async () => {
      const target = await org();
      expectAccepted(await setContact(target, target.superAdminId, target.user('contact')));

      const result = await update(target, target.superAdminId, { allowTechnicalContactRequests: true }, 1);
      expectAccepted(result);
      expect(result.data).toMatchObject({ version: 2, changed: ['allowTechnicalContactRequests'] });
      await expect(settingsOf(target)).resolves.toEqual({
        ...ALL_OFF,
        allowTechnicalContactRequests: true,
        technicalContactUserId: target.user('contact'),
        version: 2,
      });
      const event = await settingsEvent(target, 2);
      expect(event.data).toMatchObject({ actorId: target.superAdminId, changed: ['allowTechnicalContactRequests'] });
    });

    test('the Okta Personal switch needs the PERSONAL_APP_MIGRATION feature; once support enables it, the switch turns on', async () => {
      const target = await org({ personalAppMigration: false });
      const refused = await update(target, target.superAdminId, { allowMoveToOktaPersonal: true });
      expectRejected(refused, 'FEATURE_NOT_ENABLED', /needs the PERSONAL_APP_MIGRATION feature, which is not enabled for org .*; ask support to enable it/);
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, version: 0 });
      await expect(auditOf(refused.data.commandId)).resolves.toEqual([expect.objectContaining({ outcome: 'REJECTED', code: 'FEATURE_NOT_ENABLED' })]);

      // A support operator enables the feature through the directory sync.
      await commands.directory('org-upserted', {
        orgId: target.orgId,
        name: `Org ${target.orgId}`,
        emailDomains: [target.domain],
        features: { PERSONAL_APP_MIGRATION: true },
      });
      const allowed = await update(target, target.superAdminId, { allowMoveToOktaPersonal: true });
      expectAccepted(allowed);
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, allowMoveToOktaPersonal: true, version: 1 });
      // Turning it off never needs the feature.
      await commands.directory('org-upserted', { orgId: target.orgId, name: `Org ${target.orgId}`, emailDomains: [target.domain] });
      expectAccepted(await update(target, target.superAdminId, { allowMoveToOktaPersonal: false }));
    });
  });

  describe('the Technical Contact', () => {
    test('a super admin sets the contact by user id, then by email; each change is versioned and announced, setting the same contact again is a no-op', async () => {
      const target = await org();
      const byId = await setContact(target, target.superAdminId, target.user('contact'));
      expectAccepted(byId);
      expect(byId.data).toMatchObject({ commandType: SET_CONTACT, version: 1, technicalContactUserId: target.user('contact'), changed: ['technicalContactUserId'] });

      const byEmail = await setContact(target, target.superAdminId, target.email('other').toUpperCase());
      expectAccepted(byEmail);
      expect(byEmail.data).toMatchObject({ version: 2, technicalContactUserId: target.user('other') });
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, technicalContactUserId: target.user('other'), version: 2 });

      const again = await setContact(target, target.superAdminId, target.user('other'));
      expectAccepted(again);
      expect(again.data).toMatchObject({ version: 2, changed: [] });

      const v2 = await settingsEvent(target, 2);
      expect(v2.data).toEqual({
        orgId: target.orgId,
        actorId: target.superAdminId,
        version: 2,
        before: { ...ALL_OFF, technicalContactUserId: target.user('contact') },
        after: { ...ALL_OFF, technicalContactUserId: target.user('other') },
        changed: ['technicalContactUserId'],
      });
      const last = await flushSettings(target);
      expect(settingsEvents(target).map((event) => event.data.version)).toEqual([1, 2, last]);
      await expect(auditOf(byEmail.data.commandId)).resolves.toEqual([
        expect.objectContaining({ action: 'technical-contact.set', subject: target.email('other').toUpperCase(), outcome: 'ACCEPTED' }),
      ]);
    });

    test('an unknown contact, a contact of another org, or an inactive contact is rejected and the contact stays as it was', async () => {
      const target = await org();
      const stranger = await seedOrg(commands, { users: ['someone'] });
      expectAccepted(await setContact(target, target.superAdminId, target.user('contact')));
      await setStatus(target, 'enduser', 'SUSPENDED');
      await setStatus(target, 'other', 'DEACTIVATED');

      const cases: [string, string][] = [
        [uniqueId('nobody'), 'TECHNICAL_CONTACT_NOT_FOUND'],
        [`${uniqueId('nobody')}@${target.domain}`, 'TECHNICAL_CONTACT_NOT_FOUND'],
        [stranger.user('someone'), 'TECHNICAL_CONTACT_NOT_FOUND'],
        [stranger.email('someone'), 'TECHNICAL_CONTACT_NOT_FOUND'],
        [target.user('enduser'), 'TECHNICAL_CONTACT_INACTIVE'],
        [target.email('other'), 'TECHNICAL_CONTACT_INACTIVE'],
      ];
      for (const [contact, code] of cases) {
        const result = await setContact(target, target.superAdminId, contact);
        expectRejected(result, code, code === 'TECHNICAL_CONTACT_INACTIVE' ? /is (SUSPENDED|DEACTIVATED); choose an active user/ : /must be an existing user of org/);
        await expect(auditOf(result.data.commandId)).resolves.toEqual([
          expect.objectContaining({ orgId: target.orgId, action: 'technical-contact.set', subject: contact, outcome: 'REJECTED', code }),
        ]);
      }
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, technicalContactUserId: target.user('contact'), version: 1 });
    });

    test('only a super admin may set the Technical Contact', async () => {
      const target = await org();
      for (const actor of ['appAdmin', 'readOnly', 'enduser']) {
        const result = await setContact(target, target.user(actor), target.user('contact'));
        expectRejected(result, 'NOT_AUTHORIZED');
        await expect(auditOf(result.data.commandId)).resolves.toEqual([
          expect.objectContaining({ actorId: target.user(actor), action: 'technical-contact.set', outcome: 'REJECTED', code: 'NOT_AUTHORIZED' }),
        ]);
      }
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, version: 0 });
    });

    test.each(['DEACTIVATED', 'SUSPENDED'])(
      'a Technical Contact who is %s later turns the email switch off, announced with the system as actor and the reason',
      async (status) => {
        const target = await org();
        expectAccepted(await setContact(target, target.superAdminId, target.user('contact')));
        expectAccepted(await update(target, target.superAdminId, { allowOrgManagedApps: true, allowTechnicalContactRequests: true }, 1));

        const directory = await setStatus(target, 'contact', status);
        const event = await settingsEvent(target, 3);
        const before = { ...ALL_OFF, allowOrgManagedApps: true, allowTechnicalContactRequests: true, technicalContactUserId: target.user('contact') };
        expect(event.type).toBe(CHANGED);
        expect(event.id).toBe(`${String(directory.data.commandId)}:settings-changed`);
        expect(event.data).toEqual({
          orgId: target.orgId,
          actorId: SYSTEM_ACTOR,
          version: 3,
          before,
          after: { ...before, allowTechnicalContactRequests: false },
          changed: ['allowTechnicalContactRequests'],
          reason: expect.stringContaining(`TECHNICAL_CONTACT_${status}: the Technical Contact ${target.user('contact')} is ${status}`),
        });
        // The contact stays recorded, so the admins see whom to replace.
        await expect(settingsOf(target)).resolves.toEqual({ ...before, allowTechnicalContactRequests: false, version: 3 });
        await expect(auditOf(directory.data.commandId)).resolves.toEqual([
          expect.objectContaining({ actorId: SYSTEM_ACTOR, action: 'settings.technical-contact-left', subject: target.user('contact'), outcome: 'ACCEPTED' }),
        ]);

        // The switch cannot come back on until there is an active contact again.
        expectRejected(await update(target, target.superAdminId, { allowTechnicalContactRequests: true }), 'TECHNICAL_CONTACT_INACTIVE');
        expectAccepted(await setContact(target, target.superAdminId, target.user('other')));
        expectAccepted(await update(target, target.superAdminId, { allowTechnicalContactRequests: true }, 4));
        await settingsEvent(target, 5);
        expect(settingsEvents(target).map((record) => record.data.version)).toEqual([1, 2, 3, 4, 5]);
      },
    );
  });

  describe('the audit trail', () => {
    test('every admin action of an org, accepted or rejected, is listed newest first by the read model and the audit CLI, and cannot be altered', async () => {
      const target = await org();
      const otherOrg = await org();
      const results = [
        await update(target, target.superAdminId, { allowOrgManagedApps: true }),
        await update(target, target.user('appAdmin'), { allowPersonalApps: true }),
        await setContact(target, target.superAdminId, target.user('contact')),
        await update(target, target.superAdminId, { allowPersonalApps: true }, 0),
      ];
      expectAccepted(await update(otherOrg, otherOrg.superAdminId, { allowPersonalApps: true }));
      const commandIds = results.map((result) => String(result.data.commandId));

      const trail = await listAuditTrail(backend.db, target.orgId);
      expect(trail.map((entry) => entry.commandId)).toEqual([...commandIds].reverse());
      expect(trail.map((entry) => [entry.actorId, entry.action, entry.outcome, entry.code])).toEqual([
        [target.superAdminId, 'settings.update', 'REJECTED', 'STALE_VERSION'],
        [target.superAdminId, 'technical-contact.set', 'ACCEPTED', null],
        [target.user('appAdmin'), 'settings.update', 'REJECTED', 'NOT_AUTHORIZED'],
        [target.superAdminId, 'settings.update', 'ACCEPTED', null],
      ]);
      const oldest = trail[3]!;
      expect(oldest.before).toEqual(ALL_OFF);
      expect(oldest.after).toEqual({ ...ALL_OFF, allowOrgManagedApps: true });
      expect(Date.parse(oldest.at)).toBeLessThanOrEqual(Date.parse(trail[0]!.at));
      expect(Date.now() - Date.parse(oldest.at)).toBeLessThan(5 * 60_000);
      expect(trail[0]!.message).toMatch(/STALE|version/);
      await expect(listAuditTrail(backend.db, target.orgId, 2)).resolves.toHaveLength(2);

      const run = await runCli(backend, 'audit', target.orgId);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const printed = run.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { commandId: string; actorId: string; outcome: string; code: string | null });
      expect(printed).toEqual(JSON.parse(JSON.stringify(trail)));
      const limited = await runCli(backend, 'audit', target.orgId, '1');
      expect(limited.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { commandId: string }).commandId)).toEqual([commandIds[3]]);

      // Append-only: an entry can be neither changed nor removed.
      await expect(backend.db.auditEntry.updateMany({ where: { commandId: commandIds[0] }, data: { actorId: 'tampered' } })).rejects.toThrow();
      await expect(backend.db.auditEntry.deleteMany({ where: { commandId: commandIds[0] } })).rejects.toThrow();
      await expect(auditOf(commandIds[0])).resolves.toEqual([expect.objectContaining({ actorId: target.superAdminId })]);
    });
  });

  describe('delivery', () => {
    test('a malformed or invalid admin command goes to the dead-letter topic with a rejected result, and the consumer keeps running', async () => {
      const target = await org();
      const garbledId = randomUUID();
      await backend.producer.send({
        topic: backend.topics.adminCommands,
        messages: [
          {
            key: target.orgId,
            value: Buffer.from('{"orgId": "'),
            headers: { ce_specversion: '1.0', ce_id: garbledId, ce_source: 'urn:test', ce_type: UPDATE },
          },
        ],
      });
      const garbled = await probe.waitFor(resultFor(garbledId), 'the rejection of the garbled command');
      expectRejected(garbled, 'MALFORMED_EVENT', /the body is not valid JSON/);

      const unknownSwitch = await commands.send('adminCommands', UPDATE, { orgId: target.orgId, actorId: target.superAdminId, changes: { allowEverything: true } });
      expectRejected(unknownSwitch, 'INVALID_COMMAND', /data\.changes: .*allowEverything/);
      const noChanges = await commands.send('adminCommands', UPDATE, { orgId: target.orgId, actorId: target.superAdminId, changes: {} });
      expectRejected(noChanges, 'INVALID_COMMAND', 'changes must name at least one setting');
      const notBoolean = await commands.send('adminCommands', UPDATE, { orgId: target.orgId, actorId: target.superAdminId, changes: { allowPersonalApps: 'yes' } });
      expectRejected(notBoolean, 'INVALID_COMMAND', /data\.changes\.allowPersonalApps/);
      const unknownType = await commands.send('adminCommands', 'selfservice.settings.delete-everything.v1', { orgId: target.orgId });
      expectRejected(unknownType, 'UNKNOWN_COMMAND_TYPE');

      for (const [commandId, code] of [
        [garbledId, 'MALFORMED_EVENT'],
        [unknownSwitch.data.commandId, 'INVALID_COMMAND'],
        [noChanges.data.commandId, 'INVALID_COMMAND'],
        [notBoolean.data.commandId, 'INVALID_COMMAND'],
        [unknownType.data.commandId, 'UNKNOWN_COMMAND_TYPE'],
      ] as const) {
        const dead = await probe.waitFor(
          (record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === commandId,
          `the dead letter of ${String(commandId)}`,
        );
        expect(dead.headers[DeadLetterHeaders.error]).toMatch(new RegExp(`^${code}: `));
        expect(dead.headers[DeadLetterHeaders.sourceTopic]).toBe(backend.topics.adminCommands);
        expect(dead.key).toBe(target.orgId);
      }
      expect(dead(garbledId)?.value?.toString()).toBe('{"orgId": "');
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, version: 0 });

      // The consumer is still running: the next valid command is applied.
      expectAccepted(await update(target, target.superAdminId, { allowOrgManagedApps: true }, 0));
      await expect(settingsOf(target)).resolves.toMatchObject({ allowOrgManagedApps: true, version: 1 });
    });

    test('the same ce_id delivered twice changes the settings once, with one result, one announcement and one audit entry', async () => {
      const target = await org();
      const id = randomUUID();
      const data = { orgId: target.orgId, actorId: target.superAdminId, changes: { allowOrgManagedApps: true } };
      await sendCommand(backend.producer, backend.topics.adminCommands, UPDATE, data, { id });
      await sendCommand(backend.producer, backend.topics.adminCommands, UPDATE, data, { id });
      await probe.waitFor(resultFor(id), 'the result of the first copy');
      // Sent after both copies with the same key: once it is applied, both copies have been consumed.
      const last = await flushSettings(target);

      expect(probe.matching(resultFor(id))).toHaveLength(1);
      expect(last).toBe(2);
      expect(settingsEvents(target).map((event) => [event.id, event.data.version])).toEqual([
        [`${id}:settings-changed`, 1],
        [expect.any(String), 2],
      ]);
      await expect(settingsOf(target)).resolves.toEqual({ ...ALL_OFF, allowOrgManagedApps: true, allowPersonalApps: true, version: 2 });
      await expect(auditOf(id)).resolves.toHaveLength(1);
      await expect(backend.db.processedCommand.count({ where: { commandId: id } })).resolves.toBe(1);
    });
  });

  function dead(commandId: string): SeenRecord | undefined {
    return probe.matching((record) => record.topic === backend.topics.deadLetters && record.headers.ce_id === commandId)[0];
  }

});
