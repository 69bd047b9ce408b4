import path from 'node:path';
import { tf } from '../../src/core/tf.js';
import type { TokenInput } from '../../src/core/models/types.js';
import { GOLDEN_DIR, loadGolden, tensor } from './golden.js';

export const BERT_DIR = path.join(GOLDEN_DIR, 'bert-tiny-a');
export const bertGolden = loadGolden('bert-tiny-a');

/** Golden input i as a batch-of-one token input. */
export function tokensOf(i: number): TokenInput {
  const inp = bertGolden.inputs[i];
  const ids = Array.from(tensor(inp.input_ids).data);
  const mask = Array.from(tensor(inp.attention_mask).data);
  return {
    kind: 'tokens',
    ids: tf.tensor2d(ids, [1, ids.length], 'int32'),
    attentionMask: tf.tensor2d(mask, [1, mask.length], 'int32'),
    typeIds: tf.zeros([1, ids.length], 'int32'),
  };
}

export function disposeTokens(t: TokenInput): void {
  tf.dispose([t.ids, t.attentionMask, ...(t.typeIds ? [t.typeIds] : [])]);
}
