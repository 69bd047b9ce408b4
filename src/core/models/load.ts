/**
 * Load a model folder: `config.json` + one or more `*.safetensors` (+ `preprocessor_config.json`).
 * Dispatches on `model_type` to the family's own file.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CheckpointError } from '../errors.js';
import { tidy } from '../ops.js';
import { readSafetensors, type SafetensorsFile } from '../io/safetensors.js';
import { readPreprocessing } from '../image/preprocessing-config.js';
import { ensureBackend } from '../backend.js';
import { WeightReader } from './weights.js';
import { ViTModel, loadViTWeights, parseViTConfig } from './vit.js';
import { BertModel, loadBertWeights, parseBertConfig } from './bert.js';
import { GPT2Model, loadGPT2Weights, parseGPT2Config, tokenLabels } from './gpt2.js';
import { loadBpeTokenizer } from '../text/bpe.js';
import { loadModelTokenizer } from '../text-inputs.js';
import type { ClassifierModel } from './types.js';
import { modelSource } from '../provenance.js';

type Json = Record<string, unknown>;

export interface LoadOptions {
  /** Called with non-fatal findings (e.g. tensors in the checkpoint that no layer uses). */
  readonly warn?: (message: string) => void;
}

async function readJson(file: string, required: boolean): Promise<Json | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(`cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`not valid JSON: ${(err as Error).message}`, file);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new CheckpointError('expected a JSON object', file);
  return value as Json;
}

export const SUPPORTED_MODEL_TYPES = ['vit', 'deit', 'bert', 'roberta', 'distilbert', 'gpt2'] as const;

export async function loadModel(dir: string, options: LoadOptions = {}): Promise<ClassifierModel> {
  await ensureBackend();
  let stat;
  try {
    stat = await fs.stat(dir);
  } catch {
    throw new CheckpointError('model folder not found', dir);
  }
  if (!stat.isDirectory()) throw new CheckpointError('expected a model folder holding config.json and *.safetensors', dir);

  const configFile = path.join(dir, 'config.json');
  const config = (await readJson(configFile, true))!;
  const entries = (await fs.readdir(dir)).filter((f) => f.endsWith('.safetensors')).sort();
  if (entries.length === 0) throw new CheckpointError('no *.safetensors file in the model folder', dir);
  const files: SafetensorsFile[] = [];
  for (const f of entries) files.push(await readSafetensors(path.join(dir, f)));
  const reader = new WeightReader(files, configFile);

  const modelType = String(config['model_type'] ?? (typeof config['architecture'] === 'string' ? 'vit' : ''));
  const name = path.basename(path.resolve(dir));
  let model: ClassifierModel;
  switch (modelType) {
    case 'vit':
    case 'deit': {
      const { config: cfg, layout } = parseViTConfig(config, reader, configFile);
      // tidy: a load that fails half-way disposes the tensors it had already made.
      const weights = tidy(() => loadViTWeights(cfg, layout, reader));
      const preprocessing = await readPreprocessing(dir, config, cfg.imageSize);
      model = new ViTModel(name, cfg, weights, readLabels(config, cfg.numClasses), preprocessing);
      break;
    }
    case 'bert':
    case 'roberta':
    case 'distilbert': {
      const cfg = parseBertConfig(config, reader, configFile);
      const weights = tidy(() => loadBertWeights(cfg, reader));
      const bert = new BertModel(name, cfg, weights, readLabels(config, cfg.numClasses));
      try {
        bert.tokenizer = await loadModelTokenizer(dir);
      } catch (err) {
        bert.dispose();
        throw err;
      }
      if (bert.tokenizer) bert.special = { mask: bert.tokenizer.special.mask, unk: bert.tokenizer.special.unk };
      model = bert;
      break;
    }
    case 'gpt2': {
      const cfg = parseGPT2Config(config, configFile);
      // The tokenizer first: it names the labels (each vocabulary entry's text).
      const tokenizer = await loadBpeTokenizer(dir);
      const weights = tidy(() => loadGPT2Weights(cfg, reader, configFile));
      const gpt2 = new GPT2Model(name, cfg, weights, tokenLabels(tokenizer, cfg.vocabSize));
      gpt2.tokenizer = tokenizer;
      model = gpt2;
      break;
    }
    default:
      throw new CheckpointError(
        `unknown model_type '${modelType}' (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`,
        configFile,
      );
  }
  try {
    model.source = await modelSource(dir, configFile, entries.map((f) => path.join(dir, f)));
  } catch (err) {
    model.dispose();
    throw new CheckpointError(`cannot hash the model's files (${(err as NodeJS.ErrnoException).code ?? String(err)})`, dir);
  }
  const unused = reader.unused();
  if (unused.length > 0 && options.warn) {
    options.warn(`${dir}: ${unused.length} tensor(s) in the checkpoint are not used: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''}`);
  }
  return model;
}

export function readLabels(config: Json, numClasses: number): string[] {
  const labels = Array.from({ length: numClasses }, (_, i) => `class ${i}`);
  const id2label = config['id2label'];
  if (id2label && typeof id2label === 'object') {
    for (const [k, v] of Object.entries(id2label as Json)) {
      const i = Number(k);
      if (Number.isInteger(i) && i >= 0 && i < numClasses && typeof v === 'string') labels[i] = v;
    }
  }
  return labels;
}
