/**
 * The project's import graph and its architecture rules. Layers, lowest first:
 *   events/     the public contract (message shapes, topics): imports only events/
 *   rules/      pure business rules: imports events/ and rules/
 *   workflows/  deterministic orchestration: events/, rules/, workflows/, and activities/ for types only
 *   activities/ side effects: events/, rules/, activities/ and the generated prisma/ client
 *   workers/    process wiring: anything
 * Paths are relative to the project root, with forward slashes. Packages are not part of the graph.
 */
import path from 'node:path';
import ts from 'typescript';

export interface SourceImport { specifier: string; typeOnly: boolean }
export interface ProjectImport { from: string; to: string; typeOnly: boolean }

const allOf = <T>(items: readonly T[], test: (item: T) => boolean) => items.length > 0 && items.every(test);

/** Every module specifier a source file names, and whether the import is erased at compile time. */
export function readImports(fileName: string, sourceText: string): SourceImport[] {
  const found: SourceImport[] = [];
  const note = (node: ts.Node | undefined, typeOnly: boolean) => {
    if (node && ts.isStringLiteralLike(node)) found.push({ specifier: node.text, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const bindings = clause?.namedBindings;
      note(node.moduleSpecifier, !!clause && (clause.phaseModifier === ts.SyntaxKind.TypeKeyword
        || (!clause.name && !!bindings && ts.isNamedImports(bindings) && allOf(bindings.elements, (e) => e.isTypeOnly))));
    } else if (ts.isExportDeclaration(node)) {
      const clause = node.exportClause;
      note(node.moduleSpecifier, node.isTypeOnly || (!!clause && ts.isNamedExports(clause) && allOf(clause.elements, (e) => e.isTypeOnly)));
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      note(node.moduleReference.expression, node.isTypeOnly);
    } else if (ts.isCallExpression(node)
      && (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))) {
      note(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      note(node.argument.literal, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(fileName, sourceText, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS));
  return found;
}

/** The project file a relative specifier names (`./x` -> x.ts or x/index.ts); undefined for packages. */
export function resolveImport(from: string, specifier: string, fileExists: (file: string) => boolean): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier)).replace(/\.js$/, '');
  const candidates = [base, `${base}.ts`, `${base}.tsx`, `${base}.d.ts`, `${base}/index.ts`, `${base}/index.tsx`];
  return candidates.find(fileExists) ?? `${base}.ts`; // a missing file still gets a layer (and is reported)
}

type Layer = 'events' | 'rules' | 'workflows' | 'activities' | 'workers';
const allowedLayers: Record<Layer, string[] | 'anything'> = {
  events: ['events'],
  rules: ['events', 'rules'],
  workflows: ['events', 'rules', 'workflows'],
  activities: ['events', 'rules', 'activities', 'prisma'],
  workers: 'anything',
};
export const productionLayers = Object.keys(allowedLayers) as Layer[];

export const layerOf = (file: string): string => file.split('/')[0] ?? '';

/** Every import that goes against the layer rules, once each, as `from -> to (rule)`. */
export function layerViolations(imports: readonly ProjectImport[]): string[] {
  return [...new Set(imports.flatMap(({ from, to, typeOnly }) => {
    const source = layerOf(from) as Layer;
    const allowed = allowedLayers[source];
    const target = layerOf(to);
    if (allowed === undefined || allowed === 'anything' || allowed.includes(target)) return [];
    if (source === 'workflows' && target === 'activities' && typeOnly) return [];
    const rule = source === 'workflows' && target === 'activities'
      ? 'workflows may import activities/ only with `import type`'
      : `${source}/ may import only ${allowed.map((layer) => `${layer}/`).join(', ')}`;
    return [`${from} -> ${to} (${rule})`];
  }))];
}

/**
 * Import cycles over the imports that remain at runtime (type-only imports are erased), each as a path
 * that returns to its start. Every tangle of files that import each other yields at least one cycle.
 */
export function importCycles(imports: readonly ProjectImport[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to, typeOnly } of imports) {
    if (!typeOnly) next.set(from, [...new Set([...(next.get(from) ?? []), to])].sort());
  }
  const cycles = new Map<string, string[]>();
  const done = new Set<string>();
  const trail: string[] = [];
  const walk = (file: string): void => {
    trail.push(file);
    for (const target of next.get(file) ?? []) {
      const start = trail.indexOf(target);
      if (start >= 0) {
        const loop = trail.slice(start);
        const first = loop.indexOf([...loop].sort()[0]!); // one spelling per cycle, whatever file it was met from
        const cycle = [...loop.slice(first), ...loop.slice(0, first)];
        cycles.set(cycle.join(' -> '), [...cycle, cycle[0]!]);
      } else if (!done.has(target)) walk(target);
    }
    trail.pop();
    done.add(file);
  };
  for (const file of [...next.keys()].sort()) if (!done.has(file)) walk(file);
  return [...cycles.values()];
}

/** The project files `start` loads at runtime, itself included (type-only imports are erased). */
export function runtimeClosure(start: string, imports: readonly ProjectImport[]): string[] {
  const reached = new Set([start]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const { from, to, typeOnly } of imports) {
      if (!typeOnly && reached.has(from) && !reached.has(to)) {
        reached.add(to);
        grew = true;
      }
    }
  }
  return [...reached].sort();
}
