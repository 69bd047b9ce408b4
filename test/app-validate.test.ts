import { describe, it, expect } from 'vitest';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { API_METHODS, MAX_IMAGE_BYTES, MAX_TEXT_CHARS } from '../src/shared/api.js';
import { base64DecodedLength, isAbsolutePath, isApiMethod, validateFolderPath, validateRequest, ValidationError, type KnownModel, type ValidationContext } from '../src/shared/validate.js';

const folder = mkdtempSync(path.join(os.tmpdir(), 'relprop-validate-'));

const ctx: ValidationContext = {
  methodIds: ['transformer-attribution', 'lrp', 'rollout'],
  ruleSetIds: ['paper', 'baseline'],
  models: new Map<string, KnownModel>([
    ['image-softmax', { kind: 'image', numClasses: 4 }],
    ['text-softmax', { kind: 'text', numClasses: 2 }],
    ['user/gone', { kind: 'image', numClasses: null, problem: 'the folder no longer exists' }],
  ]),
  isDirectory: (p) => {
    try {
      return statSync(p).isDirectory();
    } catch {
      return false;
    }
  },
  isFile: (p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  },
};

const PNG_B64 = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).toString('base64');
const ID = '0f7c3a52-1d7e-4c43-9d55-5c1b6f0b8a11';

function refused(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a ValidationError').toBeInstanceOf(ValidationError);
  expect((caught as Error).message).toMatch(message);
  expect((caught as ValidationError).code).toBe('bad-request');
}

describe('the API method list', () => {
  it('knows every method and nothing else', () => {
    for (const m of API_METHODS) expect(isApiMethod(m)).toBe(true);
    expect(isApiMethod('constructor')).toBe(false);
    expect(isApiMethod('__proto__')).toBe(false);
    expect(isApiMethod('runShell')).toBe(false);
  });
});

describe('argument-less methods', () => {
  it('accept nothing, null or {}, and refuse content', () => {
    expect(validateRequest('version', undefined, ctx)).toBeUndefined();
    expect(validateRequest('listModels', null, ctx)).toBeUndefined();
    expect(validateRequest('listMethods', {}, ctx)).toBeUndefined();
    refused(() => validateRequest('listModels', { path: '/etc' }, ctx), /takes no argument/);
    refused(() => validateRequest('version', 'x', ctx), /takes no argument/);
  });
});

describe('addModel: folder paths', () => {
  it('accepts an absolute existing folder', () => {
    expect(validateRequest('addModel', folder, ctx)).toBe(folder);
  });
  it('refuses relative paths, NUL bytes, missing folders, files, non-strings and huge strings', () => {
    refused(() => validateRequest('addModel', 'models/image-softmax', ctx), /must be absolute/);
    refused(() => validateRequest('addModel', '../../etc', ctx), /must be absolute/);
    refused(() => validateRequest('addModel', `${folder}\u0000/x`, ctx), /NUL byte/);
    refused(() => validateRequest('addModel', path.join(folder, 'does-not-exist'), ctx), /no such folder/);
    refused(() => validateRequest('addModel', path.join(process.cwd(), 'package.json'), ctx), /no such folder/);
    refused(() => validateRequest('addModel', { path: folder }, ctx), /must be a string/);
    refused(() => validateRequest('addModel', '', ctx), /empty/);
    refused(() => validateRequest('addModel', '/' + 'a'.repeat(5000), ctx), /too long/);
  });
  it('recognises absolute paths on POSIX and Windows only', () => {
    expect(isAbsolutePath('/home/me/model')).toBe(true);
    expect(isAbsolutePath('C:\\models\\vit')).toBe(true);
    expect(isAbsolutePath('\\\\server\\share\\vit')).toBe(true);
    expect(isAbsolutePath('C:models')).toBe(false);
    expect(isAbsolutePath('~/models')).toBe(false);
    expect(isAbsolutePath('file:///models')).toBe(false);
    expect(validateFolderPath(folder, ctx)).toBe(folder);
  });
});

