/**
 * The CLI's promises about its process and files: no death by signal on valid input, nothing written
 * outside the outputs asked for, no stack traces, no overwritten inputs, no half-written outputs.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createRequire } from 'node:module';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, GOLDEN_DIR } from './helpers/golden.js';
import { BERT_DIR } from './helpers/bert.js';
import { relpropWith } from './helpers/cli.js';

const VIT = path.join(GOLDEN_DIR, 'vit-tiny-a');
const hasOrt = (() => {
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
    return true;
  } catch {
    return false;
  }
})();

/** The environment without what would switch ONNX Runtime's telemetry off anyway (CI markers, our own opt-out). */
function telemetryEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const k of ['XDG_CACHE_HOME', 'ORT_DISABLE_TELEMETRY', 'RELPROP_ORT', 'RELPROP_ORT_TELEMETRY', 'CI', 'GITHUB_ACTIONS', 'TF_BUILD', 'GITLAB_CI', 'CIRCLECI', 'TRAVIS', 'JENKINS_URL', 'BUILDKITE', 'TEAMCITY_VERSION', 'APPVEYOR', 'CODEBUILD_BUILD_ID', 'BITBUCKET_BUILD_NUMBER', 'SYSTEM_TEAMFOUNDATIONCOLLECTIONURI']) delete env[k];
  return env;
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...(await listTree(p)));
  }
  return out;
}

let tmp: string;
let textModel: string;

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-cli-safety-'));
  textModel = path.join(tmp, 'bert-with-vocab');
  await fs.mkdir(textModel);
  for (const f of ['config.json', 'weights.safetensors']) await fs.copyFile(path.join(BERT_DIR, f), path.join(textModel, f));
  await fs.copyFile(path.join(FIXTURES, 'text-vocab', 'vocab.txt'), path.join(textModel, 'vocab.txt'));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('ONNX Runtime in the CLI process', () => {
  it('a --text of 40 KB on the command line is explained, not killed by SIGSEGV (1DS telemetry regex on /proc/self/cmdline)', async () => {
    const text = 'good food '.repeat(4000);
    const r = await relpropWith({ env: telemetryEnv(tmp) }, 'explain', '--model', textModel, '--text', text, '--method', 'lrp', '--json');
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: the text has 8002 tokens/);
    expect(JSON.parse(r.stdout).map.shape).toEqual([32]);
  });

  it.skipIf(!hasOrt)('writes nothing under HOME: no device id, no telemetry database in ~/.cache/Microsoft/DeveloperTools', async () => {
    const home = await fs.mkdtemp(path.join(tmp, 'home-'));
    const r = await relpropWith({ env: telemetryEnv(home) }, 'explain', '--model', VIT, '--tensor', path.join(VIT, 'img0.json'), '--method', 'transformer-attribution', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(await listTree(home)).toEqual([]);
  });
});
