import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Partitioners, type Consumer, type IHeaders, type Kafka, type Producer } from 'kafkajs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { encodeCloudEvent } from '../../events/cloudevents';
import { inboundCommands, type InboundType } from '../../events/inbound';
import { createKafka } from '../../events/kafka';
import { topicsFor, type Topics } from '../../events/topics';
import { loadConfig, type Config } from '../../workers/config';
import { kafkaSettingsFrom } from '../../workers/kafka-settings';

/**
 * The operator's view of one pending request, in a real browser (Chromium from Debian's packages,
 * driven by playwright-core), on the stack `npm start` runs:
 *
 *   1. sends an approval-required app request through Kafka, as an end-user app would, for a demo user
 *      of org-acme with a distinctive comment, and waits for its result and for the approver's email
 *      (Mailpit's API);
 *   2. signs in to the codec server the way the README tells an operator to (http://127.0.0.1:8888/login,
 *      the token of .stack/codec-token as the password) and sets the Web UI's codec server settings
 *      (browser setting: the endpoint, "Include cross-origin credentials"), as an operator clicks them;
 *   3. in the Temporal Web UI, lists `SelfServiceApproverIds = "u-bob" AND ExecutionStatus = "Running"`,
 *      opens the request's workflow and checks that its input shows the requester and the comment in
 *      clear, decoded by the codec server (the history itself holds only ciphertext);
 *   4. in Mailpit's web page, searches the approver's mailbox for the request and opens the email.
 *
 * Screenshots of every step go to .stack/artifacts/browser/ (git-ignored), with report.json (ids,
 * timings). Run it with `npm run test:browser` (services/browser.sh test), which installs Chromium when it
 * is missing and starts the stack when it is not running. The request is cancelled by its requester at
 * the end, so runs do not pile up pending requests on u-bob (KEEP_REQUEST=1 leaves it pending).
 */

const ROOT = path.resolve(__dirname, '..', '..');
export const ARTIFACTS_DIR = path.join(ROOT, '.stack', 'artifacts', 'browser');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** The demo org of services/demo-org.json: app-expenses needs u-bob's approval first. */
const ORG_ID = 'org-acme';
const APP_ID = 'app-expenses';
const APPROVER_ID = 'u-bob';
const APPROVER_EMAIL = 'bob@acme.example';
/** The requester: a demo user of its own, so that a request someone left pending by hand is never touched. */
const REQUESTER = { userId: 'u-browser-check', email: 'browser-check@acme.example', displayName: 'Bea Browser-Check' };

export interface OperatorUiReport {
  requestId: string;
  workflowId: string;
  comment: string;
  /** The codec server's answers to the page's POST /decode calls: status -> count. */
  decodeCalls: Record<number, number>;
  screenshots: string[];
  /** Milliseconds per step, in order. */
  timings: Record<string, number>;
}

/** A failed check: the message says what was expected, what was seen, and what to look at. */
export class BrowserCheckError extends Error {
  override readonly name = 'BrowserCheckError';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new BrowserCheckError(`timed out after ${timeoutMs / 1000} s waiting for ${what}${lastError ? ` (last error: ${playwrightMessage(lastError)})` : ''}`);
    }
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------------
// The stack: is everything `npm start` starts answering?
// ---------------------------------------------------------------------------------------------------

interface Endpoints {
  ui: string;
  mailpit: string;
  /** The codec endpoint the Web UI is configured with (`temporal server start-dev --ui-codec-endpoint`). */
  codec: string;
  codecToken: string;
}

async function answers(url: string, init?: RequestInit): Promise<Response | undefined> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  } catch {
    return undefined;
  }
}

