/**
 * The CLI's commands and their arguments: each command declares its options once, and the same
 * declaration parses its arguments (an unknown option is an error naming it) and prints its `--help`.
 */

/** A mistake in the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The usage of the command the mistake was made in (the CLI's overview when unknown). */
    readonly usage?: string,
  ) {
    super(message);
  }
}

export interface OptionSpec {
  /** Without the dashes: `org` for `--org`. */
  name: string;
  /** The value's placeholder (`ISO`, `N`); absent for a flag that takes no value. */
  value?: string;
  description: string;
}

export interface CommandSpec {
  /** As typed after `npm run cli --`: `requests find`. */
  name: string;
  /** Positional arguments as the usage line shows them: `<requestId>`. */
  args?: string;
  summary: string;
  /** Longer explanation, shown by `--help` only. */
  details?: string[];
  options?: OptionSpec[];
  examples: string[];
}

export interface ParsedArgs {
  positionals: string[];
  /** Options given with a value, by name (the last one wins). */
  values: Map<string, string>;
  /** Flags given (options without a value). */
  flags: Set<string>;
  help: boolean;
}

export const PROGRAM = 'npm run cli --';

const HELP: OptionSpec = { name: 'help', description: 'show this help' };

function optionLabel(option: OptionSpec): string {
  return option.value ? `--${option.name} ${option.value}` : `--${option.name}`;
}

export function usageLine(spec: CommandSpec): string {
  const options = (spec.options ?? []).length > 0 ? ' [options]' : '';
  return `${PROGRAM} ${spec.name}${spec.args ? ` ${spec.args}` : ''}${options}`;
}

/** The `--help` text: usage, what it does, its options, examples. */
export function helpText(spec: CommandSpec): string {
  const options = [...(spec.options ?? []), HELP];
  const width = Math.max(...options.map((option) => optionLabel(option).length));
  return [
    `usage: ${usageLine(spec)}`,
    '',
    spec.summary,
    ...(spec.details && spec.details.length > 0 ? ['', ...spec.details] : []),
    '',
    'options:',
    ...options.map((option) => `  ${optionLabel(option).padEnd(width)}  ${option.description}`),
    '',
    spec.examples.length > 1 ? 'examples:' : 'example:',
    ...spec.examples.map((example) => `  ${PROGRAM} ${example}`),
  ].join('\n');
}

/**
 * Parses `--name value`, `--name=value`, flags and positionals against the spec. `--` ends the
 * options. An option the command does not have, a value missing or given to a flag, is a UsageError.
 */
export function parseArgs(spec: CommandSpec, args: readonly string[]): ParsedArgs {
  const byName = new Map((spec.options ?? []).map((option) => [option.name, option]));
  const parsed: ParsedArgs = { positionals: [], values: new Map(), flags: new Set(), help: false };
  const fail = (message: string): never => {
    throw new UsageError(message, helpText(spec));
  };
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    if (arg === '--') {
      parsed.positionals.push(...args.slice(index + 1));
      break;
    }
    if (arg === '--help' || arg === '-h') {
      parsed.help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      parsed.positionals.push(arg);
      continue;
    }
    const equals = arg.indexOf('=');
    const name = (equals === -1 ? arg : arg.slice(0, equals)).replace(/^--?/, '');
    const option = arg.startsWith('--') ? byName.get(name) : undefined;
    if (!option) fail(`unknown option ${equals === -1 ? arg : arg.slice(0, equals)} for ${spec.name}`);
    if (!option!.value) {
      if (equals !== -1) fail(`--${name} takes no value`);
      parsed.flags.add(name);
      continue;
    }
    let value: string | undefined;
    if (equals !== -1) value = arg.slice(equals + 1);
    else {
      value = args[index + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) fail(`--${name} needs a value (${option!.value})`);
      index += 1;
    }
    parsed.values.set(name, value!);
  }
  return parsed;
}

/** Exactly `names.length` positionals, or a UsageError saying what is missing or extra. */
export function positionals(spec: CommandSpec, parsed: ParsedArgs, names: readonly string[], optional: readonly string[] = []): string[] {
  const given = parsed.positionals;
  if (given.length < names.length) throw new UsageError(`${spec.name} needs ${names.slice(given.length).join(' and ')}`, helpText(spec));
  if (given.length > names.length + optional.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(given[names.length + optional.length])} for ${spec.name}`, helpText(spec));
  }
  return given;
}

/** A whole number of at least 1 (and at most `max`), or a UsageError naming the option. */
export function positiveInteger(spec: CommandSpec, what: string, text: string | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1 || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? 'a positive whole number' : `a whole number from 1 to ${max}`;
    throw new UsageError(`${what} must be ${range}`, helpText(spec));
  }
  return value;
}

/** An ISO 8601 timestamp (a date alone means its midnight UTC), or a UsageError naming the option. */
export function isoTime(spec: CommandSpec, what: string, text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const time = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(time.getTime())) throw new UsageError(`${what} must be an ISO 8601 time such as 2026-11-29 or 2026-11-29T08:00:00Z, not ${JSON.stringify(text)}`, helpText(spec));
  return time;
}

/** A command of the CLI: its declaration and what runs it (true: success, false: exit code 1). */
export interface CliCommand {
  spec: CommandSpec;
  run(args: readonly string[]): Promise<boolean>;
}

/** A command with subcommands (`requests find`, `requests timeline`, ...), and its `--help` listing them. */
export function commandGroup(name: string, summary: string, subcommands: readonly CliCommand[]): CliCommand {
  const width = Math.max(...subcommands.map((command) => command.spec.name.length));
  const spec: CommandSpec = {
    name,
    args: '<subcommand> ...',
    summary,
    details: [
      'subcommands:',
      ...subcommands.map((command) => `  ${command.spec.name.padEnd(width)}  ${command.spec.summary}`),
      '',
      `${PROGRAM} ${name} <subcommand> --help shows a subcommand's options.`,
    ],
    examples: subcommands.slice(0, 2).map((command) => command.spec.examples[0]!),
  };
  return {
    spec,
    async run(args) {
      const [first, ...rest] = args;
      const sub = subcommands.find((command) => command.spec.name === `${name} ${first}`);
      if (sub) return sub.run(rest);
      if (first === '--help' || first === '-h') {
        console.log(helpText(spec));
        return true;
      }
      if (first === undefined) throw new UsageError(`${name} needs a subcommand`, helpText(spec));
      throw new UsageError(`unknown subcommand ${name} ${first}`, helpText(spec));
    },
  };
}
