import { helpText, isoTime, parseArgs, UsageError, type CommandSpec } from '../../workers/operator/args';
import { progressReporter } from '../../workers/operator/progress';

const spec: CommandSpec = {
  name: 'things find',
  args: '<id>',
  summary: 'find things',
  options: [
    { name: 'org', value: 'ORG', description: 'the org' },
    { name: 'json', description: 'JSON lines' },
  ],
  examples: ['things find t-1 --org o-1'],
};

describe('operator CLI arguments', () => {
  test('takes --name value, --name=value, flags, positionals and -- ', () => {
    const parsed = parseArgs(spec, ['t-1', '--org', 'o-1', '--json', '--org=o-2', '--', '--not-an-option']);
    expect(parsed).toEqual({ positionals: ['t-1', '--not-an-option'], values: new Map([['org', 'o-2']]), flags: new Set(['json']), help: false });
    expect(parseArgs(spec, ['-h']).help).toBe(true);
  });

  test('an unknown option, a missing value or a value for a flag is a usage error naming it, with the usage', () => {
    const error = (args: string[]) => {
      try {
        parseArgs(spec, args);
      } catch (caught) {
        return caught as UsageError;
      }
      throw new Error('no error');
    };
    expect(error(['--orgg', 'x'])).toMatchObject({ message: 'unknown option --orgg for things find', usage: helpText(spec) });
    expect(error(['-x']).message).toBe('unknown option -x for things find');
    expect(error(['--org']).message).toBe('--org needs a value (ORG)');
    expect(error(['--org', '--json']).message).toBe('--org needs a value (ORG)');
    expect(error(['--json=1']).message).toBe('--json takes no value');
  });

  test('help shows usage, options and an example', () => {
    expect(helpText(spec)).toBe(
      [
        'usage: npm run cli -- things find <id> [options]',
        '',
        'find things',
        '',
        'options:',
        '  --org ORG  the org',
        '  --json     JSON lines',
        '  --help     show this help',
        '',
        'example:',
        '  npm run cli -- things find t-1 --org o-1',
      ].join('\n'),
    );
  });

  test('times are ISO 8601', () => {
    expect(isoTime(spec, '--since', '2026-11-29')?.toISOString()).toBe('2026-11-29T00:00:00.000Z');
    expect(isoTime(spec, '--since', '2026-11-29T08:00:00+01:00')?.toISOString()).toBe('2026-11-29T07:00:00.000Z');
    expect(() => isoTime(spec, '--since', 'yesterday')).toThrow(UsageError);
    expect(() => isoTime(spec, '--since', '2026-13-45')).toThrow(UsageError);
  });
});

describe('import progress', () => {
  test('at most one line a second, always the last, with done of total, rate and time left', () => {
    let clock = 0;
    const lines: string[] = [];
    const report = progressReporter('applied', { write: (line) => lines.push(line), now: () => clock });
    clock = 500;
    report(500, 2000);
    clock = 900;
    report(1000, 2000); // within the second: not written
    clock = 1600;
    report(1500, 2000);
    clock = 2000;
    report(2000, 2000);
    expect(lines).toEqual([
      'applied 500 of 2000 (25%), 1000/s, about 2 s left',
      'applied 1500 of 2000 (75%), 938/s, about 1 s left',
      'applied 2000 of 2000 (100%), 1000/s, in 2.0 s',
    ]);
  });
});
