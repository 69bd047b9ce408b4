// View settings kept across restarts, in the page's own localStorage (the
// app's origin; nothing leaves the machine). Read back field by field: a value
// that is not what the field holds (an older version, a hand edit) is dropped,
// never trusted.

import { COLORMAP_IDS, OCCLUSION_MODES, type ColormapId, type OcclusionModeId } from '../../../shared/api';

const KEY = 'relprop.view.v1';

/** Method options as the forms hold them; null or '' is the method's own default. */
export interface OptionValues {
  startLayer: number | null;
  rules: string;
  steps: number | null;
  occlusion: OcclusionModeId | '';
  samples: number | null;
  noise: number | null;
  seed: number | null;
  gamma: number | null;
}

export const EMPTY_OPTIONS: OptionValues = { startLayer: null, rules: '', steps: null, occlusion: '', samples: null, noise: null, seed: null, gamma: null };

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
  return {
    startLayer: num(o['startLayer']),
    rules: typeof o['rules'] === 'string' ? o['rules'] : '',
    steps: num(o['steps']),
    occlusion: typeof o['occlusion'] === 'string' && (OCCLUSION_MODES as readonly string[]).includes(o['occlusion']) ? (o['occlusion'] as OcclusionModeId) : '',
    samples: num(o['samples']),
    noise: num(o['noise']),
    seed: num(o['seed']),
    gamma: num(o['gamma']),
  };
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
