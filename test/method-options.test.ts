// Issue 16, item 5: each method's options live in one schema (src/core/methods/options.ts); the CLI's
// flags, the IPC validation and the app's form derive from it. These tests hold the three to it: every
// option a method reads is in the schema, the CLI and the IPC accept and refuse the same values with
// the same bounds, an option added to the schema gets its flag, and the defaults the schema states
// (the app's placeholders, the help lines) are the ones the methods use.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommanderError } from 'commander';
import { explainCommand } from '../src/cli/explain.js';
import { compareCommand } from '../src/cli/compare.js';
import { METHOD_OPTIONS, OPTION_NAMES, rangeText, type OptionName, type OptionSchema, type OptionSpec } from '../src/core/methods/options.js';
import { listMethods } from '../src/core/methods/registry.js';
import { RULE_SETS } from '../src/core/relevance/rulesets.js';
import { ensureBackend } from '../src/core/backend.js';
import { loadModel } from '../src/core/models/load.js';
import { loadTensorFile } from '../src/core/inputs.js';
import { idsToText } from '../src/core/text-inputs.js';
import { explain } from '../src/core/explain.js';
import { disposeInput, type ClassifierModel, type ModelInput } from '../src/core/models/types.js';
import { BertModel } from '../src/core/models/bert.js';
import { validateRequest, type ValidationContext } from '../src/shared/validate.js';
import { GOLDEN_DIR } from './helpers/golden.js';
import { expectCliError, relprop } from './helpers/cli.js';

const ID = '0f7c3a52-1d7e-4c43-9d55-5c1b6f0b8a11';
const ctx: ValidationContext = {
  methodIds: listMethods().map((m) => m.id),
  ruleSetIds: RULE_SETS.map((r) => r.id),
  models: new Map([['image-softmax', { kind: 'image', numClasses: 4 }]]),
  isDirectory: () => false,
  isFile: () => false,
};

