/**
 * The one definition of every method option: its name, CLI flag, kind, range or allowed values,
 * default, help line and form label. `relprop explain`/`compare` build their flags, parsing, range
 * errors and help lines from it, the app's IPC validation checks requests against it, and the app's
 * option form renders its inputs from it, so a range cannot differ between the three. `MethodOptions`
 * (types.ts) is derived from it: adding an option is one entry here (plus the method that reads it
 * listing it in its `options`).
 *
 * Pure data and plain functions (no tfjs, no Node): the renderer imports it.
 */

/** A default that depends on the input kind (SmoothGrad's noise level). */
export interface PerInputDefault {
  readonly image: number;
  readonly text: number;
}

interface OptionCommon {
  /** The CLI flag (`--start-layer`). */
  readonly flag: `--${string}`;
  /** The flag's argument as --help shows it (`<n>`). */
  readonly arg: `<${string}>`;
  /** The --help line (defaults in words). */
  readonly help: string;
  /** The app form's accessible name ("Compare steps" with the Compare form's prefix). */
  readonly label: string;
  /** The form's visible label, where shorter than `label`. */
  readonly shortLabel?: string;
}

export interface IntegerOption extends OptionCommon {
  readonly kind: 'integer';
  readonly min: number;
  /** Absent: any safe integer ≥ min. */
  readonly max?: number;
  readonly default: number;
}

export interface NumberOption extends OptionCommon {
  readonly kind: 'number';
  readonly min: number;
  /** Absent: any finite number ≥ min. */
  readonly max?: number;
  /** The form's input step. */
  readonly step: number;
  readonly default: number | PerInputDefault;
}

export interface EnumOption extends OptionCommon {
  readonly kind: 'enum';
  readonly values: readonly string[];
  readonly default: string;
  /** What a value is called in messages ("unknown occlusion mode 'x'"). */
  readonly noun: string;
}

export interface BooleanOption extends OptionCommon {
  readonly kind: 'boolean';
  readonly default: boolean;
}

/** A rule set id: the allowed values are the rule-set registry's (relevance/rulesets.ts), known at run time. */
export interface RuleSetOption extends OptionCommon {
  readonly kind: 'ruleSet';
  readonly noun: string;
}

export type OptionSpec = IntegerOption | NumberOption | EnumOption | BooleanOption | RuleSetOption;
export type OptionKind = OptionSpec['kind'];
export type OptionSchema = Readonly<Record<string, OptionSpec>>;

/**
 * Every option any method takes, in --help order. The doc comment of each entry is the library's
 * documentation of the option (MethodOptions carries it over).
 */
export const METHOD_OPTIONS = {
  /** First layer included in a rollout-style product (the authors' `start_layer`). */
  startLayer: {
    kind: 'integer',
    flag: '--start-layer',
    arg: '<n>',
    min: 0,
    default: 0,
    help: "first layer of rollout-style products (the authors' start_layer; default 0)",
    label: 'Start layer',
  },
  /** Rule set for relevance propagation: 'paper' (Chefer et al.'s rules), 'baseline' (their original-LRP baseline), 'attnlrp' or 'cp-lrp'. */
  rules: {
    kind: 'ruleSet',
    flag: '--rules',
    arg: '<id>',
    noun: 'rule set',
    help: 'rule set for relevance methods: paper (Chefer et al.), baseline (their original-LRP baseline), attnlrp or cp-lrp',
    label: 'Rule set',
    shortLabel: 'Rules',
  },
  /** Integration steps (integrated gradients). */
  steps: {
    kind: 'integer',
    flag: '--steps',
    arg: '<n>',
    min: 1,
    default: 50,
    help: 'integration steps for integrated-gradients (default 50)',
    label: 'Steps',
  },
  /** Noisy copies averaged (SmoothGrad). */
  samples: {
    kind: 'integer',
    flag: '--samples',
    arg: '<n>',
    min: 1,
    default: 16,
    help: 'noisy copies averaged by smoothgrad (default 16)',
    label: 'Samples',
  },
  /** Noise level σ / (max(x) − min(x)) of the input (SmoothGrad). */
  noise: {
    kind: 'number',
    flag: '--noise',
    arg: '<level>',
    min: 0,
    step: 0.01,
    default: { image: 0.15, text: 0.01 },
    help: "smoothgrad noise σ as a fraction of the input's value range (default 0.15 for images, 0.01 for text)",
    label: 'Noise level',
    shortLabel: 'Noise',
  },
  /** Seed of the noise (SmoothGrad): the same seed gives the same map. Its generator takes 32 bits. */
  seed: {
    kind: 'integer',
    flag: '--seed',
    arg: '<n>',
    min: 0,
    max: 0xffffffff,
    default: 0,
    help: "seed of smoothgrad's noise (default 0)",
    label: 'Seed',
  },
  /** LRP-γ on the Linear layers (CP-LRP): 0 is LRP-0/ε, larger values favour positive contributions. */
  gamma: {
    kind: 'number',
    flag: '--gamma',
    arg: '<g>',
    min: 0,
    step: 0.05,
    default: 0,
    help: 'cp-lrp: LRP-γ on the Linear layers (default 0: LRP-0/ε)',
    label: 'Gamma',
    shortLabel: 'γ',
  },
  /** How SmoothGrad combines the noisy copies, by Captum's NoiseTunnel names: 'smoothgrad' (mean, the default), 'smoothgrad_sq' (mean of squares) or 'vargrad' (variance). */
  ntType: {
    kind: 'enum',
    flag: '--nt-type',
    arg: '<type>',
    values: ['smoothgrad', 'smoothgrad_sq', 'vargrad'],
    default: 'smoothgrad',
    noun: 'nt_type',
    help: "smoothgrad: Captum's nt_type (default smoothgrad: the mean)",
    label: 'NoiseTunnel type',
    shortLabel: 'nt_type',
  },
  /** SmoothGrad: |∂y/∂x| of each noisy copy (true, the default: Captum Saliency's abs) or the signed gradient (false). */
  abs: {
    kind: 'boolean',
    flag: '--abs',
    arg: '<bool>',
    default: true,
    help: "smoothgrad: |gradient| of each noisy copy (true, the default, as Captum's Saliency) or the signed gradient (false)",
    label: 'Absolute gradient',
    shortLabel: '|gradient|',
  },
  /** CP-LRP through a text pooler's tanh: 'gradient' (the default, as Ali et al.'s code) or 'identity' (the identity rule). */
  pooler: {
    kind: 'enum',
    flag: '--pooler',
    arg: '<rule>',
    values: ['gradient', 'identity'],
    default: 'gradient',
    noun: 'pooler rule',
    help: "cp-lrp: through a text pooler's tanh, the plain gradient (gradient, the default, as Ali et al.'s code) or the identity rule (identity)",
    label: 'Pooler rule',
    shortLabel: 'Pooler',
  },
  /** What occlusion puts in a unit's place: 'mask' / 'unk' token, 'remove' it (text), or the 'baseline' (images); 'auto' picks by input kind. */
  occlusion: {
    kind: 'enum',
    flag: '--occlusion',
    arg: '<mode>',
    values: ['auto', 'mask', 'unk', 'remove', 'baseline'],
    default: 'auto',
    noun: 'occlusion mode',
    help: 'occlusion: auto, mask, unk, remove (text) or baseline (images)',
    label: 'Occlusion',
  },
} as const satisfies OptionSchema;

