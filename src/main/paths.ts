// The files the app opens for the user (model folders, evaluation data, the
// built renderer) are opened only where their real path stays inside the
// folder the user chose. A model folder downloaded from somewhere may carry a
// `config.json` that is a link to ~/.ssh/id_rsa; without this check its first
// bytes would come back in a JSON parse error, and an evaluation's `.txt`
// link would be tokenised into the report.
//
// The core's loaders read only the top level of a model or image folder, so
// checking that level covers every file they can open.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ApiError } from '../shared/api.js';

/** True when `file` (already resolved) is `folder` or lies below it. */
export function isInside(folder: string, file: string): boolean {
  const rel = path.relative(folder, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Throws unless `file`, links followed, lies inside `folder` (links followed too: the folder the
 * user chose may itself be a link). The message names the file, never its target or its contents.
 */
export async function assertInside(folder: string, file: string, what = 'folder'): Promise<void> {
  const [realFolder, realFile] = await Promise.all([fs.realpath(folder), fs.realpath(file)]);
  if (!isInside(realFolder, realFile)) {
    throw new ApiError(`${file} is a link that leads outside the ${what} ${folder}: relprop opens only files inside the ${what} you chose (copy the file in instead of linking it)`, 'bad-request');
  }
}

/** Every entry at the top of `folder` stays inside it (a dangling link is refused too: it cannot be checked). */
export async function assertFolderContained(folder: string, what: string): Promise<void> {
  const realFolder = await fs.realpath(folder);
  for (const entry of await fs.readdir(folder, { withFileTypes: true })) {
    if (!entry.isSymbolicLink()) continue;
    const file = path.join(folder, entry.name);
    let real: string;
    try {
      real = await fs.realpath(file);
    } catch {
      throw new ApiError(`${file} is a link that leads nowhere: relprop opens only files inside the ${what} you chose`, 'bad-request');
    }
    if (!isInside(realFolder, real)) {
      throw new ApiError(`${file} is a link that leads outside the ${what} ${folder}: relprop opens only files inside the ${what} you chose (copy the file in instead of linking it)`, 'bad-request');
    }
  }
}
