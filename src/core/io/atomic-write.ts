/**
 * Outputs appear whole or not at all: each is written to a temporary file in its own folder and
 * renamed over the target (rename is atomic within a file system), so an interrupted or failed run
 * never leaves a half-written file that looks complete. The temporary files in flight are known, so
 * an interrupt handler can remove them (removeTempFiles).
 */
import { promises as fs, rmSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { OutputError, systemErrorReason } from '../errors.js';

const inFlight = new Set<string>();

/** Create `file`'s folder if needed; errors name the file. */
export async function ensureFolderFor(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  try {
    await fs.mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'EEXIST' || code === 'ENOTDIR' ? 'a part of the path is a file, not a folder' : (systemErrorReason(err) ?? String(err));
    throw new OutputError(`cannot create its folder ${dir}: ${reason}`, file);
  }
}

/**
 * Write `file` through `write(tempPath)`, then rename the temporary file onto `file`. On any error
 * the temporary file is removed and `file` is left as it was.
 */
export async function withAtomicFile(file: string, write: (tempPath: string) => Promise<void>): Promise<void> {
  await ensureFolderFor(file);
  const target = path.resolve(file);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  inFlight.add(temp);
  try {
    try {
      await write(temp);
    } catch (err) {
      const reason = systemErrorReason(err);
      throw reason ? new OutputError(`cannot write: ${reason}`, file) : err;
    }
    try {
      await fs.rename(temp, target);
    } catch (err) {
      throw new OutputError(`cannot write: ${systemErrorReason(err) ?? String(err)}`, file);
    }
  } finally {
    inFlight.delete(temp);
    await fs.rm(temp, { force: true }).catch(() => undefined);
  }
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await withAtomicFile(file, (temp) => fs.writeFile(temp, data));
}

/** Remove the temporary files of writes in flight (for an interrupt handler; synchronous). */
export function removeTempFiles(): void {
  for (const f of inFlight) rmSync(f, { force: true });
  inFlight.clear();
}

/** The real path `file` has or would have: symlinks in its existing part resolved. */
export async function realTarget(file: string): Promise<string> {
  const abs = path.resolve(file);
  try {
    return await fs.realpath(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(await realTarget(parent), path.basename(abs));
  }
}

/**
 * Refuse outputs that would overwrite an input (an image overwritten by its own overlay) or each
 * other: real paths are compared, so a symlink or `./x/../x.png` does not slip through.
 */
export async function assertOutputsSpareInputs(outputs: ReadonlyArray<readonly [flag: string, file: string]>, inputs: ReadonlyArray<readonly [flag: string, file: string]>): Promise<void> {
  const real = async (list: ReadonlyArray<readonly [string, string]>) => Promise.all(list.map(async ([flag, f]) => [flag, f, await realTarget(f)] as const));
  const ins = await real(inputs);
  const outs = await real(outputs);
  for (const [i, [flag, f, r]] of outs.entries()) {
    const hit = ins.find(([, , ri]) => ri === r);
    if (hit) throw new OutputError(`${flag} names the input ${hit[0]} ${hit[1]}: refusing to overwrite an input; choose another file name`, f);
    const twice = outs.slice(0, i).find(([, , ro]) => ro === r);
    if (twice) throw new OutputError(`${flag} and ${twice[0]} name the same file`, f);
  }
}
