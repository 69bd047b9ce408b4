// The one contract between the main process, the preload and the renderer.
// The renderer must only ever depend on this interface, never on how it is
// carried (IPC in the desktop app, HTTP in web mode), so both can stand in.

export interface VersionInfo {
  app: string;
  electron: string;
  node: string;
}

export interface RelpropApi {
  version(): Promise<VersionInfo>;
}

// Channel names live here so main and preload cannot drift apart.
export const IPC_CHANNELS = {
  version: 'relprop:version',
} as const;
