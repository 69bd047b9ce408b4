import { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session, type IpcMainInvokeEvent, type WebContents } from 'electron';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { API_METHODS, ipcChannel } from '../shared/api';
import { contentSecurityPolicy } from '../shared/csp';
import { createApiHandler } from './dispatch';
import { RelpropService } from './service';
import { devServerUrl, isOwnRendererUrl as isRendererUrl, menuTemplate, RENDERER_ENTRY, RENDERER_SCHEME, rendererResponse } from './electron-policy';

// Built layout (electron-vite): out/main/index.js, out/preload/index.cjs,
// out/renderer/index.html. The preload is CommonJS because sandboxed preloads
// cannot load ES modules.
const PRELOAD_PATH = join(import.meta.dirname, '../preload/index.cjs');
const RENDERER_DIR = resolve(import.meta.dirname, '../renderer');
// out/main/ -> the package root, where the shipped models/ live. The worker
// (out/main/worker.js, a second entry of the main build) sits next to us.
const PACKAGE_ROOT = resolve(import.meta.dirname, '../..');

// Honoured only unpackaged and with --relprop-dev (electron-policy.ts): a packaged app, or one
// merely given the variable, must never be talked into loading (and trusting) a URL from its environment.
const dev = devServerUrl(process.env, process.argv, app.isPackaged);
if (dev.ignored) process.stderr.write(`relprop: ${dev.ignored}\n`);
const DEV_SERVER_URL: URL | undefined = dev.url;

const CSP = contentSecurityPolicy(DEV_SERVER_URL?.href);

/** True only for our own renderer page (any query/hash), in dev or built. */
function isOwnRendererUrl(raw: string): boolean {
  return isRendererUrl(raw, DEV_SERVER_URL);
}

// The page's own scheme: standard and secure (a real origin, fetch and storage work), registered
// before 'ready' as Electron requires.
protocol.registerSchemesAsPrivileged([{ scheme: RENDERER_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

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
  // Outside development DevTools stay shut, whatever opens them (the menu no longer offers them).
  if (!DEV_SERVER_URL) contents.on('devtools-opened', () => contents.closeDevTools());
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
    void win.loadURL(RENDERER_ENTRY);
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
protocol.handle(RENDERER_SCHEME, async (request) => {
  const reply = await rendererResponse(RENDERER_DIR, request.url, request.method);
  const body = typeof reply.body === 'string' ? reply.body : new Uint8Array(reply.body.buffer as ArrayBuffer, reply.body.byteOffset, reply.body.byteLength);
  return new Response(body, { status: reply.status, headers: reply.headers });
});
// No Reload or DevTools outside development: a reload would drop the page's work, DevTools its guard.
Menu.setApplicationMenu(Menu.buildFromTemplate(menuTemplate(DEV_SERVER_URL !== undefined)));
hardenSession();
registerIpc();
createWindow();

app.on('activate', () => {
  if (BrowserWindow.getAllWindows().length === 0) createWindow();
});