describe('openImage', () => {
  it('accepts a known image model, a file name and base64 bytes', () => {
    expect(validateRequest('openImage', { modelId: 'image-softmax', name: 'cat.png', bytes: PNG_B64 }, ctx)).toEqual({ modelId: 'image-softmax', name: 'cat.png', bytes: PNG_B64 });
  });
  it('refuses an oversized file before looking at its content', () => {
    const size = MAX_IMAGE_BYTES + 3;
    const b64 = 'A'.repeat(Math.ceil(size / 3) * 4);
    expect(base64DecodedLength(b64)).toBeGreaterThan(MAX_IMAGE_BYTES);
    refused(() => validateRequest('openImage', { modelId: 'image-softmax', name: 'big.png', bytes: b64 }, ctx), /too large \(32\.0 MB; at most 32 MB\)/);
  });
  it('accepts a file of exactly the limit', () => {
    // 32 MiB = 3·11184810 + 2 bytes: full groups, then one group of two bytes with one '='.
    const b64 = 'A'.repeat(Math.floor(MAX_IMAGE_BYTES / 3) * 4) + 'AAA=';
    expect(base64DecodedLength(b64)).toBe(MAX_IMAGE_BYTES);
    expect(Buffer.from(b64, 'base64').length).toBe(MAX_IMAGE_BYTES);
    expect(() => validateRequest('openImage', { modelId: 'image-softmax', name: 'edge.png', bytes: b64 }, ctx)).not.toThrow();
  });
  it('refuses bad base64, empty files, bad names, unknown fields, unknown and wrong-kind models', () => {
    refused(() => validateRequest('openImage', { modelId: 'image-softmax', name: 'a.png', bytes: 'not base64!' }, ctx), /not valid base64/);
    refused(() => validateRequest('openImage', { modelId: 'image-softmax', name: 'a.png', bytes: '' }, ctx), /empty/);
    refused(() => validateRequest('openImage', { modelId: 'image-softmax', name: 'a.png', bytes: [1, 2, 3] }, ctx), /base64 string/);
    refused(() => validateRequest('openImage', { modelId: 'image-softmax', name: 'a\nb.png', bytes: PNG_B64 }, ctx), /control characters/);
    refused(() => validateRequest('openImage', { modelId: 'image-softmax', name: 'x'.repeat(300), bytes: PNG_B64 }, ctx), /name is too long/);
    refused(() => validateRequest('openImage', { modelId: 'image-softmax', name: 'a.png', bytes: PNG_B64, path: '/etc/passwd' }, ctx), /unknown field 'path'/);
    refused(() => validateRequest('openImage', { modelId: 'vit-huge', name: 'a.png', bytes: PNG_B64 }, ctx), /unknown model 'vit-huge' \(known: image-softmax, text-softmax, user\/gone\)/);
    refused(() => validateRequest('openImage', { modelId: 'text-softmax', name: 'a.png', bytes: PNG_B64 }, ctx), /takes text, not images/);
    refused(() => validateRequest('openImage', { modelId: 'user/gone', name: 'a.png', bytes: PNG_B64 }, ctx), /cannot be used: the folder no longer exists/);
    refused(() => validateRequest('openImage', null, ctx), /must be an object/);
    refused(() => validateRequest('openImage', [PNG_B64], ctx), /must be an object, got an array/);
  });
});

describe('openText', () => {
  it('accepts text up to the limit and refuses longer, empty or NUL-bearing text', () => {
    expect(validateRequest('openText', { modelId: 'text-softmax', text: 'the food was not bad' }, ctx).text).toBe('the food was not bad');
    expect(() => validateRequest('openText', { modelId: 'text-softmax', text: 'a'.repeat(MAX_TEXT_CHARS) }, ctx)).not.toThrow();
    refused(() => validateRequest('openText', { modelId: 'text-softmax', text: 'a'.repeat(MAX_TEXT_CHARS + 1) }, ctx), /too long \(100001 characters; at most 100000\)/);
    refused(() => validateRequest('openText', { modelId: 'text-softmax', text: '   \n' }, ctx), /empty/);
    refused(() => validateRequest('openText', { modelId: 'text-softmax', text: 'a\u0000b' }, ctx), /NUL/);
    refused(() => validateRequest('openText', { modelId: 'text-softmax', text: 42 }, ctx), /must be a string, got number 42/);
    refused(() => validateRequest('openText', { modelId: 'image-softmax', text: 'hello' }, ctx), /takes images, not text/);
  });
});

