/**
 * Training our models on the ground-truth tasks: Adam with linear warm-up then cosine decay, global
 * gradient-norm clipping, a checkpoint (model + optimiser state + trainer state) at every epoch,
 * resumed automatically, and held-out accuracy on samples the training never sees.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tf, type Tensor } from '../tf.js';
import { ensureBackend } from '../backend.js';
import { loadModel } from '../models/load.js';
import { ViTModel, type ViTConfig } from '../models/vit.js';
import { BertModel, type BertConfig } from '../models/bert.js';
import type { ClassifierModel } from '../models/types.js';
import { disposeInput } from '../models/types.js';
import type { NormaliserName } from '../normalisers.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { UsageError } from '../errors.js';
import { initBert, initViT, trainable, variablesOf, withNormaliser } from './init.js';
import { saveBert, saveViT } from './save.js';
import { HELD_OUT_SEED, TASK_PREPROCESSING, TEXT_MAX_TOKENS, TRAIN_SEED, taskData, taskTokenizer, type TaskData, type TaskName } from './data.js';
import { writeModelCard } from './card.js';

export interface TrainOptions {
  readonly task: TaskName;
  readonly attention: NormaliserName;
  readonly out: string;
  /** Most optimiser steps; training may stop earlier (see targetAccuracy). */
  readonly steps: number;
  readonly stepsPerEpoch: number;
  readonly batchSize: number;
  readonly lr: number;
  readonly warmupSteps: number;
  readonly seed: number;
  /** Stop at the end of an epoch once held-out accuracy (on evalSamples) reaches this. */
  readonly targetAccuracy: number;
  readonly evalSamples: number;
  /** Samples for the accuracy in the model card. */
  readonly finalEvalSamples: number;
  /** Model size. */
  readonly dim: number;
  readonly depth: number;
  readonly heads: number;
  /** Ignore an existing checkpoint and start again. */
  readonly restart: boolean;
  /** Start from a trained model folder of the same task and size (e.g. fine-tune sparse attention from softmax). */
  readonly initFrom?: string;
}

export const DEFAULT_TRAIN: Omit<TrainOptions, 'task' | 'attention' | 'out'> = {
  steps: 4000,
  stepsPerEpoch: 250,
  batchSize: 32,
  lr: 1e-3,
  warmupSteps: 200,
  seed: 0,
  targetAccuracy: 0.995,
  evalSamples: 512,
  finalEvalSamples: 2000,
  dim: 64,
  depth: 4,
  heads: 4,
  restart: false,
};

export interface EpochRecord {
  readonly epoch: number;
  readonly step: number;
  readonly loss: number;
  readonly trainAccuracy: number;
  readonly heldOutAccuracy: number;
  readonly lr: number;
  readonly seconds: number;
}

export interface TrainProgress {
  readonly step: number;
  readonly steps: number;
  readonly epoch: number;
  readonly loss: number;
  readonly accuracy: number;
  readonly lr: number;
  readonly seconds: number;
}

export interface TrainResult {
  /** True when the signal stopped the run: the last epoch's checkpoint holds its state, no model was written. */
  readonly interrupted: boolean;
  readonly dir: string;
  readonly heldOutAccuracy: number;
  readonly heldOutSamples: number;
  readonly steps: number;
  readonly seconds: number;
  readonly history: readonly EpochRecord[];
}

interface TrainerState {
  readonly format: 'relprop-trainer/v1';
  readonly options: TrainOptions;
  readonly step: number;
  readonly seconds: number;
  readonly history: EpochRecord[];
}

/** Linear warm-up to `lr`, then cosine decay to 5 % of it at `steps`. */
export function learningRate(step: number, o: Pick<TrainOptions, 'lr' | 'warmupSteps' | 'steps'>): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const t = Math.min(1, (step - o.warmupSteps) / Math.max(1, o.steps - o.warmupSteps));
  return o.lr * (0.05 + 0.95 * 0.5 * (1 + Math.cos(Math.PI * t)));
}

function newModel(o: TrainOptions, data: TaskData): ViTModel | BertModel {
  if (data.kind === 'image') {
    const cfg: ViTConfig = {
      imageSize: TASK_PREPROCESSING.size,
      patchSize: 8,
      channels: 3,
      dim: o.dim,
      depth: o.depth,
      heads: o.heads,
      mlpDim: 2 * o.dim,
      numClasses: data.classes.length,
      qkvBias: true,
      lnEps: 1e-6,
      lnEpsFinal: 1e-6,
      prefixTokens: 1,
      pooling: 'cls',
      attention: o.attention,
    };
    return initViT(cfg, o.seed, data.classes, TASK_PREPROCESSING, path.basename(o.out));
  }
  const tokenizer = taskTokenizer();
  const cfg: BertConfig = {
    flavour: 'bert',
    vocabSize: tokenizer.vocabSize,
    dim: o.dim,
    depth: o.depth,
    heads: o.heads,
    mlpDim: 2 * o.dim,
    maxPositions: TEXT_MAX_TOKENS,
    typeVocabSize: 2,
    lnEps: 1e-12,
    numClasses: data.classes.length,
    padTokenId: tokenizer.special.pad,
    poolerActivation: 'tanh',
    attention: o.attention,
  };
  const model = initBert(cfg, o.seed, data.classes, path.basename(o.out));
  model.tokenizer = tokenizer;
  model.special = { mask: tokenizer.special.mask, unk: tokenizer.special.unk };
  return model;
}

