// Runs sandboxed (sandbox: true), so it may only require('electron') and must
// be built as one CommonJS file; anything else it needs has to be bundled in.
// It exposes a single narrow API object, never ipcRenderer itself, so the page
// cannot reach arbitrary IPC channels.
import { contextBridge, ipcRenderer } from 'electron';
import { IPC_CHANNELS, type RelpropApi, type VersionInfo } from '../shared/api';

const api: RelpropApi = {
  version: () => ipcRenderer.invoke(IPC_CHANNELS.version) as Promise<VersionInfo>,
};

contextBridge.exposeInMainWorld('relprop', api);