async function endpoints(config: Config): Promise<Endpoints> {
  const ui = config.TEMPORAL_UI_URL.replace(/\/$/, '');
  const mailpit = config.MAILPIT_URL.replace(/\/$/, '');
  const settings = await answers(`${ui}/api/v1/settings`);
  if (!settings?.ok) throw new BrowserCheckError(`the Temporal Web UI does not answer at ${ui}: start the stack with npm start`);
  const codec = ((await settings.json()) as { Codec?: { Endpoint?: string } }).Codec?.Endpoint?.replace(/\/$/, '');
  if (!codec) {
    throw new BrowserCheckError(
      `the Temporal Web UI at ${ui} has no codec endpoint: services/stack.sh starts the dev server with --ui-codec-endpoint; restart it (npm stop && npm start)`,
    );
  }
  if (!(await answers(`${mailpit}/api/v1/messages?limit=1`))?.ok) throw new BrowserCheckError(`Mailpit does not answer at ${mailpit}: start the stack with npm start`);
  const tokenFile = path.join(ROOT, '.stack', 'codec-token');
  const codecToken = process.env.CODEC_STATIC_TOKEN ?? (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '');
  if (!codecToken) throw new BrowserCheckError(`no codec token: npm start writes one to ${tokenFile} (or set CODEC_STATIC_TOKEN)`);
  // Without credentials the codec server must refuse: 401, or it is not ours (or not running).
  const probe = await answers(`${codec}/decode`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"payloads":[]}' });
  if (!probe) throw new BrowserCheckError(`the codec server does not answer at ${codec}: start it with npm start`);
  if (probe.status !== 401) throw new BrowserCheckError(`the codec server at ${codec} answered ${probe.status} to a caller without a token, not 401`);
  return { ui, mailpit, codec, codecToken };
}

// ---------------------------------------------------------------------------------------------------
// Kafka: commands in, results out, as a client app sends and reads them
// ---------------------------------------------------------------------------------------------------

interface CommandResult {
  type: string;
  data: Record<string, unknown>;
}

class CommandChannel {
  private readonly results = new Map<string, CommandResult>();

  private constructor(
    private readonly producer: Producer,
    private readonly consumer: Consumer,
    private readonly topics: Topics,
  ) {}

  /** Reads the results topic from its end as it is now, so only results of commands sent later are seen. */
  static async open(kafka: Kafka, topics: Topics): Promise<CommandChannel> {
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topics.commandResults).finally(() => admin.disconnect());
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const consumer = kafka.consumer({ groupId: `selfservice-browser-check-${randomUUID()}` });
    const channel = new CommandChannel(producer, consumer, topics);
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic: topics.commandResults, fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message }) => {
        try {
          const body = JSON.parse(message.value?.toString('utf8') ?? '{}') as Record<string, unknown>;
          const type = message.headers?.ce_type?.toString() ?? '';
          if (typeof body.commandId === 'string') channel.results.set(body.commandId, { type, data: body });
        } catch {
          // not JSON: not a result of ours
        }
      },
    });
    for (const { partition, offset } of offsets) consumer.seek({ topic: topics.commandResults, partition, offset });
    return channel;
  }

  /** Sends one command (CloudEvents binary mode, keyed by org) and waits for its result. */
  async send(type: InboundType, data: Record<string, unknown>): Promise<CommandResult> {
    const id = randomUUID();
    const record = encodeCloudEvent({ specversion: '1.0', id, source: 'urn:selfservice-browser-check', type, time: new Date().toISOString(), data }, ORG_ID);
    await this.producer.send({ topic: this.topics[inboundCommands[type].topic], acks: -1, messages: [{ key: record.key, value: record.value, headers: record.headers as IHeaders }] });
    return waitUntil(`the result of ${type} ${id} on ${this.topics.commandResults} (are the ingress, the worker and the relay running? npm start)`, 60_000, async () => this.results.get(id), 100);
  }

  async accepted(type: InboundType, data: Record<string, unknown>): Promise<Record<string, unknown>> {
    const result = await this.send(type, data);
    if (result.type !== 'selfservice.command.accepted.v1') {
      throw new BrowserCheckError(`${type} was not accepted: ${String(result.data.code)}: ${String(result.data.message)} (is the demo org loaded? npm start loads it)`);
    }
    return result.data;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.consumer.disconnect(), this.producer.disconnect()]);
  }
}

