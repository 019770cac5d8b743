// Architecture check. Layers, lowest first: events/ (public contract) < rules/ (pure business rules) <
// workflows/ (activities/ for types only), activities/ (+ prisma/ client) < workers/ (wiring, anything).
// No runtime import cycles. The rules themselves are in test/support/import-graph.ts.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { importCycles, layerViolations, productionLayers, readImports, resolveImport, runtimeClosure, type ProjectImport } from '../support/import-graph';

const root = path.resolve(__dirname, '..', '..');
const skipped = new Set(['node_modules', 'dist', '.stack']);
const isFile = (file: string) => statSync(path.join(root, file), { throwIfNoEntry: false })?.isFile() ?? false;

function sourceFiles(folder: string): string[] {
  if (!existsSync(path.join(root, folder))) return []; // e.g. rules/ before it is created
  return readdirSync(path.join(root, folder), { withFileTypes: true }).flatMap((entry) => {
    const file = `${folder}/${entry.name}`;
    if (entry.isDirectory()) return skipped.has(entry.name) ? [] : sourceFiles(file);
    return /\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [file] : [];
  });
}

function projectImports(): { files: string[]; imports: ProjectImport[] } {
  const files = productionLayers.flatMap(sourceFiles);
  const imports = files.flatMap((from) =>
    readImports(from, readFileSync(path.join(root, from), 'utf8')).flatMap(({ specifier, typeOnly }) => {
      const to = resolveImport(from, specifier, isFile);
      return to ? [{ from, to, typeOnly }] : [];
    }));
  return { files, imports };
}

const report = (title: string, lines: string[]) => `${title} (${lines.length}):\n  ${lines.join('\n  ')}`;

describe('import graph (self-test on a synthetic project)', () => {
  const edge = (from: string, to: string, typeOnly = false): ProjectImport => ({ from, to, typeOnly });

  test('tells type-only imports from the ones that stay at runtime', () => {
    const source = `
      import type { A } from './type-import';
      import { type B, type C } from './type-bindings';
      import { type D, e } from './mixed-bindings';
      import f from './default';
      import './side-effect';
      export type { G } from './type-export';
      export * from './star-export';
      type H = typeof import('./type-query');
      const i = require('./required');
      const j = import('./dynamic');
      import { k } from 'some-package';`;
    expect(readImports('x.ts', source)).toEqual([
      { specifier: './type-import', typeOnly: true },
      { specifier: './type-bindings', typeOnly: true },
      { specifier: './mixed-bindings', typeOnly: false },
      { specifier: './default', typeOnly: false },
      { specifier: './side-effect', typeOnly: false },
      { specifier: './type-export', typeOnly: true },
      { specifier: './star-export', typeOnly: false },
      { specifier: './type-query', typeOnly: true },
      { specifier: './required', typeOnly: false },
      { specifier: './dynamic', typeOnly: false },
      { specifier: 'some-package', typeOnly: false },
    ]);
  });

  test('resolves relative specifiers to project files and leaves packages out', () => {
    const existing = new Set(['events/inbound.ts', 'activities/index.ts']);
    const exists = (file: string) => existing.has(file);
    expect(resolveImport('workflows/a.ts', '../events/inbound', exists)).toBe('events/inbound.ts');
    expect(resolveImport('workflows/a.ts', '../activities', exists)).toBe('activities/index.ts');
    expect(resolveImport('workflows/a.ts', '@temporalio/workflow', exists)).toBeUndefined();
  });

  test('finds a cycle, but not one closed only by a type-only import', () => {
    const chain = [edge('events/a.ts', 'events/b.ts'), edge('events/b.ts', 'events/c.ts')];
    expect(importCycles([...chain, edge('events/c.ts', 'events/a.ts')]))
      .toEqual([['events/a.ts', 'events/b.ts', 'events/c.ts', 'events/a.ts']]);
    expect(importCycles([...chain, edge('events/c.ts', 'events/a.ts', true)])).toEqual([]);
  });

  test('reports imports against the layer direction, type-only ones too', () => {
    expect(layerViolations([
      edge('events/inbound.ts', 'workflows/app-request.ts'),
      edge('rules/plan.ts', 'activities/database.ts', true),
      edge('workflows/app-request.ts', 'activities/index.ts', true),
      edge('workflows/app-request.ts', 'activities/index.ts'),
      edge('activities/mailer.ts', 'workflows/app-request.ts', true),
      edge('activities/database.ts', 'prisma/client/client.ts'),
      edge('workers/temporal-worker.ts', 'workflows/index.ts'),
    ])).toEqual([
      'events/inbound.ts -> workflows/app-request.ts (events/ may import only events/)',
      'rules/plan.ts -> activities/database.ts (rules/ may import only events/, rules/)',
      'workflows/app-request.ts -> activities/index.ts (workflows may import activities/ only with `import type`)',
      'activities/mailer.ts -> workflows/app-request.ts (activities/ may import only events/, rules/, activities/, prisma/)',
    ]);
  });
});

describe('architecture of the codebase', () => {
  const { files, imports } = projectImports();

  test('the scan sees the production code', () => {
    expect(files).toEqual(expect.arrayContaining(['events/inbound.ts', 'workflows/index.ts', 'workers/temporal-worker.ts']));
    expect(imports.length).toBeGreaterThan(0);
  });

  test('imports follow the layers', () => {
    const violations = layerViolations(imports);
    if (violations.length > 0) throw new Error(report('Imports against the layers', violations));
  });

  test('every relative import names a project file', () => {
    const dangling = imports.filter(({ to }) => !isFile(to)).map(({ from, to }) => `${from} -> ${to} (no such file)`);
    if (dangling.length > 0) throw new Error(report('Imports of missing files', dangling));
  });

  // A reusable V8 context evaluates the workflow bundle's modules again for every workflow it runs (and
  // keeps them per cached workflow): zod's schemas cost milliseconds of CPU and memory each time.
  test('workflow code loads no zod', () => {
    const loaded = runtimeClosure('workflows/index.ts', imports);
    expect(loaded).toEqual(expect.arrayContaining(['workflows/app-request.ts', 'rules/app-request.ts']));
    const withZod = loaded.filter((file) =>
      readImports(file, readFileSync(path.join(root, file), 'utf8')).some(({ specifier, typeOnly }) => !typeOnly && /^zod(\/|$)/.test(specifier)));
    if (withZod.length > 0) throw new Error(report('Workflow code that loads zod', withZod));
  });

  test('no runtime import cycles', () => {
    const cycles = importCycles(imports).map((cycle) => cycle.join(' -> '));
    if (cycles.length > 0) throw new Error(report('Import cycles', cycles));
  });
});
