/**
 * SmoothGrad against Captum itself (issue 15, item 14): `NoiseTunnel(Saliency(f)).attribute(x,
 * nt_type, nt_samples, stdevs=σ, abs)` run on the golden ViT and BERT by
 * test/fixtures/smoothgrad/make_captum_reference.py, which reproduces relprop's noise generator and
 * hands Captum exactly the noise relprop draws (σ = noise level × (max − min) of the input). Each map
 * is Captum's attribution reduced as relprop reduces saliency (max |·| over colours, Σ|·| over the
 * hidden axis).
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tf } from '../src/core/tf.js';
import { explain } from '../src/core/explain.js';
import { smoothgradNoise } from '../src/core/methods/smoothgrad.js';
import type { MethodOptions } from '../src/core/methods/types.js';
import type { ModelInput } from '../src/core/models/types.js';
import { loadGolden, tensor } from './helpers/golden.js';
import { tokensOf, disposeTokens } from './helpers/bert.js';
import { useGoldenModels } from './helpers/models.js';

interface CaptumMap {
  readonly abs: boolean;
  readonly nt_type: NonNullable<MethodOptions['ntType']>;
  readonly map: number[];
}
interface CaptumCase {
  readonly model: 'vit-tiny-a' | 'bert-tiny-a';
  readonly input: number;
  readonly kind: 'image' | 'tokens';
  readonly target: number;
  readonly samples: number;
  readonly noise: number;
  readonly seed: number;
  readonly sigma: number;
  readonly shape: number[];
  readonly noise_check: { readonly first: number[][]; readonly sum: number[] };
  readonly maps: Record<string, CaptumMap>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const reference = JSON.parse(readFileSync(path.join(here, 'fixtures', 'smoothgrad', 'captum.json'), 'utf8')) as { cases: CaptumCase[] };
const models = useGoldenModels();
const vitGolden = loadGolden('vit-tiny-a');

function inputOf(c: CaptumCase): { input: ModelInput; size: number; dispose: () => void } {
  if (c.kind === 'image') {
    const t = tensor(vitGolden.inputs[c.input].pixel_values);
    const pixels = tf.tensor4d(t.data, t.shape as [number, number, number, number]);
    return { input: { kind: 'image', pixels }, size: pixels.size, dispose: () => pixels.dispose() };
  }
  const tokens = tokensOf(c.input);
  return { input: tokens, size: tokens.ids.shape[1] * 32, dispose: () => disposeTokens(tokens) };
}

/** max |a − b| / max |b|. */
function relativeToMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / scale;
}

describe('SmoothGrad equals Captum NoiseTunnel(Saliency) given the same noise', () => {
  it('relprop draws the noise the reference fed to Captum', () => {
    for (const c of reference.cases) {
      const size = c.kind === 'image' ? 3 * 32 * 32 : tensor(loadGolden('bert-tiny-a').inputs[c.input].input_ids).data.length * 32;
      for (let s = 0; s < c.samples; s++) {
        const noise = smoothgradNoise(size, c.sigma, c.seed, s);
        expect(Array.from(noise.subarray(0, 4))).toEqual(c.noise_check.first[s]!.map(Math.fround));
        const sum = noise.reduce((acc, v) => acc + v, 0);
        expect(Math.abs(sum - c.noise_check.sum[s]!)).toBeLessThan(1e-9 * size);
      }
    }
  });

  for (const c of reference.cases) {
    it(`${c.model} input ${c.input}, target ${c.target}, ${c.samples} copies, noise ${c.noise}: every nt_type`, async () => {
      const model = c.kind === 'image' ? models.vit : models.bert;
      const { input, dispose } = inputOf(c);
      try {
        for (const [name, ref] of Object.entries(c.maps)) {
          const options = { samples: c.samples, noise: c.noise, seed: c.seed, ntType: ref.nt_type, abs: ref.abs };
          const [e] = await explain(model, input, { method: 'smoothgrad', target: c.target, ...options });
          expect(e!.shape, name).toEqual(c.shape);
          // float32 gradients from two engines: rounding only.
          expect(relativeToMax(e!.map, ref.map), name).toBeLessThan(1e-5);
          expect(e!.options, name).toEqual(options);
        }
      } finally {
        dispose();
      }
    });
  }

  it('the default is Captum\'s default (nt_type smoothgrad over |∂y/∂x|)', async () => {
    const c = reference.cases[0]!;
    const { input, dispose } = inputOf(c);
    try {
      const [e] = await explain(models.vit, input, { method: 'smoothgrad', target: c.target, samples: c.samples, noise: c.noise, seed: c.seed });
      expect(relativeToMax(e!.map, c.maps['smoothgrad']!.map)).toBeLessThan(1e-5);
      expect(e!.options).toEqual({ samples: c.samples, noise: c.noise, seed: c.seed, ntType: 'smoothgrad', abs: true });
    } finally {
      dispose();
    }
  });

  it('rejects an unknown nt_type', async () => {
    const c = reference.cases[0]!;
    const { input, dispose } = inputOf(c);
    try {
      const bad = { ntType: 'smoothgrad-sq' } as unknown as Omit<MethodOptions, 'onProgress'>;
      await expect(explain(models.vit, input, { method: 'smoothgrad', target: 0, ...bad })).rejects.toThrow(/ntType/);
    } finally {
      dispose();
    }
  });
});