/** Sends the request; a request of a previous run left pending (a run that died) is cancelled first. */
async function sendRequest(channel: CommandChannel, comment: string, log: (line: string) => void): Promise<{ requestId: string; workflowId: string }> {
  await channel.accepted('selfservice.directory.user-upserted.v1', { orgId: ORG_ID, ...REQUESTER, status: 'ACTIVE', adminRoles: [] });
  const request = { orgId: ORG_ID, userId: REQUESTER.userId, appId: APP_ID, comment };
  let result = await channel.send('selfservice.app.requested.v1', request);
  if (result.data.code === 'DUPLICATE_PENDING_REQUEST' && typeof result.data.existingRequestId === 'string') {
    log(`  an earlier run left request ${result.data.existingRequestId} pending: cancelling it`);
    await channel.accepted('selfservice.app-request.cancelled.v1', { orgId: ORG_ID, userId: REQUESTER.userId, requestId: result.data.existingRequestId });
    result = await channel.send('selfservice.app.requested.v1', request);
  }
  const { requestId, workflowId, code, message } = result.data;
  if (result.type !== 'selfservice.command.accepted.v1' || typeof requestId !== 'string' || typeof workflowId !== 'string') {
    throw new BrowserCheckError(`the app request was not accepted: ${String(code)}: ${String(message)} (is the demo org loaded? npm start loads it)`);
  }
  return { requestId, workflowId };
}

interface Mail {
  ID: string;
  Subject: string;
  To: { Address: string }[];
}

async function waitForApproverMail(mailpit: string, requestId: string): Promise<Mail> {
  const query = `to:"${APPROVER_EMAIL}" "${requestId}"`;
  return waitUntil(`the approval email to ${APPROVER_EMAIL} for request ${requestId} in Mailpit (${mailpit}/api/v1/search)`, 60_000, async () => {
    const response = await fetch(`${mailpit}/api/v1/search?query=${encodeURIComponent(query)}&limit=5`);
    if (!response.ok) throw new Error(`Mailpit answered ${response.status}`);
    return ((await response.json()) as { messages: Mail[] }).messages[0];
  });
}

/**
 * What the Temporal server holds (read through the Web UI's own HTTP API, as the page does): the
 * workflow's input payloads are ciphertext, so whatever the page shows in clear came from the codec server.
 */
async function checkHistoryIsEncrypted(ui: string, workflowId: string, comment: string): Promise<void> {
  const url = `${ui}/api/v1/namespaces/default/workflows/${encodeURIComponent(workflowId)}/history?maximumPageSize=1`;
  const response = await fetch(url);
  if (!response.ok) throw new BrowserCheckError(`${url} answered ${response.status}`);
  const body = await response.text();
  type Payload = { metadata?: Record<string, string>; data?: string };
  const history = JSON.parse(body) as { history?: { events?: { workflowExecutionStartedEventAttributes?: { input?: { payloads?: Payload[] } } }[] } };
  const payloads = history.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads ?? [];
  const base64 = (text = '') => Buffer.from(text, 'base64').toString('utf8');
  const encodings = payloads.map((payload) => base64(payload.metadata?.encoding));
  if (payloads.length === 0 || encodings.some((encoding) => encoding !== 'binary/encrypted')) {
    throw new BrowserCheckError(`the history of ${workflowId} should hold only encrypted input payloads (binary/encrypted), it holds: ${encodings.join(', ') || 'none'}`);
  }
  if (body.includes(comment) || payloads.some((payload) => base64(payload.data).includes(comment))) {
    throw new BrowserCheckError(`the history of ${workflowId} holds the comment in clear: payload encryption is off`);
  }
}

// ---------------------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------------------

class Screens {
  readonly taken: string[] = [];
  constructor(private readonly page: Page) {}

  async shot(name: string, fullPage = false): Promise<void> {
    const file = path.join(ARTIFACTS_DIR, `${String(this.taken.length + 1).padStart(2, '0')}-${name}.png`);
    await this.page.screenshot({ path: file, fullPage });
    this.taken.push(path.relative(ROOT, file));
  }
}

