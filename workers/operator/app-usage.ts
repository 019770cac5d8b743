import { listPersonalAppUsage } from '../../activities/read-models';
import { helpText, parseArgs, positionals, positiveInteger, type CliCommand, type CommandSpec } from './args';
import { textTable, withDatabase } from './output';

/** `apps usage`: how many users added each catalog app as a personal app, from the database read model. */

const MAX_TOP = 10_000;

const usageSpec: CommandSpec = {
  name: 'apps usage',
  summary: 'how many users have each catalog app as a personal app, most used first',
  details: [
    'Counts personal apps on the workforce side (a tile moved to Okta Personal no longer counts), one per',
    'user and catalog app. Without --org, across every org (a platform operator\u2019s view); with --org, that',
    'org\u2019s users only (what its admins may see). Ties are ordered by catalog app id. A table of catalog',
    'app id, name and users, or one JSON object per app with --json.',
  ],
  options: [
    { name: 'org', value: 'ORG', description: "this org's users only" },
    { name: 'top', value: 'N', description: `the N most used apps (default 20, at most ${MAX_TOP})` },
    { name: 'json', description: 'one JSON object {catalogAppId, name, users} per line instead of a table' },
  ],
  examples: ['apps usage', 'apps usage --org org-acme --top 5', 'apps usage --json'],
};

export const appsUsageCommand: CliCommand = {
  spec: usageSpec,
  async run(args) {
    const parsed = parseArgs(usageSpec, args);
    if (parsed.help) {
      console.log(helpText(usageSpec));
      return true;
    }
    positionals(usageSpec, parsed, []);
    const filter = { orgId: parsed.values.get('org'), limit: positiveInteger(usageSpec, '--top', parsed.values.get('top'), 20, MAX_TOP) };
    const usage = await withDatabase((db) => listPersonalAppUsage(db, filter));
    if (parsed.flags.has('json')) {
      for (const app of usage) console.log(JSON.stringify(app));
    } else if (usage.length === 0) {
      console.log(filter.orgId === undefined ? 'no personal apps yet' : `no personal apps in org ${filter.orgId}`);
    } else {
      console.log(textTable(['CATALOG APP', 'NAME', 'USERS'], usage.map((app) => [app.catalogAppId, app.name ?? '-', String(app.users)])));
    }
    return true;
  },
};
