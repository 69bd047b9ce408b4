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