/** A Playwright error's first line and the locator it waited for (its call log's first entry). */
function playwrightMessage(error: unknown): string {
  // eslint-disable-next-line no-control-regex -- Playwright colours its call log
  const plain = (error instanceof Error ? error.message : String(error)).replace(/\u001b\[[0-9;]*m/g, '');
  const lines = plain.split('\n').map((line) => line.trim());
  const waited = lines.find((line) => line.startsWith('- waiting for'));
  return waited ? `${lines[0]} ${waited.replace(/^- /, '')}` : (lines[0] ?? '');
}

/** Visible text of the page (what the operator can read), for checks and failure messages. */
async function pageText(page: Page): Promise<string> {
  return page.locator('body').innerText();
}

/** As the README tells an operator: open the codec server's /login once, the token as the password. */
async function signInToCodecServer(page: Page, screens: Screens, codec: string): Promise<void> {
  const response = await page.goto(`${codec}/login`);
  if (response?.status() !== 200) throw new BrowserCheckError(`${codec}/login answered ${response?.status()} to the codec token (is .stack/codec-token the token the running codec server uses?)`);
  await page.getByText('Signed in for 12 hours').waitFor();
  await screens.shot('codec-server-signed-in');
}

/**
 * The Web UI's codec server settings, as an operator sets them: the dev server's endpoint comes from
 * --ui-codec-endpoint, but that cluster-level setting cannot include credentials (the Temporal CLI has
 * no flag for it), so the browser setting is chosen with the same endpoint and "Include cross-origin
 * credentials" on; the UI keeps it in the browser's local storage.
 */
async function configureCodecInUi(page: Page, screens: Screens, ui: string, codec: string): Promise<void> {
  await page.goto(`${ui}/namespaces/default/workflows`);
  // The top bar's codec server button: its test id tells its state (-configured, -success, -error).
  await page.locator('[data-testid^="data-encoder-status"]').first().click();
  await page.getByTestId('data-encoder-title').waitFor();
  // The accordion "Use Cluster-level setting, where available" / "Use my browser setting ...": open it,
  // choose the browser setting, close it again (open, it hides the switches below the panel's edge).
  const accordion = page.getByTestId('override-accordion').getByRole('button').first();
  const useBrowserSetting = page.getByTestId('use-local-endpoint-input');
  if (!(await useBrowserSetting.isVisible())) await accordion.click();
  await useBrowserSetting.check({ force: true });
  await accordion.click();
  await useBrowserSetting.waitFor({ state: 'hidden' });
  await page.locator('#data-encoder-endpoint-input').fill(codec);
  // Each switch is a visually hidden checkbox inside its label: the label is what one clicks.
  const setSwitch = async (label: string, testId: string, on: boolean) => {
    const input = page.getByRole('switch', { name: label });
    if ((await input.isChecked()) !== on) await page.getByTestId(testId).click();
    if ((await input.isChecked()) !== on) throw new BrowserCheckError(`the codec server setting "${label}" did not turn ${on ? 'on' : 'off'}`);
  };
  await setSwitch('Pass the user access token', 'data-encoder-pass-access-token', false);
  await setSwitch('Include cross-origin credentials', 'data-encoder-include-credentials', true);
  await page.getByTestId('data-encoder-title').scrollIntoViewIfNeeded();
  await screens.shot('ui-codec-settings');
  await page.getByTestId('confirm-data-encoder-button').click();
  await page.getByTestId('data-encoder-title').waitFor({ state: 'hidden' });
}

async function findPendingRequest(page: Page, screens: Screens, ui: string, workflowId: string): Promise<void> {
  const query = `SelfServiceApproverIds = "${APPROVER_ID}" AND ExecutionStatus = "Running"`;
  const listUrl = `${ui}/namespaces/default/workflows?query=${encodeURIComponent(query)}`;
  const row = page.locator(`a[href*="/workflows/${encodeURIComponent(workflowId)}/"]`).first();
  // Visibility is updated a moment after the workflow sets its search attributes: reload until it shows.
  await page.goto(listUrl);
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      await row.waitFor({ timeout: 15_000 });
      break;
    } catch {
      if (Date.now() > deadline) throw new BrowserCheckError(`workflow ${workflowId} is not in the Web UI's list for ${query} after 90 s`);
      await page.reload();
    }
  }
  const shown = await pageText(page);
  if (!shown.includes(`SelfServiceApproverIds`)) throw new BrowserCheckError(`the workflow list does not show the query ${query}`);
  await screens.shot('ui-workflows-by-approver');
  await row.click();
  await page.waitForURL(`**/workflows/${encodeURIComponent(workflowId)}/**`);
}

