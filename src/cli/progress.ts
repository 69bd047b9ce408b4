/**
 * Progress and Ctrl-C for commands that run one long computation (`relprop explain` with many
 * integration steps, noisy copies or occluded units): a progress line with an ETA on stderr, and
 * a clean stop on SIGINT/SIGTERM (exit 130, one line, no output written).
 */
import { CancelledError } from '../core/errors.js';
import type { ExplainProgress } from '../core/context.js';

/** Whether to show progress: --progress / --no-progress, else RELPROP_PROGRESS=1/0, else when stderr is a terminal. */
export function wantProgress(flag: boolean | undefined): { show: boolean; forced: boolean } {
  const env = process.env['RELPROP_PROGRESS'];
  const asked = flag ?? (env === '1' ? true : env === '0' ? false : undefined);
  if (asked !== undefined) return { show: asked, forced: asked };
  return { show: !!process.stderr.isTTY, forced: false };
}

export function eta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '…';
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  if (seconds < 86400 * 2) return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
  if (seconds < 86400 * 365 * 2) return `${Math.round(seconds / 86400)} days`;
  return `${(seconds / (86400 * 365.25)).toPrecision(3)} years`;
}

/**
 * A progress callback writing `relprop: <method> <done>/<total> <unit> (p %), ETA <t>` to stderr: on
 * a terminal one line rewritten in place, once a method has run for a second (short runs print
 * nothing); when forced, at most one line a second, plus the first and the last. stdout is never touched, so --json stays one JSON object.
 */
export function progressPrinter(mode: { show: boolean; forced: boolean }, intervalMs = 1000): { onProgress?: (p: ExplainProgress) => void; end: () => void } {
  if (!mode.show) return { end: () => {} };
  const tty = !!process.stderr.isTTY;
  let method = '';
  let t0 = 0;
  let done0 = 0;
  let last = -Infinity;
  let open = false;
  const onProgress = (p: ExplainProgress) => {
    const now = performance.now();
    // Each method's clock starts at its first report (after its first pass), so loading, the
    // report's earlier methods and the first pass's warm-up do not skew its rate.
    if (p.method !== method) {
      method = p.method;
      t0 = now;
      done0 = p.done;
      last = -Infinity;
    }
    const final = p.done >= p.total;
    const elapsed = (now - t0) / 1000;
    if (tty && !mode.forced && elapsed < 1 && !final) return;
    if (tty && !mode.forced && final && !open) return;
    if (!final && now - last < intervalMs) return;
    last = now;
    const rate = p.done > done0 ? elapsed / (p.done - done0) : NaN;
    const line = `relprop: ${p.method} ${p.done}/${p.total} ${p.unit} (${((100 * p.done) / p.total).toFixed(1)} %), ETA ${final ? '0 s' : eta(rate * (p.total - p.done))}`;
    if (tty) {
      process.stderr.write(`\r${line}\x1b[K${final ? '\n' : ''}`);
      open = !final;
    } else process.stderr.write(`${line}\n`);
  };
  return {
    onProgress,
    end: () => {
      if (open) process.stderr.write('\n');
      open = false;
    },
  };
}

/**
 * Runs `work` with an AbortSignal that SIGINT (Ctrl-C) and SIGTERM abort. When the work stops with
 * CancelledError after a signal, prints one line and sets exit code 130 (128 + SIGINT, as a shell
 * reports a Ctrl-C), instead of dying by the signal. `work` must write its outputs only after its
 * last cancellable step, so that nothing is written once it is cancelled.
 */
export async function interruptible(work: (signal: AbortSignal) => Promise<void>, end: () => void = () => {}): Promise<void> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await work(stop.signal);
  } catch (err) {
    if (!(err instanceof CancelledError && stop.signal.aborted)) throw err;
    end();
    process.stderr.write('relprop: interrupted; nothing was written\n');
    process.exitCode = 130;
  } finally {
    end();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
