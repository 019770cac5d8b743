import { Writable } from 'node:stream';
import { createLogger, logLine, scrub, temporalLogger } from '../../workers/logger';

/** A logger writing into an array of parsed JSON lines. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger(destination), lines };
}

describe('the logger', () => {
  test('JSON lines with the level as a word, a time and the bound ids', () => {
    const { logger, lines } = capture();
    logger.child({ component: 'ingress', commandId: 'cmd-1' }).warn({ requestId: 'r-1', workflowId: 'app-request-r-1' }, 'retrying');
    expect(lines[0]).toMatchObject({ level: 'warn', component: 'ingress', commandId: 'cmd-1', requestId: 'r-1', workflowId: 'app-request-r-1', msg: 'retrying' });
    expect(typeof lines[0]?.time).toBe('string');
  });

  test('masks email addresses and redacts fields named like personal data', () => {
    expect(scrub('550 <alice@example.com> refused, bob.smith+x@mail.example.org too')).toBe('550 <<email>> refused, <email> too');
    const { logger, lines } = capture();
    logger.error({ error: new Error('recipient alice@example.com refused'), email: 'x@y.example', displayName: 'Alice', user: { comment: 'hi' } }, 'mail to alice@example.com failed');
    const line = JSON.stringify(lines[0]);
    expect(line).not.toContain('alice@example.com');
    expect(line).not.toContain('Alice');
    expect(line).not.toContain('"hi"');
    expect(lines[0]).toMatchObject({ email: '[redacted]', displayName: '[redacted]', msg: 'mail to <email> failed' });
  });

  test('a log callback binds its fields; an incident is an error', () => {
    const { logger, lines } = capture();
    const log = logLine(logger, 'warn');
    log('command id conflict', { commandId: 'cmd-2' });
    log('incident inc-1: command cmd-3 failed permanently', { commandId: 'cmd-3' });
    expect(lines.map(({ level, commandId }) => ({ level, commandId }))).toEqual([
      { level: 'warn', commandId: 'cmd-2' },
      { level: 'error', commandId: 'cmd-3' },
    ]);
  });

  test("Temporal's logs come through with their ids, and a request's workflow names its request", () => {
    const { logger, lines } = capture();
    temporalLogger(logger).log('WARN', 'Activity failed', { workflowId: 'app-request-r-9', activityType: 'notifyOutcome', error: new Error('550 x@y.example') });
    expect(lines[0]).toMatchObject({ level: 'warn', msg: 'Activity failed', workflowId: 'app-request-r-9', requestId: 'r-9', activityType: 'notifyOutcome', error: 'Error: 550 <email>' });
  });
});
