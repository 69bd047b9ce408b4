/** Loads the golden ViT and BERT once per test file (vitest hooks) and frees them afterwards. */
import { beforeAll, afterAll } from 'vitest';
import path from 'node:path';
import { createRequire } from 'node:module';
import { loadModel } from '../../src/core/models/load.js';
import type { ClassifierModel } from '../../src/core/models/types.js';
import { GOLDEN_DIR } from './golden.js';
import { BERT_DIR } from './bert.js';

export function useGoldenModels(): { vit: ClassifierModel; bert: ClassifierModel } {
  const models = {} as { vit: ClassifierModel; bert: ClassifierModel };
  beforeAll(async () => {
    models.vit = await loadModel(path.join(GOLDEN_DIR, 'vit-tiny-a'));
    models.bert = await loadModel(BERT_DIR);
  });
  afterAll(() => {
    models.vit?.dispose();
    models.bert?.dispose();
  });
  return models;
}

/** Whether onnxruntime-node (an optional dependency) is installed: its tests run only then. */
export const ortInstalled = (() => {
  try {
    createRequire(import.meta.url).resolve('onnxruntime-node');
    return true;
  } catch {
    return false;
  }
})();