/** The codec server's answers to the page's POST /decode calls, by status. */
type DecodeCalls = Map<number, number>;

function watchDecodeCalls(page: Page, codec: string): DecodeCalls {
  const calls: DecodeCalls = new Map();
  page.on('response', (response) => {
    if (response.request().method() === 'POST' && response.url() === `${codec}/decode`) calls.set(response.status(), (calls.get(response.status()) ?? 0) + 1);
  });
  return calls;
}

const describeCalls = (calls: DecodeCalls) => [...calls].map(([status, count]) => `${count} x ${status}`).join(', ') || 'none';

async function checkDecodedInput(page: Page, screens: Screens, workflowId: string, comment: string, calls: DecodeCalls): Promise<void> {
  const input = page.getByTestId('input-and-result');
  await input.first().waitFor({ timeout: 30_000 });
  await waitUntil(`the comment "${comment}" in clear in the input of ${workflowId} (decoded by the codec server)`, 30_000, async () => {
    const text = await input.first().innerText();
    return text.includes(comment) && text.includes(REQUESTER.userId) ? true : undefined;
  }).catch(async (error: unknown) => {
    await screens.shot('FAILED-ui-workflow-input', true);
    const text = (await input.first().innerText().catch(() => '')).replace(/\s+/g, ' ').slice(0, 400);
    throw new BrowserCheckError(`${(error as Error).message}; the codec server answered the page's POST /decode calls: ${describeCalls(calls)}; the input shows: ${text || '(nothing)'}`);
  });
  if (!calls.get(200)) throw new BrowserCheckError(`the page shows the input in clear, but the codec server answered no POST /decode with 200 (${describeCalls(calls)})`);
  if ((await input.first().innerText()).includes('binary/encrypted')) throw new BrowserCheckError(`the input of ${workflowId} still shows an encrypted payload beside the clear text`);
  await input.first().scrollIntoViewIfNeeded();
  await screens.shot('ui-workflow-decoded-input');
}

async function checkMailInMailpit(page: Page, screens: Screens, mailpit: string, mail: Mail, requestId: string): Promise<void> {
  await page.goto(`${mailpit}/`);
  const search = page.getByRole('textbox', { name: 'Search mailbox' });
  await search.fill(`to:"${APPROVER_EMAIL}" "${requestId}"`);
  await search.press('Enter');
  const item = page.getByText(mail.Subject).first();
  await item.waitFor({ timeout: 15_000 });
  await screens.shot('mailpit-search');
  await item.click();
  await page.waitForURL(`**/view/${mail.ID}**`, { timeout: 15_000 });
  await waitUntil(`the subject "${mail.Subject}" and the recipient ${APPROVER_EMAIL} on Mailpit's page of the email`, 15_000, async () => {
    const text = await pageText(page);
    return text.includes(mail.Subject) && text.includes(APPROVER_EMAIL) ? true : undefined;
  });
  await screens.shot('mailpit-approver-email');
}

