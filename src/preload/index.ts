// Runs sandboxed (sandbox: true), so it may only require('electron') and must
// be built as one CommonJS file; anything else it needs has to be bundled in.
// It exposes a single narrow API object, never ipcRenderer itself, so the page
// cannot reach arbitrary IPC channels: one function per method of RelpropApi,
// each bound to its own channel, passing at most one argument.
import { contextBridge, ipcRenderer } from 'electron';
import { API_METHODS, ipcChannel, unwrapEnvelope, type RelpropApi } from '../shared/api';

function call(method: (typeof API_METHODS)[number]) {
  return async (request?: unknown): Promise<unknown> => unwrapEnvelope(await ipcRenderer.invoke(ipcChannel(method), request), method);
}

const api = Object.fromEntries(API_METHODS.map((method) => [method, call(method)])) as unknown as RelpropApi;

contextBridge.exposeInMainWorld('relprop', api);