/** The IPC's verdict on one option value: null when accepted (and passed on unchanged), else the message. */
function ipc(name: string, value: unknown): string | null {
  try {
    const req = validateRequest('explain', { inputId: ID, modelId: 'image-softmax', method: 'lrp', options: { [name]: value } }, ctx);
    expect(req.options).toEqual({ [name]: value });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The CLI's verdict on `flag text` as `relprop explain` parses it (in process, the action replaced): null when accepted, else the message. */
async function cli(args: string[], schema?: OptionSchema): Promise<{ error: string | null; parsed: Record<string, unknown> }> {
  const command = (schema ? explainCommand(schema) : explainCommand()).exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  let parsed: Record<string, unknown> = {};
  command.action(() => {
    parsed = command.opts();
  });
  try {
    await command.parseAsync(args, { from: 'user' });
    return { error: null, parsed };
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    return { error: err.message, parsed };
  }
}

/** The bound phrase of a range message, CLI's or IPC's: "an integer ≥ 1". */
const bound = (message: string | null) => /must be (.+?), got/.exec(message ?? '')?.[1] ?? null;

type Case = { value: number | string | boolean; text: string; ok: boolean };

/** Values on both sides of each bound of a spec, as the IPC gets them and as they are typed. */
function cases(spec: OptionSpec): Case[] {
  const n = (value: number, ok: boolean): Case => ({ value, text: String(value), ok });
  switch (spec.kind) {
    case 'integer':
      return [n(spec.min, true), n(spec.min - 1, false), n(spec.min + 0.5, false), ...(spec.max === undefined ? [n(spec.min + 1_000_000, true)] : [n(spec.max, true), n(spec.max + 1, false)])];
    case 'number':
      return [n(spec.min, true), n(spec.min + 0.125, true), n(spec.min - 0.01, false), ...(spec.max === undefined ? [n(1e30, true)] : [n(spec.max, true), n(spec.max + 0.01, false)])];
    case 'boolean':
      return [{ value: true, text: 'true', ok: true }, { value: false, text: 'false', ok: true }, { value: 'yes', text: 'yes', ok: false }];
    case 'enum':
      return [...spec.values.map((v) => ({ value: v, text: v, ok: true })), { value: `${spec.values[0]}x`, text: `${spec.values[0]}x`, ok: false }];
    case 'ruleSet':
      return [];
  }
}

describe('the schema covers every method', () => {
  it('every option of every method is in the schema, and every schema option is read by some method', () => {
    const read = new Set<string>();
    for (const m of listMethods()) {
      for (const o of m.options) {
        expect(OPTION_NAMES, `${m.id} reads '${o}'`).toContain(o);
        read.add(o);
      }
    }
    expect([...OPTION_NAMES].sort()).toEqual([...read].sort());
    // Spelled out, so that an emptied registry or schema cannot pass the loops above.
    expect(OPTION_NAMES).toEqual(['startLayer', 'rules', 'steps', 'samples', 'noise', 'seed', 'gamma', 'ntType', 'abs', 'pooler', 'occlusion']);
    expect(listMethods().find((m) => m.id === 'smoothgrad')!.options).toEqual(['samples', 'noise', 'seed', 'ntType', 'abs']);
    expect(listMethods().find((m) => m.id === 'cp-lrp')!.options).toEqual(['gamma', 'pooler']);
  });

  it('each option has its own flag, kebab-case of its name', () => {
    const flags = OPTION_NAMES.map((n) => METHOD_OPTIONS[n].flag);
    expect(new Set(flags).size).toBe(flags.length);
    for (const n of OPTION_NAMES) expect(METHOD_OPTIONS[n].flag).toBe(`--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  });

  describe('the defaults the schema states are the ones the methods use', () => {
    let image: ClassifierModel;
    let text: ClassifierModel;
    let pixels: ModelInput;
    let ids: ModelInput;
    beforeAll(async () => {
      await ensureBackend();
      image = await loadModel(path.join(GOLDEN_DIR, 'vit-tiny-a'));
      pixels = (await loadTensorFile(image as never, path.join(GOLDEN_DIR, 'vit-tiny-a', 'img0.json'))).input;
      text = await loadModel(path.join(GOLDEN_DIR, 'bert-tiny-a'));
      ids = idsToText(text as BertModel, [1, 39, 37, 13, 20, 2]).input;
    });
    afterAll(() => {
      disposeInput(pixels);
      disposeInput(ids);
      image.dispose();
      text.dispose();
    });

    it('each option a method reports having used, when none was given, is the schema default', async () => {
      let compared = 0;
      for (const [model, input, kind] of [[image, pixels, 'image'], [text, ids, 'text']] as const) {
        for (const m of listMethods()) {
          const [e] = await explain(model, input, { method: m.id });
          for (const name of m.options) {
            const spec: OptionSpec = METHOD_OPTIONS[name];
            const used = (e!.options as Record<string, unknown>)[name];
            // A rule set's default is the method's own; occlusion's 'auto' resolves by input kind.
            if (used === undefined || spec.kind === 'ruleSet' || name === 'occlusion') continue;
            const stated = typeof spec.default === 'object' ? spec.default[kind] : spec.default;
            expect(used, `${m.id} on ${kind}: ${name}`).toBe(stated);
            compared++;
          }
        }
      }
      // startLayer ×4 methods, steps, and SmoothGrad's five, on each input kind.
      expect(compared).toBeGreaterThanOrEqual(2 * (4 + 1 + 5));
    });
  });
});

describe('CLI and IPC take the same values', () => {
  it.each(OPTION_NAMES.filter((n) => METHOD_OPTIONS[n].kind !== 'ruleSet'))('%s: accepted and refused alike, with the same bound', async (name) => {
    const spec: OptionSpec = METHOD_OPTIONS[name];
    const all = cases(spec);
    expect(all.some((c) => c.ok) && all.some((c) => !c.ok)).toBe(true);
    for (const c of all) {
      const viaIpc = ipc(name, c.value);
      const viaCli = await cli([spec.flag, c.text]);
      expect(viaIpc === null, `IPC ${name} = ${c.text}: ${viaIpc}`).toBe(c.ok);
      expect(viaCli.error === null, `CLI ${spec.flag} ${c.text}: ${viaCli.error}`).toBe(c.ok);
      if (c.ok) expect(viaCli.parsed[name]).toEqual(c.value);
      else if (spec.kind === 'integer' || spec.kind === 'number') {
        expect(bound(viaIpc)).toBe(rangeText(spec.kind, spec.min, spec.max));
        expect(bound(viaCli.error)).toBe(bound(viaIpc));
      }
    }
  });

  it('rule sets: the registry\'s ids, both ways', async () => {
    for (const r of RULE_SETS) expect(ipc('rules', r.id)).toBeNull();
    expect(ipc('rules', 'zennit')).toMatch(/unknown rule set "zennit"/);
    expect(await relprop('explain', '--method', 'lrp', '--rules', 'zennit')).toMatchObject({ code: 1, stderr: expect.stringMatching(/unknown rule set 'zennit'/) });
  });

  it('exact cases: the messages, the 32-bit seed, and the values the IPC used to refuse', async () => {
    expect((await cli(['--steps', '0'])).error).toBe("error: option '--steps <n>' argument '0' is invalid. --steps must be an integer ≥ 1, got '0'");
    expect(ipc('steps', 0)).toBe('options.steps must be an integer ≥ 1, got 0');
    expect(ipc('steps', 2.5)).toBe('options.steps must be an integer ≥ 1, got 2.5');
    expect((await cli(['--seed', '4294967296'])).error).toMatch(/--seed must be an integer from 0 to 4294967295, got '4294967296'$/);
    expect(ipc('seed', 4294967296)).toBe('options.seed must be an integer from 0 to 4294967295, got 4294967296');
    expect((await cli(['--seed', '4294967295'])).parsed['seed']).toBe(4294967295);
    expect(ipc('seed', 4294967295)).toBeNull();
    expect((await cli(['--noise', '-0.01'])).error).toMatch(/--noise must be a number ≥ 0, got '-0.01'$/);
    expect(ipc('noise', -0.01)).toBe('options.noise must be a number ≥ 0, got -0.01');
    expect((await cli(['--noise', 'Infinity'])).error).toMatch(/--noise must be a number ≥ 0/);
    expect(ipc('noise', Infinity)).toBe('options.noise must be a number ≥ 0, got Infinity');
    expect(ipc('noise', '0.1')).toBe('options.noise must be a number ≥ 0, got "0.1"');
    // The app once capped these below what the CLI takes (steps, samples ≤ 1000; noise ≤ 10; gamma ≤ 100).
    expect((await cli(['--steps', '1000000'])).parsed['steps']).toBe(1_000_000);
    expect(ipc('steps', 5000)).toBeNull();
    expect(ipc('samples', 2000)).toBeNull();
    expect(ipc('noise', 12)).toBeNull();
    expect(ipc('gamma', 250)).toBeNull();
    // And refused these as unknown fields, though its method list offered them.
    expect(ipc('ntType', 'vargrad')).toBeNull();
    expect(ipc('abs', false)).toBeNull();
    expect(ipc('pooler', 'identity')).toBeNull();
    expect(ipc('ntType', 'var')).toMatch(/unknown nt_type "var" \(available: smoothgrad, smoothgrad_sq, vargrad\)/);
    expect(ipc('occlusion', 'weird')).toMatch(/unknown occlusion mode "weird"/);
    expect((await cli(['--occlusion', 'weird'])).error).toMatch(/Allowed choices are auto, mask, unk, remove, baseline/);
    expect((await cli(['--abs', 'false'])).parsed['abs']).toBe(false);
    expect((await cli(['--abs', 'no'])).error).toMatch(/--abs must be true or false, got 'no'$/);
  });

  it('compare\'s SmoothGrad flags are the schema\'s, with its ranges', async () => {
    const command = compareCommand();
    for (const name of ['samples', 'noise', 'seed'] as const) {
      const flag = command.options.find((o) => o.long === METHOD_OPTIONS[name].flag)!;
      expect(flag.description).toBe(METHOD_OPTIONS[name].help);
    }
    const seed = command.options.find((o) => o.long === '--seed')!;
    expect(() => seed.parseArg!('4294967296', undefined)).toThrow(/--seed must be an integer from 0 to 4294967295/);
    expect(seed.parseArg!('7', undefined)).toBe(7);
  });
});

describe('--help comes from the schema', () => {
  it('an option added to the schema gets its flag, help line, parser and range', async () => {
    const schema: OptionSchema = { ...METHOD_OPTIONS, depth: { kind: 'integer', flag: '--depth', arg: '<n>', min: 2, max: 9, default: 4, help: 'a test-only option: how deep to look (default 4)', label: 'Depth' } };
    const help = explainCommand(schema).helpInformation().replace(/\s+/g, ' ');
    expect(help).toContain('--depth <n> a test-only option: how deep to look (default 4)');
    expect((await cli(['--depth', '9'], schema)).parsed['depth']).toBe(9);
    expect((await cli(['--depth', '10'], schema)).error).toMatch(/--depth must be an integer from 2 to 9, got '10'$/);
    // Not in the real command.
    expect(explainCommand().helpInformation()).not.toContain('--depth');
  });

  it('relprop explain --help prints every schema option with its help line', async () => {
    const r = await relprop('explain', '--help');
    expect(r.code).toBe(0);
    const help = r.stdout.replace(/\s+/g, ' ');
    for (const name of OPTION_NAMES) {
      const spec = METHOD_OPTIONS[name as OptionName];
      expect(help, name).toContain(`${spec.flag} ${spec.arg} ${spec.help}`);
    }
  });
});

describe('the run without --model takes every method option', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-options-'));
  });
  afterAll(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('--occlusion reaches the method: a text mode on the shipped image model is refused, and nothing is written', async () => {
    const out = path.join(tmp, 'example.png');
    const r = await relprop('explain', '--method', 'occlusion', '--occlusion', 'mask', '--out', out);
    expectCliError(r, 1, /occlusion 'mask' is for text; images take 'baseline'/);
    await expect(fs.stat(out)).rejects.toThrow();
  });
});
