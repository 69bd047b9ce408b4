import { app, BrowserWindow, dialog, ipcMain, session, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { API_METHODS, ipcChannel } from '../shared/api';
import { contentSecurityPolicy } from '../shared/csp';
import { createApiHandler } from './dispatch';
import { RelpropService } from './service';

// Built layout (electron-vite): out/main/index.js, out/preload/index.cjs,
// out/renderer/index.html. The preload is CommonJS because sandboxed preloads
// cannot load ES modules.
const PRELOAD_PATH = join(import.meta.dirname, '../preload/index.cjs');
const RENDERER_INDEX = resolve(import.meta.dirname, '../renderer/index.html');
// out/main/ -> the package root, where the shipped models/ live. The worker
// (out/main/worker.js, a second entry of the main build) sits next to us.
const PACKAGE_ROOT = resolve(import.meta.dirname, '../..');

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

const log = (message: string): void => {
  process.stderr.write(`relprop: ${message}\n`);
};
/**
 * Reports print with Electron's own Chromium, so the desktop app needs no system browser. The
 * page goes through a temporary file (a data: URL is capped at 2 MB, and a report with pictures
 * is larger) into a hidden, sandboxed window with scripts off and no preload.
 */
async function printToPdf(html: string): Promise<Uint8Array> {
  const dir = await mkdtemp(join(tmpdir(), 'relprop-report-'));
  const win = new BrowserWindow({ show: false, webPreferences: { sandbox: true, contextIsolation: true, nodeIntegration: false, javascript: false } });
  try {
    const file = join(dir, 'report.html');
    await writeFile(file, html);
    await win.loadFile(file);
    return await win.webContents.printToPDF({ pageSize: 'A4', printBackground: true });
  } finally {
    win.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

const service = new RelpropService({
  packageRoot: PACKAGE_ROOT,
  workerFile: join(import.meta.dirname, 'worker.js'),
  evalWorkerFile: join(import.meta.dirname, 'eval-worker.js'),
  htmlToPdf: printToPdf,
  log,
});


// Every API method goes through the same handler as `relprop serve`, which
// validates each request (shared/validate.ts) before the service sees it.
function registerIpc(): void {
  const handler = createApiHandler(
    service,
    {
      version: () => ({ app: app.getVersion(), electron: process.versions.electron ?? '', node: process.versions.node }),
      pickModelFolder: async () => {
        const win = BrowserWindow.getFocusedWindow();
        const options = { title: 'Add a model folder', properties: ['openDirectory' as const] };
        const result = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
        return result.canceled ? null : (result.filePaths[0] ?? null);
      },
      pickDataPath: async () => {
        const win = BrowserWindow.getFocusedWindow();
        const options = {
          title: 'Data to evaluate on: a folder of images, or a .txt / .jsonl file',
          properties: ['openDirectory' as const, 'openFile' as const],
          filters: [{ name: 'Sentences', extensions: ['txt', 'jsonl'] }],
        };
        const result = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
        return result.canceled ? null : (result.filePaths[0] ?? null);
      },
    },
    log,
  );
  for (const method of API_METHODS) {
    ipcMain.handle(ipcChannel(method), (event, request: unknown) => {
      assertTrustedSender(event);
      return handler(method, request, ipcClient(event.sender));
    });
  }
}

/** A window's name for the service: its jobs are bounded per window and cancelled when it goes away. */
function ipcClient(contents: WebContents): string {
  return `ipc-${contents.id}`;
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
  // A reload or a closed window leaves nobody to read its explanations: cancel them (evaluations go on).
  const client = ipcClient(contents);
  contents.on('did-start-navigation', (details) => {
    if (details.isMainFrame && !details.isSameDocument) service.detach(client);
  });
  contents.once('destroyed', () => service.detach(client));
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

app.on('will-quit', () => {
  void service.close();
});

await app.whenReady();
hardenSession();
registerIpc();
createWindow();

app.on('activate', () => {
  if (BrowserWindow.getAllWindows().length === 0) createWindow();
});
