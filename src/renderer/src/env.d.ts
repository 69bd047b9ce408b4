/// <reference types="svelte" />
/// <reference types="vite/client" />
import type { RelpropApi } from '../../shared/api';

declare global {
  interface Window {
    // Optional: the preload provides it in the desktop app; in web mode (a
    // plain browser talking to `relprop serve`) it is absent and getApi()
    // falls back to HTTP.
    readonly relprop?: RelpropApi;
  }
}

export {};
