/** The model card written next to every trained model (README.md in its folder). */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ViTModel } from '../models/vit.js';
import type { BertModel } from '../models/bert.js';

export interface CardFacts {
  readonly task: string;
  readonly taskDescription: string;
  readonly classes: readonly string[];
  readonly attention: string;
  readonly heldOutAccuracy: number;
  readonly heldOutSamples: number;
  readonly heldOutSeed: number;
  readonly steps: number;
  readonly trainingSeconds: number;
  readonly machine: string;
  readonly options: { readonly batchSize: number; readonly lr: number; readonly warmupSteps: number; readonly seed: number; readonly initFrom?: string };
}

const RULES: Record<string, string> = {
  softmax: 'softmax: identity under the paper\'s rules (Chefer et al.), as in the authors\' code.',
  sparsemax:
    'sparsemax: identity under the paper\'s rules, as for softmax. sparsemax is piecewise linear in its scores, so on its support a relevance pass through it is a gradient × input pass; we keep the identity so the paper\'s rule set applies unchanged and zero weights pass no relevance (R^(A) = 0 wherever A = 0, through the A·V rule).',
  entmax15:
    'entmax15: identity under the paper\'s rules, as for softmax; zero weights pass no relevance (R^(A) = 0 wherever A = 0, through the A·V rule).',
};

export async function writeModelCard(dir: string, model: ViTModel | BertModel, facts: CardFacts): Promise<void> {
  const c = model.config;
  const arch =
    model instanceof ViTModel
      ? `ViT: ${model.config.imageSize.join('×')} images, patch ${model.config.patchSize} (${model.grid.join('×')} grid), width ${c.dim}, ${c.depth} layers, ${c.heads} heads, MLP ${c.mlpDim}`
      : `BERT-style encoder: vocabulary ${(c as BertModel['config']).vocabSize} (WordPiece), width ${c.dim}, ${c.depth} layers, ${c.heads} heads, MLP ${c.mlpDim}, up to ${(c as BertModel['config']).maxPositions} tokens`;
  const minutes = (facts.trainingSeconds / 60).toFixed(1);
  const pct = (100 * facts.heldOutAccuracy).toFixed(1);
  const text = `# ${path.basename(dir)}

A ${model instanceof ViTModel ? 'vision' : 'text'} transformer trained by relprop (\`relprop train\`) on the
ground-truth task **${facts.task}**: ${facts.taskDescription}.

| | |
|---|---|
| classes | ${facts.classes.join(', ')} |
| architecture | ${arch} |
| attention normaliser | **${facts.attention}** |
| held-out accuracy | **${pct} %** on ${facts.heldOutSamples} samples never seen in training (task seed ${facts.heldOutSeed}) |
| training | ${facts.options.initFrom ? `initialised from \`${path.basename(facts.options.initFrom)}\` (its softmax weights, this normaliser), then ` : ''}${facts.steps} Adam steps of ${facts.options.batchSize} (lr ${facts.options.lr}, ${facts.options.warmupSteps} warm-up steps, cosine decay, gradient norm clipped at 1), seed ${facts.options.seed} |
| training time | ${minutes} min on ${facts.machine} |
| format | HuggingFace ${model instanceof ViTModel ? 'ViTForImageClassification (+ preprocessor_config.json)' : 'BertForSequenceClassification (+ vocab.txt, tokenizer.json)'}; \`attention_normaliser\` in config.json is relprop's extension |

## Ground truth

The label depends only on a known part of the input (${model instanceof ViTModel ? 'the red object(s): their pixels and patches' : 'the key word(s): their character spans and tokens'}),
so an explanation can be scored against it (\`src/core/tasks\`). Every other object or word is a
distractor that carries no information about the label.

## Relevance rule for the attention normaliser

${RULES[facts.attention] ?? ''}

## Use

\`\`\`sh
npx relprop explain --model ${path.relative(process.cwd(), dir) || dir} ${model instanceof ViTModel ? '--image FILE.png' : '--text "…"'} --method transformer-attribution
\`\`\`

\`training.json\` holds the options, the per-epoch history and the figures above.
`;
  await fs.writeFile(path.join(dir, 'README.md'), text);
}
