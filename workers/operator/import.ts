import { readFileSync } from 'node:fs';
import { describeIssues } from '../../events/validation';
import { importCommands, importFileSchema } from '../command-import';
import { loadConfig } from '../config';
import { connectIngress } from '../runtime';
import { helpText, parseArgs, positionals, UsageError, type CliCommand, type CommandSpec } from './args';
import { progressReporter } from './progress';

/** Imports larger than this report their progress on stderr unless told otherwise. */
const PROGRESS_FROM = 500;

const spec: CommandSpec = {
  name: 'import',
  args: '<file.json>',
  summary: 'run directory and admin commands from a file (same validation and workflows as Kafka)',
  details: [
    'The file is {"commands": [{"type": "...", "data": {...}}, ...]}. Each entry is validated as a Kafka record',
    'would be and applied through the command catalog, 500 to a transaction; entry ids come from the file and',
    "the entry's position, so importing the same file again changes nothing. Prints one line per entry and a",
    `total; on stderr, files of more than ${PROGRESS_FROM} commands report progress (done of total, rate, time left)`,
    'at most once a second. Exit code 1 when an entry was rejected.',
  ],
  options: [
    { name: 'progress', description: 'report progress whatever the size of the file' },
    { name: 'quiet', description: 'no progress lines' },
  ],
  examples: ['import services/demo-org.json', 'import big-sync.json --progress 2>progress.log'],
};

async function run(args: readonly string[]): Promise<boolean> {
  const parsed = parseArgs(spec, args);
  if (parsed.help) {
    console.log(helpText(spec));
    return true;
  }
  const [path] = positionals(spec, parsed, ['a file']);
  const config = loadConfig();
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path!, 'utf8'));
  } catch (error) {
    throw new UsageError(`cannot read ${path} as JSON: ${(error as Error).message}`, helpText(spec));
  }
  const file = importFileSchema.safeParse(json);
  if (!file.success) throw new UsageError(`${path} is not an import file: ${describeIssues(file.error.issues)}`, helpText(spec));

  const show = parsed.flags.has('quiet') ? false : parsed.flags.has('progress') ? true : file.data.commands.length > PROGRESS_FROM;
  const report = progressReporter('applied', { write: (line) => console.error(line) });
  const runtime = await connectIngress(config, { clientId: `${config.KAFKA_CLIENT_ID}-cli` });
  try {
    const outcomes = await importCommands(file.data, runtime.topics, runtime.router, (done, total) => {
      if (show) report(done, total);
    });
    for (const { index, type, result } of outcomes) {
      const detail = result.outcome === 'ACCEPTED' ? '' : ` ${result.code}: ${result.message}`;
      console.log(`#${index} ${type} ${result.outcome}${detail}`);
    }
    const rejected = outcomes.filter((outcome) => outcome.result.outcome === 'REJECTED').length;
    console.log(`imported ${outcomes.length - rejected} of ${outcomes.length} commands`);
    return rejected === 0;
  } finally {
    await runtime.close();
  }
}

export const importCommand: CliCommand = { spec, run };
