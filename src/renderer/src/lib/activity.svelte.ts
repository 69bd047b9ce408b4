// What the service is doing, for every page: the activity bar's list, shared
// with the panels that reattach to work a page's earlier life started (a
// running evaluation after a reload). The bar (ActivityBar.svelte) polls it.

import type { Activity } from '../../../shared/api';

export const activity = $state<{ list: Activity[]; attached: boolean; waiting: number }>({ list: [], attached: false, waiting: 0 });

const wakers = new Set<() => void>();

/** Poll now: the page has asked for something (it may show up as an activity). */
export function poke(): void {
  for (const w of wakers) w();
}

export function onPoke(wake: () => void): () => void {
  wakers.add(wake);
  return () => wakers.delete(wake);
}

/** Count a call the page waits for, so the bar polls fast meanwhile. */
export function noteCall<T>(call: Promise<T>): Promise<T> {
  activity.waiting++;
  poke();
  return call.finally(() => {
    activity.waiting--;
  });
}
