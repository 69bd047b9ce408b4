// Files the service makes (reports) come back as base64 and are saved the way
// a browser saves any download: in web mode the browser asks where, and in
// Electron the default download handler shows a save dialog. Either way the
// page never gets a file-system path.

import type { ExportedFile } from '../../../shared/api';

export function saveFile(file: ExportedFile): void {
  const bytes = Uint8Array.from(atob(file.base64), (c) => c.charCodeAt(0));
  const url = URL.createObjectURL(new Blob([bytes], { type: file.mime }));
  saveUrl(url, file.name);
  // Revoked later, not now: the download starts asynchronously after the click.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function saveUrl(url: string, name: string): void {
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
}