describe('explain and compare', () => {
  it('accept registered methods, in-range targets and known options', () => {
    const req = validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', target: 3, options: { rules: 'baseline', startLayer: 1, colormap: 'viridis', alpha: 0.3 } }, ctx);
    expect(req).toEqual({ inputId: ID, modelId: 'image-softmax', method: 'lrp', target: 3, options: { rules: 'baseline', startLayer: 1, colormap: 'viridis', alpha: 0.3 } });
    expect(validateRequest('compare', { inputId: ID, modelId: 'text-softmax', methods: ['rollout', 'lrp'] }, ctx).methods).toEqual(['rollout', 'lrp']);
  });
  it('refuse unknown method ids with the list of available ones', () => {
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'grad-cam++' }, ctx), /unknown method "grad-cam\+\+" \(available: transformer-attribution, lrp, rollout\)/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'toString' }, ctx), /unknown method/);
    refused(() => validateRequest('compare', { inputId: ID, modelId: 'image-softmax', methods: ['lrp', 'shap'] }, ctx), /unknown method "shap"/);
  });
  it('refuse targets outside the model, bad options, bad ids, duplicates and empty lists', () => {
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', target: 4 }, ctx), /target \(model 'image-softmax' has classes 0\.\.3\) must be between 0 and 3, got 4/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', target: 1.5 }, ctx), /must be an integer/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { rules: 'zennit' } }, ctx), /unknown rule set "zennit"/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { steps: 0 } }, ctx), /options\.steps must be an integer ≥ 1, got 0/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { alpha: 2 } }, ctx), /alpha must be a number between 0 and 1/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { colormap: 'rainbow' } }, ctx), /unknown colormap/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { eval: '1' } }, ctx), /unknown field 'eval'/);
    refused(() => validateRequest('explain', { inputId: '../../etc/passwd', modelId: 'image-softmax', method: 'lrp' }, ctx), /inputId .* is not a valid id/);
    refused(() => validateRequest('compare', { inputId: ID, modelId: 'image-softmax', methods: ['lrp', 'lrp'] }, ctx), /listed twice/);
    refused(() => validateRequest('compare', { inputId: ID, modelId: 'image-softmax', methods: [] }, ctx), /non-empty array/);
  });
});

describe('contrastive targets', () => {
  it('take another class of the model, never the target itself', () => {
    expect(validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', target: 1, contrast: 2 }, ctx)).toMatchObject({ target: 1, contrast: 2 });
    expect(validateRequest('compare', { inputId: ID, modelId: 'image-softmax', methods: ['lrp'], contrast: 0 }, ctx)).toMatchObject({ contrast: 0 });
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', target: 2, contrast: 2 }, ctx), /contrast 2 is the target itself/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', contrast: 9 }, ctx), /has classes 0\.\.3\) must be between 0 and 3, got 9/);
    refused(() => validateRequest('compare', { inputId: ID, modelId: 'image-softmax', methods: ['lrp'], contrast: '1' }, ctx), /must be an integer/);
  });
});

describe('jobs', () => {
  it('take well-formed ids only', () => {
    expect(validateRequest('job', { id: ID, from: 2 }, ctx)).toEqual({ id: ID, from: 2 });
    expect(validateRequest('cancel', ID, ctx)).toBe(ID);
    refused(() => validateRequest('job', { id: 'a b' }, ctx), /not a valid id/);
    refused(() => validateRequest('job', { id: ID, from: -1 }, ctx), /between 0/);
    refused(() => validateRequest('cancel', { id: ID }, ctx), /must be a string/);
  });
});

