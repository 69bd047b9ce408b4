/** Runs the real CLI (built by `npm test`'s pretest step) and captures everything. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { FIXTURES } from './golden.js';

const run = promisify(execFile);
export const ROOT = path.resolve(FIXTURES, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'relprop.js');

export interface CliResult {
  /** The exit status; null when a signal ended the process. */
  code: number | null;
  /** The signal that ended the process (SIGSEGV, …), or null. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A line of a JavaScript stack trace ("    at f (file.js:1:2)"), which no CLI error may print. */
export const STACK_FRAME = /^\s+at (?:.+ \()?(?:[^\s()]+:\d+:\d+|native|<anonymous>)\)?$/m;

export async function relpropWith(options: CliOptions, ...args: string[]): Promise<CliResult> {
  let r: CliResult;
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, maxBuffer: 64 << 20 });
    r = { code: 0, signal: null, stdout, stderr };
  } catch (err) {
    const e = err as { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };
    r = { code: typeof e.code === 'number' ? e.code : null, signal: e.signal ?? null, stdout: e.stdout, stderr: e.stderr };
  }
  // Every failing command, in every test: one readable message, never a stack trace (only RELPROP_DEBUG=1 shows one).
  const debug = (options.env ?? process.env)['RELPROP_DEBUG'] === '1';
  if (r.code !== 0 && !debug && STACK_FRAME.test(r.stderr)) {
    throw new Error(`relprop ${args.join(' ').slice(0, 200)} printed a stack trace on exit ${r.code ?? r.signal}:\n${r.stderr}`);
  }
  if (r.signal) throw new Error(`relprop ${args.join(' ').slice(0, 200)} was killed by ${r.signal}:\n${r.stderr}`);
  return r;
}

export async function relprop(...args: string[]): Promise<CliResult> {
  return relpropWith({}, ...args);
}

/**
 * What every CLI error test asserts: the exit code, the message, nothing on stdout, and a stderr of
 * `relprop: …` lines with no stack frame.
 */
export function expectCliError(r: CliResult, code: number, message: RegExp): void {
  expect(r.signal, r.stderr).toBeNull();
  expect(r.code, r.stderr).toBe(code);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(STACK_FRAME);
  expect(r.stdout).toBe('');
}

/** The text of an element relprop escaped with escapeHtml (src/core/report/token-highlight.ts), back as written. */
export function unescapeHtml(t: string): string {
  return t.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#13;/g, '\r').replace(/&amp;/g, '&');
}