export type OptionName = keyof typeof METHOD_OPTIONS;
export const OPTION_NAMES = Object.keys(METHOD_OPTIONS) as OptionName[];

/** The value type an option's spec describes. */
export type OptionValue<S> = S extends { readonly kind: 'integer' | 'number' }
  ? number
  : S extends { readonly kind: 'boolean' }
    ? boolean
    : S extends { readonly kind: 'enum'; readonly values: readonly (infer V)[] }
      ? V
      : S extends { readonly kind: 'ruleSet' }
        ? string
        : never;

/** Every option, each optional (absent: the method's default). Homomorphic, so each field keeps its entry's doc comment. */
export type OptionValues = { readonly [K in keyof typeof METHOD_OPTIONS]?: OptionValue<(typeof METHOD_OPTIONS)[K]> };

/** The allowed values of an enum option, typed. */
export function enumValues<K extends OptionName>(name: K): ReadonlyArray<NonNullable<OptionValues[K]>> {
  const spec: OptionSpec = METHOD_OPTIONS[name];
  return (spec.kind === 'enum' ? spec.values : []) as ReadonlyArray<NonNullable<OptionValues[K]>>;
}

/** "an integer ≥ 1", "an integer from 0 to 4294967295", "a number ≥ 0": the range in messages, CLI and IPC alike. */
export function rangeText(kind: 'integer' | 'number', min: number, max?: number): string {
  const what = kind === 'integer' ? 'an integer' : 'a number';
  return max === undefined || max === Infinity ? `${what} ≥ ${min}` : `${what} from ${min} to ${max}`;
}

/**
 * Why `value` is not a value of the option (a phrase to follow its name: "must be an integer ≥ 1"),
 * or null when it is. Rule sets are checked against `ruleSetIds`. One check for the CLI (after its
 * text is parsed) and the IPC, so both accept exactly the same values.
 */
export function optionValueProblem(spec: OptionSpec, value: unknown, ruleSetIds: readonly string[]): string | null {
  switch (spec.kind) {
    case 'integer':
    case 'number': {
      const ok =
        typeof value === 'number' &&
        (spec.kind === 'integer' ? Number.isSafeInteger(value) : Number.isFinite(value)) &&
        value >= spec.min &&
        (spec.max === undefined || value <= spec.max);
      return ok ? null : `must be ${rangeText(spec.kind, spec.min, spec.max)}`;
    }
    case 'boolean':
      return typeof value === 'boolean' ? null : 'must be true or false';
    case 'enum':
      return typeof value === 'string' && spec.values.includes(value) ? null : `must be one of ${spec.values.join(', ')}`;
    case 'ruleSet':
      return typeof value === 'string' && ruleSetIds.includes(value) ? null : `must be one of ${ruleSetIds.join(', ')}`;
  }
}

/** The options of `source` the schema defines and that are set, nothing else (so no `onProgress`, no CLI-only flag). */
export function pickOptions(source: { readonly [k: string]: unknown }): OptionValues {
  const out: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) if (source[name] !== undefined) out[name] = source[name];
  return out as OptionValues;
}

/** The methods (of those given) that read an option; each method lists the options it reads. */
export function optionReaders<M extends { readonly options: readonly string[] }>(name: OptionName, methods: readonly M[]): M[] {
  return methods.filter((m) => m.options.includes(name));
}