export async function runOperatorUiCheck(log: (line: string) => void = console.log): Promise<OperatorUiReport> {
  const timings: Record<string, number> = {};
  let mark = Date.now();
  const step = (name: string) => {
    const now = Date.now();
    timings[name] = now - mark;
    log(`  ${name}: ${((now - mark) / 1000).toFixed(1)} s`);
    mark = now;
  };

  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  for (const file of readdirSync(ARTIFACTS_DIR)) rmSync(path.join(ARTIFACTS_DIR, file), { force: true });
  if (!existsSync(CHROMIUM)) throw new BrowserCheckError(`no Chromium at ${CHROMIUM}: run bash services/browser.sh install`);

  const config = loadConfig();
  const where = await endpoints(config);
  step('stack answers');

  const runId = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  const comment = `Browser check ${runId}: need Expenses for the Lisbon offsite`;
  const kafka = createKafka({ ...kafkaSettingsFrom(config), clientId: `${config.KAFKA_CLIENT_ID}-browser-check` });
  const channel = await CommandChannel.open(kafka, topicsFor(config.KAFKA_TOPIC_NAMESPACE));
  let browser: Browser | undefined;
  let ids: { requestId: string; workflowId: string } | undefined;
  try {
    ids = await sendRequest(channel, comment, log);
    const { requestId, workflowId } = ids;
    log(`  request ${requestId} (workflow ${workflowId}) by ${REQUESTER.userId}, comment "${comment}"`);
    step('request accepted');
    const mail = await waitForApproverMail(where.mailpit, requestId);
    log(`  email to ${APPROVER_EMAIL}: "${mail.Subject}"`);
    step('approver email in Mailpit');
    await checkHistoryIsEncrypted(where.ui, workflowId, comment);
    step('history holds ciphertext');

    browser = await chromium.launch({ executablePath: CHROMIUM });
    const context = await browser.newContext({
      viewport: { width: 1440, height: 900 },
      // What the operator types into the browser's sign-in prompt of the codec server's /login.
      httpCredentials: { username: 'operator', password: where.codecToken, origin: new URL(where.codec).origin },
    });
    context.setDefaultTimeout(30_000);
    const page = await context.newPage();
    const screens = new Screens(page);
    const decodeCalls = watchDecodeCalls(page, where.codec);
    step('chromium started');
    try {
      await signInToCodecServer(page, screens, where.codec);
      await configureCodecInUi(page, screens, where.ui, where.codec);
      step('codec server sign-in and UI settings');
      await findPendingRequest(page, screens, where.ui, workflowId);
      step('request found by SelfServiceApproverIds');
      await checkDecodedInput(page, screens, workflowId, comment, decodeCalls);
      step('input decoded in clear');
      await checkMailInMailpit(page, screens, where.mailpit, mail, requestId);
      step('email on Mailpit page');
    } catch (error) {
      await screens.shot('FAILED-last-page', true).catch(() => undefined);
      const message = error instanceof BrowserCheckError ? error.message : `${playwrightMessage(error)} (page ${page.url()})`;
      throw new BrowserCheckError(`${message}; screenshots: ${screens.taken.join(', ')}`);
    }
    log(`  the codec server answered the page's POST /decode calls: ${describeCalls(decodeCalls)}`);
    const report: OperatorUiReport = { requestId, workflowId, comment, decodeCalls: Object.fromEntries(decodeCalls), screenshots: screens.taken, timings };
    writeFileSync(path.join(ARTIFACTS_DIR, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await browser?.close().catch(() => undefined);
    if (ids && process.env.KEEP_REQUEST !== '1') {
      await channel
        .accepted('selfservice.app-request.cancelled.v1', { orgId: ORG_ID, userId: REQUESTER.userId, requestId: ids.requestId })
        .then(() => log(`  request ${ids?.requestId} cancelled by its requester (KEEP_REQUEST=1 keeps it pending)`))
        .catch((error: unknown) => log(`  could not cancel request ${ids?.requestId}: ${(error as Error).message}`));
    }
    await channel.close();
  }
}

if (require.main === module) {
  const started = Date.now();
  console.log('browser check: the operator UI on the npm start stack');
  runOperatorUiCheck().then(
    (report) => {
      console.log(`browser check passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${path.relative(ROOT, ARTIFACTS_DIR)}/:`);
      for (const file of report.screenshots) console.log(`  ${file}`);
    },
    (error: unknown) => {
      console.error(`browser check FAILED after ${((Date.now() - started) / 1000).toFixed(1)} s: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}
