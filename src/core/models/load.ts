/**
 * Load a model folder: `config.json` + one or more `*.safetensors` (+ `preprocessor_config.json`).
 * Dispatches on `model_type` to the family's own file.
 */
import { readJson } from '../io/json-file.js';
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
import { buildLlama, LLAMA_MODEL_TYPES } from './llama.js';
import { loadBpeTokenizer } from '../text/bpe.js';
import { loadHfTokenizer } from '../text/hf-tokenizer.js';
import { loadModelTokenizer } from '../text-inputs.js';
import type { ClassifierModel } from './types.js';
import { modelSource } from '../provenance.js';

type Json = Record<string, unknown>;

export interface LoadOptions {
  /**
   * Called with non-fatal findings: tensors in the checkpoint that no layer uses, and values neither
   * the config nor the weights state ("inferred …", also in model.inferred), each saying how to set it.
   */
  readonly warn?: (message: string) => void;
}


export const SUPPORTED_MODEL_TYPES = ['vit', 'deit', 'bert', 'roberta', 'distilbert', 'gpt2', ...LLAMA_MODEL_TYPES] as const;

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
  let reader: WeightReader;
  try {
    for (const f of entries) files.push(await readSafetensors(path.join(dir, f)));
    await checkShardIndex(dir, entries, files);
    reader = new WeightReader(files, configFile);
  } catch (err) {
    for (const f of files) f.close();
    throw err;
  }
  try {
    return await build(dir, config, configFile, entries, reader, options);
  } finally {
    reader.close();
  }
}

/**
 * A sharded checkpoint's `model.safetensors.index.json` (HF's `weight_map`: tensor → shard) must
 * agree with the shards present: a missing shard, or a tensor in another shard than the index
 * says, means the folder was copied incompletely or mixes two checkpoints.
 */
async function checkShardIndex(dir: string, entries: readonly string[], files: readonly SafetensorsFile[]): Promise<void> {
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  const index = await readJson(indexFile, false);
  if (!index) return;
  const map = index['weight_map'];
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new CheckpointError("has no 'weight_map' object", indexFile);
  const byFile = new Map(entries.map((e, i) => [e, files[i]!]));
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    const file = typeof shard === 'string' ? byFile.get(shard) : undefined;
    if (!file) throw new CheckpointError(`lists tensor '${tensor}' in shard ${JSON.stringify(shard)}, which is not in the folder`, indexFile);
    if (!file.tensors.has(tensor)) throw new CheckpointError(`lists tensor '${tensor}' in ${String(shard)}, which does not hold it`, indexFile);
  }
}

async function build(dir: string, config: Json, configFile: string, entries: readonly string[], reader: WeightReader, options: LoadOptions): Promise<ClassifierModel> {

  const modelType = String(config['model_type'] ?? (typeof config['architecture'] === 'string' ? 'vit' : ''));
  const name = path.basename(path.resolve(dir));
  const inferred: string[] = [];
  let model: ClassifierModel;
  switch (modelType) {
    case 'vit':
    case 'deit': {
      const { config: cfg, layout, inferred: notes } = parseViTConfig(config, reader, configFile);
      inferred.push(...notes);
      const labels = readLabels(config, cfg.numClasses, configFile, reader.filesLabel());
      // tidy: a load that fails half-way disposes the tensors it had already made.
      const weights = tidy(() => loadViTWeights(cfg, layout, reader));
      const preprocessing = await readPreprocessing(dir, config, cfg.imageSize);
      model = new ViTModel(name, cfg, weights, labels, preprocessing);
      break;
    }
    case 'bert':
    case 'roberta':
    case 'distilbert': {
      const cfg = parseBertConfig(config, reader, configFile);
      const labels = readLabels(config, cfg.numClasses, configFile, reader.filesLabel());
      const weights = tidy(() => loadBertWeights(cfg, reader));
      const bert = new BertModel(name, cfg, weights, labels);
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
    case 'llama':
    case 'mistral':
    case 'qwen2':
    case 'gemma2':
    case 'gemma3_text': {
      // Next-token classes are the tokenizer's token texts (decoded, so ' Paris' keeps its space).
      const tokenizer = await loadHfTokenizer(dir);
      const llama = buildLlama(name, config, configFile, reader, (classes, head) =>
        head === 'score'
          ? readLabels(config, classes, configFile, reader.filesLabel())
          : Array.from({ length: classes }, (_, id) => (tokenizer && id < tokenizer.vocabSize ? tokenizer.decode([id]) : `token ${id}`)),
      );
      llama.tokenizer = tokenizer;
      model = llama;
      break;
    }
    case 'gemma3':
      throw new CheckpointError(`model_type 'gemma3' is the multimodal Gemma 3 (text_config, vision tower): relprop reads its text model, Gemma3ForCausalLM with model_type 'gemma3_text'`, configFile);
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
  if (inferred.length > 0) model.inferred = inferred;
  for (const note of inferred) options.warn?.(`${configFile}: inferred ${note}`);
  const unused = reader.unused();
  if (unused.length > 0 && options.warn) {
    options.warn(`${dir}: ${unused.length} tensor(s) in the checkpoint are not used: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? ', …' : ''}`);
  }
  return model;
}

/**
 * The class names: config.json's id2label (HuggingFace), else label_names (timm), else "class i".
 * Labels the config gives must name exactly the head's classes (ids 0 … n−1, each a string): a list
 * of another length means the labels and the head come from different models, and every printed
 * class name would be a guess.
 */
export function readLabels(config: Json, numClasses: number, file = 'config.json', weights = 'the weights'): string[] {
  const labels = Array.from({ length: numClasses }, (_, i) => `class ${i}`);
  const head = `the classification head in ${weights} has ${numClasses} class${numClasses === 1 ? '' : 'es'}`;
  const id2label = config['id2label'];
  if (id2label !== undefined && id2label !== null) {
    if (typeof id2label !== 'object' || Array.isArray(id2label)) throw new CheckpointError(`id2label must be an object mapping class ids to names`, file);
    const entries = Object.entries(id2label as Json);
    if (entries.length !== numClasses) throw new CheckpointError(`id2label has ${entries.length} label${entries.length === 1 ? '' : 's'} but ${head}`, file);
    const seen = new Set<number>();
    for (const [k, v] of entries) {
      const i = Number(k);
      if (!/^\d+$/.test(k) || i >= numClasses) {
        throw new CheckpointError(`id2label key '${k}' is not a class id 0 … ${numClasses - 1} (${head})`, file);
      }
      if (typeof v !== 'string') throw new CheckpointError(`id2label['${k}'] must be a string, got ${JSON.stringify(v)}`, file);
      if (seen.has(i)) throw new CheckpointError(`id2label names class ${i} twice`, file);
      seen.add(i);
      labels[i] = v;
    }
    return labels;
  }
  const names = config['label_names'];
  if (names !== undefined && names !== null) {
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new CheckpointError(`label_names must be an array of strings`, file);
    if (names.length !== numClasses) throw new CheckpointError(`label_names has ${names.length} label${names.length === 1 ? '' : 's'} but ${head}`, file);
    return [...(names as string[])];
  }
  return labels;
}
