import { promises as fs } from 'node:fs';
import { CheckpointError } from '../errors.js';

type Json = Record<string, unknown>;

/** A model folder's JSON object file (config.json, preprocessor_config.json): absent is undefined unless required; unreadable, invalid or not an object is an error naming the file. */
export async function readJson(file: string, required: boolean): Promise<Json | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CheckpointError(`cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, file);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(`not valid JSON: ${(err as Error).message}`, file);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new CheckpointError('expected a JSON object', file);
  return value as Json;
}
