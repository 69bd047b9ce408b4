import { app, BrowserWindow, ipcMain, session, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { IPC_CHANNELS, type VersionInfo } from '../shared/api';
import { contentSecurityPolicy } from '../shared/csp';

// Built layout (electron-vite): out/main/index.js, out/preload/index.cjs,
// out/renderer/index.html. The preload is CommonJS because sandboxed preloads
// cannot load ES modules.
const PRELOAD_PATH = join(import.meta.dirname, '../preload/index.cjs');
const RENDERER_INDEX = resolve(import.meta.dirname, '../renderer/index.html');

// Honoured only when unpackaged: a packaged app must never be talked into
// loading (and trusting) a URL taken from its environment.
const DEV_SERVER_URL: URL | undefined =
  !app.isPackaged && process.env['ELECTRON_RENDERER_URL'] ? new URL(process.env['ELECTRON_RENDERER_URL']) : undefined;

const CSP = contentSecurityPolicy(DEV_SERVER_URL?.href);

function samePath(a: string, b: string): boolean {
  return process.platform === 'win32' ? a.toLowerCase() === b.toLowerCase() : a === b;
}

/** True only for our own renderer page (any query/hash), in dev or built. */
function isOwnRendererUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (DEV_SERVER_URL) return url.origin === DEV_SERVER_URL.origin;
  if (url.protocol !== 'file:') return false;
  try {
    return samePath(resolve(fileURLToPath(url)), RENDERER_INDEX);
  } catch {
    return false;
  }
}

// Only our top-level renderer document may call the API: not an iframe, not a
// page the window was somehow navigated to.
function assertTrustedSender(event: IpcMainInvokeEvent): void {
  const frame = event.senderFrame;
  if (!frame || frame.parent !== null || !isOwnRendererUrl(frame.url)) {
    throw new Error('relprop: IPC from an untrusted frame was refused');
  }
}

function registerIpc(): void {
  ipcMain.handle(IPC_CHANNELS.version, (event): VersionInfo => {
    assertTrustedSender(event);
    return { app: app.getVersion(), electron: process.versions.electron, node: process.versions.node };
  });
}

// Applied to every webContents, not just our window, so nothing created later
// (a devtools-opened page, a future webview) slips past the rules.
function lockDown(contents: WebContents): void {
  const blockForeign = (event: { preventDefault(): void }, url: string): void => {
    if (!isOwnRendererUrl(url)) event.preventDefault();
  };
  contents.on('will-navigate', (event) => blockForeign(event, event.url));
  contents.on('will-redirect', (event) => blockForeign(event, event.url));
  contents.on('will-attach-webview', (event) => event.preventDefault());
  contents.setWindowOpenHandler(() => ({ action: 'deny' }));
}

function hardenSession(): void {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  ses.setPermissionCheckHandler(() => false);
  ses.setDevicePermissionHandler(() => false);
  // Whether webRequest sees file:// loads has varied across Electron versions
  // (and web mode serves the page without us), so index.html carries the same
  // policy as a <meta> tag as well; the header is what enforces frame-ancestors.
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CSP] } });
  });
}

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1200,
    height: 800,
    show: false,
    title: 'relprop',
    webPreferences: {
      preload: PRELOAD_PATH,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
    },
  });
  // Avoids a white flash before the first paint.
  win.once('ready-to-show', () => win.show());
  if (DEV_SERVER_URL) {
    void win.loadURL(DEV_SERVER_URL.href);
  } else {
    void win.loadURL(pathToFileURL(RENDERER_INDEX).href);
  }
  return win;
}

// Must precede 'ready': forces the sandbox on every renderer, whatever a
// future BrowserWindow's options say.
app.enableSandbox();

app.on('web-contents-created', (_event, contents) => lockDown(contents));

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

await app.whenReady();
hardenSession();
registerIpc();
createWindow();

app.on('activate', () => {
  if (BrowserWindow.getAllWindows().length === 0) createWindow();
});
