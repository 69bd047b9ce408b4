import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { loadModel } from '../src/core/models/load.js';
import { provenance, provenanceLines, relpropVersion } from '../src/core/provenance.js';
import { GOLDEN_DIR } from './helpers/golden.js';

describe('provenance', () => {
  it('a loaded model knows its folder and the SHA-256 of its weights and config', async () => {
    const dir = path.join(GOLDEN_DIR, 'vit-tiny-a');
    const model = await loadModel(dir);
    try {
      const sha = (f: string) => createHash('sha256').update(readFileSync(path.join(dir, f))).digest('hex');
      expect(model.source?.folder).toBe(path.resolve(dir));
      expect(model.source?.weightsSha256).toBe(sha('weights.safetensors'));
      expect(model.source?.configSha256).toBe(sha('config.json'));
      const p = provenance(model, { method: 'lrp', rules: 'paper', options: { startLayer: 0 }, target: 2 }, new Date('2026-01-02T03:04:05Z'));
      const pkg = JSON.parse(readFileSync(path.resolve(dir, '../../../../package.json'), 'utf8')) as { version: string };
      expect(p.relprop.version).toBe(pkg.version);
      expect(p.model.weightsSha256).toBe(sha('weights.safetensors'));
      expect(p.date).toBe('2026-01-02T03:04:05.000Z');
      expect(p.engine).toMatch(/^tfjs-(wasm|cpu|tensorflow) /);
      const lines = provenanceLines(p);
      expect(lines[0]).toBe(`relprop ${pkg.version}${p.relprop.commit ? ` (${p.relprop.commit.slice(0, 12)})` : ''}`);
      expect(lines).toContain('method lrp, rules paper');
    } finally {
      model.dispose();
    }
  });

  it('reads the git commit from a checkout (as git rev-parse HEAD says), and none outside one', () => {
    const root = path.resolve(GOLDEN_DIR, '../../..');
    let head: string | undefined;
    try {
      head = execFileSync('git', ['-C', root, 'rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      head = undefined;
    }
    // A clone without git metadata (an npm tarball) has no commit to report.
    expect(relpropVersion().commit).toBe(existsSync(path.join(root, '.git')) ? head : undefined);
  });
});
