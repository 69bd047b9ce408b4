/** Runs the real CLI (built by `npm test`'s pretest step) and captures everything. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES } from './golden.js';

const run = promisify(execFile);
export const ROOT = path.resolve(FIXTURES, '..', '..');
const BIN = path.join(ROOT, 'bin', 'relprop.js');

export async function relprop(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
