// Issue 15, item 17: every option a command's --help prints is documented, and every option the docs
// name for that command exists. The docs are where users look; a flag missing there is unusable, and
// a documented flag that is gone is a wrong claim.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { relprop } from './helpers/cli.js';

const ROOT = path.resolve(__dirname, '..');
const DOCS: Record<string, string> = { explain: 'docs/cli.md', compare: 'docs/compare.md', merge: 'docs/compare.md', train: 'docs/tasks.md', serve: 'docs/app.md' };

const flagsIn = (text: string) => new Set([...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => `--${m[1]}`));

/** The flags a doc's option tables name: the first cell of each `| \`--flag …\` |` row. */
function tableFlags(doc: string): Set<string> {
  const out = new Set<string>();
  for (const line of doc.split('\n')) {
    const cell = /^\|\s*([^|]*(?:\\\|[^|]*)*)\|/.exec(line)?.[1];
    if (cell && cell.trim().startsWith('`--')) for (const f of flagsIn(cell)) out.add(f);
  }
  return out;
}

describe('--help and docs/ agree', () => {
  it.each(Object.keys(DOCS))('relprop %s: every --help option is in its doc', async (command) => {
    const r = await relprop(command, '--help');
    expect(r.code).toBe(0);
    const help = flagsIn(r.stdout);
    help.delete('--help');
    expect(help.size).toBeGreaterThan(0);
    const doc = readFileSync(path.join(ROOT, DOCS[command]!), 'utf8');
    const documented = flagsIn(doc);
    expect([...help].filter((f) => !documented.has(f)), `${DOCS[command]} lacks`).toEqual([]);
  });

  it.each(['explain', 'train'])('relprop %s: every option in its doc\'s option table exists', async (command) => {
    const r = await relprop(command, '--help');
    const help = flagsIn(r.stdout);
    const doc = readFileSync(path.join(ROOT, DOCS[command]!), 'utf8');
    const table = tableFlags(doc);
    expect(table.size).toBeGreaterThan(5);
    expect([...table].filter((f) => !help.has(f)), `${DOCS[command]} documents options --help does not have`).toEqual([]);
  });

  it('README links only to files the repository has', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^https?:/.test(l));
    expect(links.length).toBeGreaterThan(5);
    for (const l of links) expect(() => readFileSync(path.join(ROOT, l)), l).not.toThrow();
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
  });
});
