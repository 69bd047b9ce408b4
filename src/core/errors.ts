/**
 * Errors a user can act on. Each names the file (or input) and the problem, so the CLI and the app
 * can show the message as it is, without a stack trace.
 */
export class RelpropError extends Error {
  constructor(message: string, readonly file?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = new.target.name;
  }
}

/** A checkpoint (safetensors file, config.json, model folder) that cannot be used. */
export class CheckpointError extends RelpropError {}

/** An input (image, tensor, sentence) that cannot be used with this model. */
export class InputError extends RelpropError {}

/** A request that does not make sense: unknown method, bad option value, target out of range. */
export class UsageError extends RelpropError {}

/** A computation stopped because whoever asked for it cancelled it (see ort-products.setProductGuard). */
export class CancelledError extends RelpropError {}

/**
 * NaN or ±Infinity where a number must be finite: in an input, the logits or a map. A non-finite
 * map drawn or saved would look like a result (a blank overlay, `null`s in JSON), so it stops here.
 */
export class NonFiniteError extends RelpropError {}

/** Where `values` first holds NaN or ±Infinity, and how many such values there are; null if none. */
export function findNonFinite(values: ArrayLike<number>): { index: number; value: number; count: number } | null {
  let index = -1;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      if (index < 0) index = i;
      count++;
    }
  }
  return index < 0 ? null : { index, value: values[index]!, count };
}

/** An output that cannot be written (folder missing or not writable, a path naming an input). */
export class OutputError extends RelpropError {}

/** A Node system error (ENOENT, EACCES, …) in words, or undefined for anything else. */
export function systemErrorReason(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or folder';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a folder';
    case 'ENOTDIR':
      return 'a part of the path is not a folder';
    case 'EEXIST':
      return 'already exists';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'EROFS':
      return 'read-only file system';
    case 'EMFILE':
      return 'too many open files';
    default:
      return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
  }
}
