/** `relprop train`: train a model on a ground-truth task; resumable, with a progress line. */
import { Command, Option } from 'commander';
import { ensureBackend, BACKEND_CHOICES } from '../core/backend.js';
import { NORMALISERS, type NormaliserName } from '../core/normalisers.js';
import { TASKS, type TaskName } from '../core/train/data.js';
import { DEFAULT_TRAIN, train, type TrainProgress } from '../core/train/trainer.js';
import { integer } from './options.js';

const duration = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`);

/** One line, redrawn in place on a terminal; a line every epoch when stderr is a file or pipe. */
function progressPrinter(stepsPerEpoch: number) {
  const tty = process.stderr.isTTY;
  let firstStep: number | null = null;
  let firstSeconds = 0;
  return (p: TrainProgress) => {
    if (firstStep === null) {
      firstStep = p.step - 1;
      firstSeconds = p.seconds;
    }
    const rate = (p.seconds - firstSeconds) / Math.max(1, p.step - firstStep);
    const eta = rate * (p.steps - p.step);
    const width = 24;
    const filled = Math.round((p.step / p.steps) * width);
    const line = `epoch ${p.epoch} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} acc ${(100 * p.accuracy).toFixed(1)}% lr ${p.lr.toExponential(1)} ETA ${duration(eta)}`;
    if (tty) process.stderr.write(`\r${line}\x1b[K`);
    else if (p.step % stepsPerEpoch === 0 || p.step === p.steps) process.stderr.write(`${line}\n`);
  };
}

interface TrainFlags {
  task: TaskName;
  attention: NormaliserName;
  out: string;
  steps: number;
  stepsPerEpoch: number;
  batchSize: number;
  lr: number;
  warmup: number;
  seed: number;
  target: number;
  dim: number;
  depth: number;
  heads: number;
  restart?: boolean;
  initFrom?: string;
  backend?: string;
}

export function trainCommand(): Command {
  const d = DEFAULT_TRAIN;
  return new Command('train')
    .description('Train a small transformer on a ground-truth task and save it as a HuggingFace-layout model folder with a model card. Re-running the same command resumes from the last epoch\'s checkpoint.')
    .addOption(new Option('--task <name>', 'ground-truth task').choices([...TASKS]).makeOptionMandatory())
    .addOption(new Option('--attention <normaliser>', 'attention normaliser').choices([...NORMALISERS]).default('softmax'))
    .requiredOption('--out <dir>', 'model folder to write (its .checkpoint/ holds the resumable state)')
    .option('--steps <n>', 'most optimiser steps', integer('--steps', 1), d.steps)
    .option('--steps-per-epoch <n>', 'steps between evaluations and checkpoints', integer('--steps-per-epoch', 1), d.stepsPerEpoch)
    .option('--batch-size <n>', 'samples per step', integer('--batch-size', 1), d.batchSize)
    .option('--lr <x>', 'peak learning rate (Adam)', Number, d.lr)
    .option('--warmup <n>', 'linear warm-up steps before the cosine decay', integer('--warmup', 0), d.warmupSteps)
    .option('--seed <n>', 'initialisation seed', integer('--seed', 0), d.seed)
    .option('--target <acc>', 'stop at an epoch end once held-out accuracy reaches this', Number, d.targetAccuracy)
    .option('--dim <n>', 'model width', integer('--dim', 8), d.dim)
    .option('--depth <n>', 'layers', integer('--depth', 1), d.depth)
    .option('--heads <n>', 'attention heads', integer('--heads', 1), d.heads)
    .option('--restart', 'ignore an existing checkpoint and start over')
    .option('--init-from <dir>', 'start from a trained model folder of the same task and size (e.g. fine-tune sparse attention from a softmax model)')
    .addOption(new Option('--backend <name>', 'compute backend (env RELPROP_BACKEND)').choices([...BACKEND_CHOICES]))
    .action(async (f: TrainFlags) => {
      await ensureBackend(f.backend);
      // Ctrl-C stops before the next step; the last epoch's checkpoint is what a rerun resumes from.
      const stop = new AbortController();
      const onInt = () => stop.abort();
      process.once('SIGINT', onInt);
      process.once('SIGTERM', onInt);
      const result = await train(
        {
          ...DEFAULT_TRAIN,
          task: f.task,
          attention: f.attention,
          out: f.out,
          steps: f.steps,
          stepsPerEpoch: f.stepsPerEpoch,
          batchSize: f.batchSize,
          lr: f.lr,
          warmupSteps: f.warmup,
          seed: f.seed,
          targetAccuracy: f.target,
          dim: f.dim,
          depth: f.depth,
          heads: f.heads,
          restart: !!f.restart,
          ...(f.initFrom ? { initFrom: f.initFrom } : {}),
        },
        progressPrinter(f.stepsPerEpoch),
        (m) => process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${m}\n`),
        stop.signal,
      );
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onInt);
      if (result.interrupted) {
        process.stderr.write(`\ninterrupted at step ${result.steps}; run the same command again to resume from the last checkpoint (step ${result.history.at(-1)?.step ?? 0})\n`);
        process.exitCode = 130;
        return;
      }
      process.stdout.write(
        `${result.dir}: held-out accuracy ${(100 * result.heldOutAccuracy).toFixed(1)} % on ${result.heldOutSamples} samples after ${result.steps} steps (${duration(result.seconds)})\n`,
      );
    });
}
