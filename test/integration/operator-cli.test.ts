import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startTestBackend, type TestBackend } from '../support/backend';
import { runCli, type CliRun } from '../support/cli';
import { CommandClient, seedOrg, type SeededOrg } from '../support/commands';
import { resultFor, TopicProbe } from '../support/kafka-probe';
import { uniqueId } from '../support/test-config';

/**
 * The operator CLI against the real backend (worker, ingress and relay in-process; the CLI as its own
 * process): requests created through the contract are found in the read model, their timeline read
 * back, acted on as a named admin through the command catalog (authorized, audited, answered on Kafka),
 * and the audit trail exported with filters.
 */
describe('operator CLI', () => {
  let backend: TestBackend;
  let probe: TopicProbe;
  let commands: CommandClient;
  const workDir = mkdtempSync(path.join(tmpdir(), 'operator-cli-'));

  let org: SeededOrg;
  let appId: string;
  let grantedAppId: string;
  let scopedAdminId: string;
  /** Pending, waiting on `approver`, made by `requester`. */
  let requestA: string;
  /** Pending, waiting on `approver`, made by `other`. */
  let requestB: string;
  /** Granted at once (an app without approval), made by `requester`. */
  let requestC: string;

  const REQUESTED = 'selfservice.app.requested.v1';

  beforeAll(async () => {
    backend = await startTestBackend();
    probe = await TopicProbe.start(backend.kafka, [backend.topics.commandResults]);
    commands = new CommandClient(backend, probe);

    org = await seedOrg(commands, { users: ['requester', 'other', 'approver'] });
    appId = uniqueId('app');
    grantedAppId = uniqueId('app');
    scopedAdminId = uniqueId('scoped-admin');
    await commands.directory('user-upserted', {
      orgId: org.orgId,
      userId: scopedAdminId,
      email: `${scopedAdminId}@${org.domain}`,
      status: 'ACTIVE',
      adminRoles: ['APP_ADMIN'],
      adminAppIds: [grantedAppId],
    });
    for (const [id, approvalRequired] of [[appId, true], [grantedAppId, false]] as const) {
      await commands.directory('org-app-upserted', { orgId: org.orgId, appId: id, label: `Label ${id}`, signOnMode: 'SAML', status: 'ACTIVE' });
      await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
        orgId: org.orgId,
        actorId: org.superAdminId,
        appId: id,
        config: {
          requestsEnabled: true,
          approvalRequired,
          ...(approvalRequired ? { approverSteps: [{ type: 'USER', id: org.user('approver'), timeout: { days: 7 } }] } : {}),
        },
      });
    }
    const request = async (user: string, app: string) =>
      (await commands.accepted('userRequests', REQUESTED, { orgId: org.orgId, userId: org.user(user), appId: app, comment: 'for the offsite' })).data.requestId as string;
    requestA = await request('requester', appId);
    requestB = await request('other', appId);
    requestC = await request('requester', grantedAppId);
    await until(async () => (await backend.db.appRequest.findUniqueOrThrow({ where: { id: requestC } })).status === 'APPROVED', 'the auto-grant');
  });

  afterAll(async () => {
    await probe?.stop();
    await backend?.stop();
  });

  async function until(check: () => Promise<boolean>, what: string): Promise<void> {
    for (let attempt = 0; attempt < 300; attempt += 1) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const cli = (...args: string[]) => runCli(backend, ...args);
  const jsonLines = <T = Record<string, unknown>>(run: CliRun): T[] =>
    run.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as T);
  const commandIdIn = (run: CliRun): string => {
    const match = /\(command (cli-[0-9a-f-]+)\)/.exec(run.stdout);
    if (!match) throw new Error(`no command id in ${JSON.stringify(run.stdout)}`);
    return match[1]!;
  };

  describe('requests find', () => {
    test('filters by org, requester, approver, app and status, as a table or JSON lines', async () => {
      const pending = await cli('requests', 'find', '--org', org.orgId, '--status', 'PENDING');
      expect(pending.stderr).toBe('');
      expect(pending.code).toBe(0);
      const [header, ...rows] = pending.stdout.trim().split('\n');
      expect(header).toMatch(/^REQUEST\s+ORG\s+APP\s+REQUESTER\s+STATUS\s+STEP\s+APPROVERS\s+CREATED$/);
      // Newest first.
      expect(rows.map((row) => row.split(/\s+/)[0])).toEqual([requestB, requestA]);
      expect(rows[1]).toContain(`${appId} (Label ${appId})`);
      expect(rows[1]).toMatch(new RegExp(`PENDING\\s+1\\s+${org.user('approver')}\\s`));

      const byApprover = jsonLines<{ requestId: string; currentApproverIds: string[]; status: string }>(await cli('requests', 'find', '--approver', org.user('approver'), '--json'));
      expect(byApprover.map((request) => request.requestId)).toEqual([requestB, requestA]);
      expect(byApprover[0]).toMatchObject({ status: 'PENDING', currentApproverIds: [org.user('approver')] });

      const byRequester = jsonLines<{ requestId: string }>(await cli('requests', 'find', '--org', org.orgId, '--requester', org.user('requester'), '--json'));
      expect(byRequester.map((request) => request.requestId)).toEqual([requestC, requestA]);

      const byApp = jsonLines<{ requestId: string; status: string }>(await cli('requests', 'find', '--app', grantedAppId, '--status', 'approved', '--json'));
      expect(byApp).toEqual([expect.objectContaining({ requestId: requestC, status: 'APPROVED' })]);

      const limited = jsonLines(await cli('requests', 'find', '--org', org.orgId, '--limit', '1', '--json'));
      expect(limited).toHaveLength(1);

      const none = await cli('requests', 'find', '--org', org.orgId, '--status', 'EXPIRED');
      expect(none).toMatchObject({ code: 0, stdout: 'no requests match\n' });
    });

    test('a wrong status or limit is a usage error naming it', async () => {
      const status = await cli('requests', 'find', '--status', 'LOST');
      expect(status.code).toBe(2);
      expect(status.stderr).toContain('--status must be one of PENDING, APPROVED, DENIED, EXPIRED, CANCELLED, DELETED, not "LOST"');
      const limit = await cli('requests', 'find', '--limit', '0');
      expect(limit.code).toBe(2);
      expect(limit.stderr).toContain('--limit must be a whole number from 1 to 10000');
    });
  });

  describe('acting on a request as a named admin', () => {
    test('goes through the command catalog: authorized, audited, recorded and published like a Kafka command', async () => {
      // Not an admin: refused by the request's own authorization, and the attempt is audited.
      const notAdmin = await cli('requests', 'resend', requestA, '--as', org.user('other'));
      expect(notAdmin.code).toBe(1);
      expect(notAdmin.stdout).toMatch(new RegExp(`^REJECTED resend ${requestA} by ${org.user('other')}: NOT_AUTHORIZED: .+ \\(command cli-`));
      // An app admin of another app only.
      const scoped = await cli('requests', 'override', requestA, '--as', scopedAdminId);
      expect(scoped.code).toBe(1);
      expect(scoped.stdout).toMatch(new RegExp(`^REJECTED override ${requestA} by ${scopedAdminId}: NOT_AUTHORIZED: .*${appId}`));
      await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestA } })).resolves.toMatchObject({ status: 'PENDING' });

      const resend = await cli('requests', 'resend', requestA, '--as', org.superAdminId);
      expect(resend.stderr).toBe('');
      expect(resend.code).toBe(0);
      expect(resend.stdout).toMatch(new RegExp(`^ACCEPTED resend ${requestA} by ${org.superAdminId} \\(command cli-[0-9a-f-]+\\)\\n$`));
      // Its result goes out on the results topic like any command's.
      const published = await probe.waitFor(resultFor(commandIdIn(resend)), 'the result of the CLI resend');
      expect(published.type).toBe('selfservice.command.accepted.v1');
      expect(published.data).toMatchObject({ commandType: 'selfservice.app-request.admin-action.v1', requestId: requestA, action: 'RESEND' });
      const refusedResult = await probe.waitFor(resultFor(commandIdIn(notAdmin)), 'the result of the refused resend');
      expect(refusedResult.data).toMatchObject({ code: 'NOT_AUTHORIZED' });

      const override = await cli('requests', 'override', requestA, '--as', org.superAdminId, '--reason', 'urgent: quarter close', '--json');
      expect(override.code).toBe(0);
      expect(JSON.parse(override.stdout)).toMatchObject({ outcome: 'ACCEPTED', details: { requestId: requestA, action: 'OVERRIDE', status: 'APPROVED' } });
      await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestA } })).resolves.toMatchObject({ status: 'APPROVED' });
      await expect(backend.db.appAssignment.count({ where: { userId: org.user('requester'), appId } })).resolves.toBe(1);

      const commandId = uniqueId('cli-delete');
      const deleted = await cli('requests', 'delete', requestB, '--as', org.superAdminId, '--reason', 'duplicate', '--command-id', commandId);
      expect(deleted.code).toBe(0);
      expect(deleted.stdout).toBe(`ACCEPTED delete ${requestB} by ${org.superAdminId}: request DELETED (command ${commandId})\n`);
      await expect(backend.db.appRequest.findUniqueOrThrow({ where: { id: requestB } })).resolves.toMatchObject({ status: 'DELETED', closedReason: 'duplicate' });
      // The same command again: the same result, nothing done twice.
      const repeated = await cli('requests', 'delete', requestB, '--as', org.superAdminId, '--reason', 'duplicate', '--command-id', commandId);
      expect(repeated.stdout).toBe(deleted.stdout);
      await expect(backend.db.processedCommand.count({ where: { commandId } })).resolves.toBe(1);
      // Another command on the ended request is refused with its code.
      const again = await cli('requests', 'delete', requestB, '--as', org.superAdminId);
      expect(again.code).toBe(1);
      expect(again.stdout).toMatch(/^REJECTED delete .+: REQUEST_NOT_PENDING: /);

      const audited = await backend.db.auditEntry.findMany({ where: { orgId: org.orgId, action: { startsWith: 'app-request.' } }, orderBy: { id: 'asc' } });
      expect(audited.map((entry) => [entry.actorId, entry.action, entry.subject, entry.outcome])).toEqual(
        expect.arrayContaining([
          [org.user('other'), 'app-request.resend', requestA, 'REJECTED'],
          [scopedAdminId, 'app-request.override', requestA, 'REJECTED'],
          [org.superAdminId, 'app-request.resend', requestA, 'ACCEPTED'],
          [org.superAdminId, 'app-request.override', requestA, 'ACCEPTED'],
          [org.superAdminId, 'app-request.delete', requestB, 'ACCEPTED'],
        ]),
      );
    });

    test('needs --as, and an unknown request needs --org', async () => {
      const withoutAdmin = await cli('requests', 'delete', requestB);
      expect(withoutAdmin.code).toBe(2);
      expect(withoutAdmin.stderr).toContain('requests delete needs --as <adminId>');
      const unknown = await cli('requests', 'resend', 'req-does-not-exist', '--as', org.superAdminId);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('no request req-does-not-exist in the database; give --org');
      const sentAnyway = await cli('requests', 'resend', 'req-does-not-exist', '--as', org.superAdminId, '--org', org.orgId);
      expect(sentAnyway.code).toBe(1);
      expect(sentAnyway.stdout).toMatch(/^REJECTED resend req-does-not-exist by .+: REQUEST_NOT_FOUND: there is no request req-does-not-exist/);
    });
  });

  describe('requests timeline', () => {
    interface Entry { at: string; source: string; what: string; actorId: string | null; detail: Record<string, unknown> }

    test("merges the request's history, commands, audit entries, events and emails in time order", async () => {
      // Wait for the relay and the emails of the override, so the timeline is complete.
      await until(async () => (await backend.db.outboxEvent.count({ where: { namespace: backend.config.KAFKA_TOPIC_NAMESPACE, publishedAt: null } })) === 0, 'the relay');
      const run = await cli('requests', 'timeline', requestA, '--json');
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const { request, entries } = JSON.parse(run.stdout) as { request: Record<string, unknown>; entries: Entry[] };
      expect(request).toMatchObject({ requestId: requestA, orgId: org.orgId, appId, status: 'APPROVED', requesterId: org.user('requester') });
      const times = entries.map((entry) => entry.at);
      expect([...times].sort()).toEqual(times);

      const history = entries.filter((entry) => entry.source === 'history').map((entry) => entry.what);
      expect(history).toEqual(['app.access_request.request', 'app.access_request.override', 'app.access_request.grant']);
      expect(entries.find((entry) => entry.what === 'app.access_request.override')).toMatchObject({ actorId: org.superAdminId, detail: { comment: 'urgent: quarter close' } });
      const commandTypes = entries.filter((entry) => entry.source === 'command').map((entry) => [entry.what, entry.detail.outcome, entry.detail.code]);
      expect(commandTypes).toEqual(
        expect.arrayContaining([
          [REQUESTED, 'ACCEPTED', undefined],
          ['selfservice.app-request.admin-action.v1', 'REJECTED', 'NOT_AUTHORIZED'],
          ['selfservice.app-request.admin-action.v1', 'ACCEPTED', undefined],
        ]),
      );
      const audits = entries.filter((entry) => entry.source === 'audit').map((entry) => [entry.what, entry.actorId, entry.detail.outcome]);
      expect(audits).toEqual(expect.arrayContaining([['app-request.resend', org.user('other'), 'REJECTED'], ['app-request.override', org.superAdminId, 'ACCEPTED']]));
      const events = entries.filter((entry) => entry.source === 'event');
      expect(events.map((entry) => entry.what)).toEqual(
        expect.arrayContaining(['selfservice.app.access_request.request.v1', 'selfservice.app.access_request.grant.v1', 'selfservice.dashboard.app-assigned.v1']),
      );
      expect(events.every((entry) => typeof entry.detail.published === 'string' && !Number.isNaN(Date.parse(entry.detail.published)))).toBe(true);
      await until(async () => (await backend.db.emailDelivery.count({ where: { dedupeKey: { startsWith: `${requestA}:outcome:` }, sentAt: { not: null } } })) > 0, 'the outcome email');
      const withEmails = JSON.parse((await cli('requests', 'timeline', requestA, '--json')).stdout) as { entries: Entry[] };
      expect(withEmails.entries.filter((entry) => entry.source === 'email').map((entry) => entry.detail.to)).toEqual(expect.arrayContaining([org.email('requester'), org.email('approver')]));

      const text = await cli('requests', 'timeline', requestA);
      expect(text.code).toBe(0);
      const lines = text.stdout.split('\n');
      expect(lines[0]).toBe(`request ${requestA}  org ${org.orgId}  app ${appId} (Label ${appId})  requester ${org.user('requester')}`);
      expect(lines[1]).toMatch(new RegExp(`^status APPROVED, closed \\S+; workflow app-request-${requestA}$`));
      expect(lines[3]).toMatch(/^TIME\s+SOURCE\s+WHAT\s+ACTOR\s+DETAIL$/);
      expect(text.stdout).toMatch(new RegExp(`history\\s+app\\.access_request\\.override\\s+${org.superAdminId}\\s+sequence=2 step=1 comment="urgent: quarter close"`));
    });

    test('--live adds the workflow status Query; an unknown request is exit code 1', async () => {
      const live = await cli('requests', 'timeline', requestB, '--live', '--json');
      expect(live.code).toBe(0);
      const parsed = JSON.parse(live.stdout) as { request: { status: string }; live: { status: string; closedReason: string } };
      expect(parsed.request.status).toBe('DELETED');
      expect(parsed.live).toMatchObject({ status: 'DELETED', closedReason: 'duplicate' });
      const text = await cli('requests', 'timeline', requestB, '--live');
      expect(text.stdout.split('\n')[2]).toBe('live: DELETED');

      const missing = await cli('requests', 'timeline', 'req-nothing-here');
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('no request req-nothing-here in the database');
    });
  });

  describe('audit export', () => {
    interface Exported { id: string; orgId: string; actorId: string; action: string; subject: string | null; outcome: string; at: string }

    test('streams JSON lines in the order written, with filters, to stdout or a file', async () => {
      const all = await cli('audit', 'export', '--org', org.orgId);
      expect(all.stderr).toBe('');
      expect(all.code).toBe(0);
      const entries = jsonLines<Exported>(all);
      const stored = await backend.db.auditEntry.findMany({ where: { orgId: org.orgId }, orderBy: { id: 'asc' } });
      expect(entries.map((entry) => entry.id)).toEqual(stored.map((row) => row.id.toString()));
      expect(entries.every((entry) => entry.orgId === org.orgId)).toBe(true);

      // Pages of 2 give the same lines.
      expect((await cli('audit', 'export', '--org', org.orgId, '--page-size', '2')).stdout).toBe(all.stdout);

      const adminActions = jsonLines<Exported>(await cli('audit', 'export', '--org', org.orgId, '--actor', org.superAdminId, '--action', 'app-request.*'));
      expect(adminActions.map((entry) => [entry.action, entry.subject])).toEqual([
        ['app-request.resend', requestA],
        ['app-request.override', requestA],
        ['app-request.delete', requestB],
      ]);
      expect(adminActions.map((entry) => entry.outcome)).toEqual(['ACCEPTED', 'ACCEPTED', 'ACCEPTED']);

      const aboutA = jsonLines<Exported>(await cli('audit', 'export', '--request', requestA, '--action', 'app-request.override'));
      expect(aboutA.map((entry) => [entry.actorId, entry.outcome])).toEqual([
        [scopedAdminId, 'REJECTED'],
        [org.superAdminId, 'ACCEPTED'],
      ]);

      const middle = entries[Math.floor(entries.length / 2)]!;
      const since = jsonLines<Exported>(await cli('audit', 'export', '--org', org.orgId, '--since', middle.at));
      expect(since.length).toBeGreaterThan(0);
      expect(since.every((entry) => entry.at >= middle.at)).toBe(true);
      const until = jsonLines<Exported>(await cli('audit', 'export', '--org', org.orgId, '--until', middle.at));
      expect(until.every((entry) => entry.at < middle.at)).toBe(true);
      expect(since.length + until.length).toBe(entries.length);
      await expect(cli('audit', 'export', '--org', org.orgId, '--since', '2999-01-01')).resolves.toMatchObject({ code: 0, stdout: '' });

      const file = path.join(workDir, 'audit.jsonl');
      const toFile = await cli('audit', 'export', '--org', org.orgId, '--out', file);
      expect(toFile.code).toBe(0);
      expect(toFile.stdout).toBe('');
      expect(toFile.stderr).toBe(`exported ${entries.length} audit entries to ${file}\n`);
      expect(readFileSync(file, 'utf8')).toBe(all.stdout);
    });

    test('a bad time or an unknown option is a usage error naming it', async () => {
      const badTime = await cli('audit', 'export', '--since', 'yesterday');
      expect(badTime.code).toBe(2);
      expect(badTime.stderr).toContain('--since must be an ISO 8601 time');
      const unknown = await cli('audit', 'export', '--orgg', org.orgId);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('unknown option --orgg for audit export');
      expect(unknown.stderr).toContain('usage: npm run cli -- audit export [options]');
      const flagWithValue = await cli('requests', 'find', '--json=yes');
      expect(flagWithValue.code).toBe(2);
      expect(flagWithValue.stderr).toContain('--json takes no value');
    });
  });

  describe('--help', () => {
    const HELP_OF: string[][] = [
      [],
      ['import'],
      ['send'],
      ['available-apps'],
      ['audit'],
      ['audit', 'export'],
      ['audit', 'verify'],
      ['outbox'],
      ['requests'],
      ['requests', 'find'],
      ['requests', 'timeline'],
      ['requests', 'resend'],
      ['requests', 'delete'],
      ['requests', 'override'],
    ];

    test.each(HELP_OF.map((command): [string, string[]] => [command.join(' ') || '(the CLI)', command]))('%s --help prints its usage, options and an example', async (_name, command) => {
      const run = await cli(...command, '--help');
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^usage: npm run cli -- /);
      if (command.length > 0) {
        expect(run.stdout).toContain('options:');
        expect(run.stdout).toMatch(/examples?:\n {2}npm run cli -- /);
      } else {
        for (const name of ['requests find', 'requests timeline', 'requests override', 'audit export', 'import']) expect(run.stdout).toContain(`  ${name} `);
      }
    });

    test('an unknown command or subcommand is an error with the usage', async () => {
      const command = await cli('frobnicate');
      expect(command.code).toBe(2);
      expect(command.stderr).toMatch(/^unknown command frobnicate\nusage: /);
      const sub = await cli('requests', 'approve', requestA);
      expect(sub.code).toBe(2);
      expect(sub.stderr).toContain('unknown subcommand requests approve');
      expect(sub.stderr).toContain('requests override');
    });
  });

  describe('import progress', () => {
    test('a long import reports done of total and the rate on stderr; --quiet silences it; stdout is unchanged', async () => {
      const orgId = uniqueId('org');
      const domain = `${orgId}.example`;
      const users = Array.from({ length: 700 }, (_, index) => ({
        type: 'selfservice.directory.user-upserted.v1',
        data: { orgId, userId: `${orgId}-user-${index}`, email: `user-${index}@${domain}`, status: 'ACTIVE', adminRoles: [] },
      }));
      const file = path.join(workDir, 'big.json');
      writeFileSync(file, JSON.stringify({ commands: [{ type: 'selfservice.directory.org-upserted.v1', data: { orgId, name: 'Big', emailDomains: [domain] } }, ...users] }));

      const run = await cli('import', file);
      expect(run.code).toBe(0);
      const progress = run.stderr.trim().split('\n');
      expect(progress[progress.length - 1]).toMatch(/^applied 701 of 701 \(100%\), [\d.]+\/s, in [\d.]+ s$/);
      for (const line of progress) expect(line).toMatch(/^applied \d+ of 701 \(\d+%\), [\d.]+\/s, (about \d+ s left|in [\d.]+ s)$/);
      expect(run.stdout.trim().split('\n').pop()).toBe('imported 701 of 701 commands');

      const quiet = await cli('import', file, '--quiet');
      expect(quiet).toMatchObject({ code: 0, stderr: '' });
      const small = path.join(workDir, 'small.json');
      writeFileSync(small, JSON.stringify({ commands: [{ type: 'selfservice.directory.org-upserted.v1', data: { orgId, name: 'Big', emailDomains: [domain] } }] }));
      const forced = await cli('import', small, '--progress');
      expect(forced.stderr).toMatch(/^applied 1 of 1 \(100%\), [\d.]+\/s, in [\d.]+ s\n$/);
    });
  });
});
