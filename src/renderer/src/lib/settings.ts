// View settings kept across restarts, in the page's own localStorage (the
// app's origin; nothing leaves the machine). Read back field by field: a value
// that is not what the field holds (an older version, a hand edit) is dropped,
// never trusted.

import { COLORMAP_IDS, type ColormapId, type ExplainOptions } from '../../../shared/api';
import { METHOD_OPTIONS, OPTION_NAMES, type OptionName, type OptionSpec } from '../../../core/methods/options';

const KEY = 'relprop.view.v1';

/** A form field's value, by the option's kind (core/methods/options.ts): null or '' is the method's own default. */
export type FormValue<S> = S extends { readonly kind: 'integer' | 'number' } ? number | null : S extends { readonly kind: 'boolean' } ? boolean | null : string;

/** Method options as the forms hold them, one field per option of the schema. */
export type OptionValues = { [K in OptionName]: FormValue<(typeof METHOD_OPTIONS)[K]> };

function emptyValue(spec: OptionSpec): number | boolean | string | null {
  return spec.kind === 'enum' || spec.kind === 'ruleSet' ? '' : null;
}

export const EMPTY_OPTIONS: OptionValues = Object.fromEntries(OPTION_NAMES.map((name) => [name, emptyValue(METHOD_OPTIONS[name])])) as OptionValues;

/**
 * The options a form sets, for a request: empty fields are left out (the method's default). A
 * number is sent as typed, so one the schema refuses (2.5 steps) comes back as the service's error
 * instead of silently running at the default; a rule set that is no longer offered is left out.
 */
export function optionsFromForm(v: OptionValues, ruleSetIds: readonly string[]): ExplainOptions {
  const out: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    const spec: OptionSpec = METHOD_OPTIONS[name];
    const value: unknown = v[name];
    if (spec.kind === 'integer' || spec.kind === 'number') {
      if (typeof value === 'number' && !Number.isNaN(value)) out[name] = value;
    } else if (spec.kind === 'boolean') {
      if (typeof value === 'boolean') out[name] = value;
    } else if (typeof value === 'string' && value !== '' && (spec.kind === 'enum' || ruleSetIds.includes(value))) out[name] = value;
  }
  return out as ExplainOptions;
}

export type TabId = 'explain' | 'compare' | 'layers' | 'evaluate';
export const TABS: readonly TabId[] = ['explain', 'compare', 'layers', 'evaluate'];

export interface ViewSettings {
  tab: TabId;
  method: string;
  layersMethod: string;
  compareMethods: string[];
  colormap: ColormapId | 'auto';
  alpha: number;
  explainOptions: OptionValues;
  compareOptions: OptionValues;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function readOptions(raw: unknown): OptionValues {
  const o = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : {};
  const out: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    const spec: OptionSpec = METHOD_OPTIONS[name];
    const v = o[name];
    if (spec.kind === 'integer' || spec.kind === 'number') out[name] = num(v);
    else if (spec.kind === 'boolean') out[name] = typeof v === 'boolean' ? v : null;
    else if (spec.kind === 'enum') out[name] = typeof v === 'string' && spec.values.includes(v) ? v : '';
    else out[name] = typeof v === 'string' ? v : '';
  }
  return out as OptionValues;
}

export function loadSettings(defaults: ViewSettings): ViewSettings {
  let raw: Record<string, unknown>;
  try {
    const text = window.localStorage.getItem(KEY);
    if (!text) return defaults;
    const parsed: unknown = JSON.parse(text);
    if (!parsed || typeof parsed !== 'object') return defaults;
    raw = parsed as Record<string, unknown>;
  } catch {
    return defaults;
  }
  const str = (k: string, d: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : d);
  const cm = raw['colormap'];
  const alpha = num(raw['alpha']);
  return {
    tab: (TABS as readonly unknown[]).includes(raw['tab']) ? (raw['tab'] as TabId) : defaults.tab,
    method: str('method', defaults.method),
    layersMethod: str('layersMethod', defaults.layersMethod),
    compareMethods: Array.isArray(raw['compareMethods']) ? raw['compareMethods'].filter((m): m is string => typeof m === 'string') : defaults.compareMethods,
    colormap: cm === 'auto' || (COLORMAP_IDS as readonly unknown[]).includes(cm) ? (cm as ColormapId | 'auto') : defaults.colormap,
    alpha: alpha !== null && alpha >= 0 && alpha <= 1 ? alpha : defaults.alpha,
    explainOptions: raw['explainOptions'] ? readOptions(raw['explainOptions']) : defaults.explainOptions,
    compareOptions: raw['compareOptions'] ? readOptions(raw['compareOptions']) : defaults.compareOptions,
  };
}

export function saveSettings(s: ViewSettings): void {
  try {
    window.localStorage.setItem(KEY, JSON.stringify(s));
  } catch {
    // Storage full or disabled: the settings are just not kept.
  }
}