async function saveModel(model: ViTModel | BertModel, dir: string, extra: Record<string, unknown>): Promise<void> {
  if (model instanceof ViTModel) await saveViT(model, dir, extra);
  else await saveBert(model, dir, extra);
}

/** Held-out accuracy over `n` samples, in batches, with the lean forward. */
export async function accuracy(model: ClassifierModel, data: TaskData, n: number, offset = 0, batch = 64): Promise<number> {
  let correct = 0;
  for (let s = 0; s < n; s += batch) {
    const idx = Array.from({ length: Math.min(batch, n - s) }, (_, k) => offset + s + k);
    const { input, labels } = data.batch(idx);
    const pred = tf.tidy(() => tf.argMax(model.predict(input), 1));
    const p = pred.dataSync();
    labels.forEach((l, k) => (correct += p[k] === l ? 1 : 0));
    pred.dispose();
    disposeInput(input);
  }
  return correct / n;
}

/** Write to a temporary folder, then swap it in: an interrupted save never leaves half a checkpoint. */
async function atomicDir(dir: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.tmp`;
  await fs.rm(tmp, { recursive: true, force: true });
  await fs.mkdir(tmp, { recursive: true });
  await write(tmp);
  await fs.rm(dir, { recursive: true, force: true });
  await fs.rename(tmp, dir);
}

export async function train(
  options: TrainOptions,
  onProgress?: (p: TrainProgress) => void,
  log: (m: string) => void = () => {},
  /** Stops the run before the next step (the app's cancel button; a killed process behaves the same). */
  signal?: AbortSignal,
): Promise<TrainResult> {
  await ensureBackend();
  const o = options;
  if (!(o.steps > 0 && o.stepsPerEpoch > 0 && o.batchSize > 0 && o.lr > 0)) throw new UsageError('steps, steps per epoch, batch size and learning rate must be positive');
  const data = taskData(o.task, TRAIN_SEED);
  const heldOut = taskData(o.task, HELD_OUT_SEED);
  const ckpt = path.join(o.out, '.checkpoint');
  const stateFile = path.join(ckpt, 'trainer_state.json');

  let model: ViTModel | BertModel;
  let state: TrainerState = { format: 'relprop-trainer/v1', options: o, step: 0, seconds: 0, history: [] };
  const optimizer = tf.train.adam(o.lr, 0.9, 0.999, 1e-8);
  const resumable = !o.restart && (await fs.access(stateFile).then(() => true, () => false));
  if (resumable) {
    const saved = JSON.parse(await fs.readFile(stateFile, 'utf8')) as TrainerState;
    const a = saved.options;
    for (const k of ['task', 'attention', 'dim', 'depth', 'heads', 'batchSize', 'seed'] as const) {
      if (a[k] !== o[k]) throw new UsageError(`${ckpt} is from a run with ${k} = ${String(a[k])}, not ${String(o[k])} (use --restart to start over)`);
    }
    model = trainable((await loadModel(ckpt)) as ViTModel | BertModel);
    state = { ...saved, options: o };
    log(`resuming from ${ckpt} at step ${state.step}`);
  } else if (o.initFrom) {
    const base = (await loadModel(o.initFrom)) as ViTModel | BertModel;
    const c = base.config;
    if (c.dim !== o.dim || c.depth !== o.depth || c.heads !== o.heads || base.numClasses !== data.classes.length) {
      base.dispose();
      throw new UsageError(`${o.initFrom} does not match the task and size asked for (width ${o.dim}, ${o.depth} layers, ${o.heads} heads, ${data.classes.length} classes)`);
    }
    model = trainable(withNormaliser(base, o.attention));
    log(`starting from ${o.initFrom} with ${o.attention} attention`);
  } else {
    model = newModel(o, data);
  }
  const vars = variablesOf(model.weights);
  if (resumable) {
    // The optimiser's state, in the order Adam keeps it: iterations, then first and second moments.
    const st = await readSafetensors(path.join(ckpt, 'optimizer.safetensors'));
    const names = [...st.tensors.keys()].sort((x, y) => Number(x.split('.')[1]) - Number(y.split('.')[1]));
    await optimizer.setWeights(names.map((n) => ({ name: n, tensor: tf.tensor(st.getFloat32(n), st.tensors.get(n)!.shape) })));
  }

  const start = performance.now() - state.seconds * 1000;
  const elapsed = () => (performance.now() - start) / 1000;
  let lossSum = 0;
  let correct = 0;
  let seen = 0;
  let stop = false;
  while (state.step < o.steps && !stop) {
    if (signal?.aborted) {
      model.dispose();
      optimizer.dispose();
      return { interrupted: true, dir: o.out, heldOutAccuracy: NaN, heldOutSamples: 0, steps: state.step, seconds: elapsed(), history: state.history };
    }
    const step = state.step;
    const lr = learningRate(step, o);
    (optimizer as unknown as { learningRate: number }).learningRate = lr;
    const { input, labels } = data.batch(Array.from({ length: o.batchSize }, (_, k) => step * o.batchSize + k));
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), data.classes.length);
    let logits: Tensor | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward(input, { batchedAttention: true }).logits;
      logits = tf.keep(out);
      return tf.losses.softmaxCrossEntropy(y, out) as tf.Scalar;
    }, vars);
    // Clip the global gradient norm at 1: small transformers spike early without it.
    const clipped = tf.tidy(() => {
      const norm = tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
      const scale = tf.minimum(1, tf.div(1, tf.add(norm, 1e-6)));
      return Object.entries(grads).map(([name, g]) => ({ name, tensor: tf.mul(g, scale) }));
    });
    optimizer.applyGradients(clipped as Parameters<typeof optimizer.applyGradients>[0]);
    const pred = tf.tidy(() => tf.argMax(logits!, 1));
    lossSum += value.dataSync()[0]!;
    pred.dataSync().forEach((p, k) => (correct += p === labels[k] ? 1 : 0));
    seen += labels.length;
    tf.dispose([value, y, pred, logits!, ...Object.values(grads), ...clipped.map((c) => c.tensor)]);
    disposeInput(input);
    state = { ...state, step: step + 1 };
    const batches = seen / o.batchSize;
    onProgress?.({ step: state.step, steps: o.steps, epoch: Math.ceil(state.step / o.stepsPerEpoch), loss: lossSum / batches, accuracy: correct / seen, lr, seconds: elapsed() });

    if (state.step % o.stepsPerEpoch === 0 || state.step === o.steps) {
      const acc = await accuracy(model, heldOut, o.evalSamples);
      const record: EpochRecord = {
        epoch: Math.ceil(state.step / o.stepsPerEpoch),
        step: state.step,
        loss: lossSum / batches,
        trainAccuracy: correct / seen,
        heldOutAccuracy: acc,
        lr,
        seconds: elapsed(),
      };
      state = { ...state, seconds: elapsed(), history: [...state.history, record] };
      log(`epoch ${record.epoch}: loss ${record.loss.toFixed(4)}, train accuracy ${(100 * record.trainAccuracy).toFixed(1)} %, held-out ${(100 * acc).toFixed(1)} % (${o.evalSamples} samples)`);
      const snapshot = state;
      await atomicDir(ckpt, async (tmp) => {
        await saveModel(model, tmp, {});
        const weights = await optimizer.getWeights();
        await writeSafetensors(
          path.join(tmp, 'optimizer.safetensors'),
          Object.fromEntries(weights.map((w, i) => [`opt.${i}`, { shape: w.tensor.shape, data: Float32Array.from(w.tensor.dataSync() as Float32Array) }])),
        );
        await fs.writeFile(path.join(tmp, 'trainer_state.json'), JSON.stringify(snapshot, null, 2));
      });
      lossSum = 0;
      correct = 0;
      seen = 0;
      stop = acc >= o.targetAccuracy;
    }
  }

  // The card's accuracy: samples disjoint from the per-epoch evaluation (offset), never trained on.
  const finalAcc = await accuracy(model, heldOut, o.finalEvalSamples, 1_000_000);
  const seconds = elapsed();
  const training = {
    task: o.task,
    taskDescription: data.description,
    classes: data.classes,
    attention: o.attention,
    heldOutAccuracy: finalAcc,
    heldOutSamples: o.finalEvalSamples,
    heldOutSeed: HELD_OUT_SEED,
    heldOutOffset: 1_000_000,
    steps: state.step,
    trainingSeconds: Math.round(seconds),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, tfjs ${tf.getBackend()}`,
    options: { ...o, out: undefined, restart: undefined },
    history: state.history,
  };
  await saveModel(model, o.out, { relprop_task: o.task });
  await fs.writeFile(path.join(o.out, 'training.json'), JSON.stringify(training, null, 2) + '\n');
  await writeModelCard(o.out, model, training);
  const result: TrainResult = { interrupted: false, dir: o.out, heldOutAccuracy: finalAcc, heldOutSamples: o.finalEvalSamples, steps: state.step, seconds, history: state.history };
  model.dispose();
  optimizer.dispose();
  return result;
}