describe('method options of the newer methods and the Layers view', () => {
  it('accept in-range SmoothGrad, LRP-γ and layers options and refuse the rest', () => {
    const options = { samples: 8, noise: 0.2, seed: 7, gamma: 0.25, layers: true };
    expect(validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options }, ctx).options).toEqual(options);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { samples: 0 } }, ctx), /options\.samples must be an integer ≥ 1, got 0/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { noise: -1 } }, ctx), /options\.noise must be a number ≥ 0, got -1/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { gamma: Number.NaN } }, ctx), /options\.gamma must be a number ≥ 0, got NaN/);
    refused(() => validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { layers: 'yes' } }, ctx), /layers must be true or false/);
  });
});

describe('evaluate: data paths, methods and measures', () => {
  const sentences = path.join(folder, 'sentences.txt');
  writeFileSync(sentences, 'the food was good\n');
  const base = { modelId: 'image-softmax', methods: ['transformer-attribution', 'rollout'], metrics: ['perturbation', 'localisation'] };

  it('accepts a generated task of the model kind, a folder, or a .txt/.jsonl file', () => {
    expect(validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'image', count: 20 } }, ctx)).toEqual({ ...base, data: { kind: 'task', task: 'image', count: 20 } });
    expect(validateRequest('evaluate', { ...base, data: { kind: 'path', path: folder, masks: folder }, removal: 'blur', restart: true }, ctx)).toMatchObject({ data: { kind: 'path', path: folder, masks: folder }, removal: 'blur', restart: true });
    expect(validateRequest('evaluate', { ...base, modelId: 'text-softmax', data: { kind: 'path', path: sentences }, removal: 'unk' }, ctx).data).toEqual({ kind: 'path', path: sentences });
  });

  it('refuses relative, missing or non-data paths, tasks of the other kind, unknown metrics and methods, and sizes out of range', () => {
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'path', path: 'photos/' } }, ctx), /must be absolute/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'path', path: path.join(folder, 'nope') } }, ctx), /no such folder or file/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'path', path: path.join(process.cwd(), 'package.json') } }, ctx), /must be \.txt .* or \.jsonl/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'path', path: `${folder}\u0000` } }, ctx), /NUL byte/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'path', path: folder, masks: 'masks' } }, ctx), /masks folder must be absolute/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'text', count: 5 } }, ctx), /task 'text' makes text, and model 'image-softmax' takes images/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'image', count: 0 } }, ctx), /count must be between 1 and 100000/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'image', count: 1e9 } }, ctx), /count must be between 1 and 100000/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'url', path: 'http://x' } }, ctx), /data must be/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'image', count: 5 }, metrics: ['accuracy'] }, ctx), /unknown metric "accuracy"/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'image', count: 5 }, metrics: [] }, ctx), /metrics must be a non-empty array/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'image', count: 5 }, methods: ['shap'] }, ctx), /unknown method "shap"/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'image', count: 5 }, removal: 'unk' }, ctx), /removal 'unk' is for text/);
    refused(() => validateRequest('evaluate', { ...base, data: { kind: 'task', task: 'image', count: 5 }, out: '/tmp/x' }, ctx), /unknown field 'out'/);
  });
});

describe('exportReport and evaluation ids', () => {
  it('take a job or an evaluation id and a format', () => {
    expect(validateRequest('exportReport', { source: { kind: 'job', id: ID }, format: 'pdf' }, ctx)).toEqual({ source: { kind: 'job', id: ID }, format: 'pdf' });
    expect(validateRequest('evaluation', ID, ctx)).toBe(ID);
    refused(() => validateRequest('exportReport', { source: { kind: 'file', id: ID }, format: 'html' }, ctx), /unknown report source "file"/);
    refused(() => validateRequest('exportReport', { source: { kind: 'job', id: '../x' }, format: 'html' }, ctx), /not a valid id/);
    refused(() => validateRequest('exportReport', { source: { kind: 'job', id: ID }, format: 'docx' }, ctx), /unknown report format "docx"/);
    refused(() => validateRequest('exportReport', { source: { kind: 'job', id: ID }, format: 'html', path: '/etc/x' }, ctx), /unknown field 'path'/);
    refused(() => validateRequest('pickDataPath', { path: '/' }, ctx), /takes no argument/);
  });
});
