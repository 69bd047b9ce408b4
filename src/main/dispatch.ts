// One entry point for every API call, whichever transport brought it (IPC or
// HTTP): look the method up, validate the request, run it, and turn the outcome
// into an envelope. Keeping this in one place means the two transports cannot
// differ in what they accept.

import { ApiError, type ApiEnvelope, type ApiMethod, type ApiRequest, type ApiResponse, type VersionInfo } from '../shared/api.js';
import { RelpropError } from '../core/errors.js';
import { isApiMethod, validateRequest } from '../shared/validate.js';
import type { RelpropService } from './service.js';

/** What depends on the host (Electron or `relprop serve`) rather than on the service. */
export interface HostFunctions {
  version(): VersionInfo;
  /** Absent in web mode, where there is no native dialog. */
  pickModelFolder?: () => Promise<string | null>;
  /** Absent in web mode: a native dialog for an evaluation's data folder or file. */
  pickDataPath?: () => Promise<string | null>;
}

/**
 * `client` names the page (window) that asked, as the transport knows it (a webContents in the
 * desktop app, a tab's id in web mode): jobs belong to it, are bounded per client, and are
 * cancelled when it goes away.
 */
export type ApiHandler = (method: string, request: unknown, client?: string) => Promise<ApiEnvelope<unknown>>;

type Implementations = { [M in ApiMethod]: (request: ApiRequest<M>, client: string) => Promise<ApiResponse<M>> | ApiResponse<M> };

export function createApiHandler(service: RelpropService, host: HostFunctions, log: (message: string) => void = () => {}): ApiHandler {
  const impl: Implementations = {
    version: () => host.version(),
    listModels: () => service.listModels(),
    addModel: (folder, c) => service.addModel(folder, c),
    removeModel: (id) => service.removeModel(id),
    listMethods: () => service.listMethods(),
    openImage: (r, c) => service.openImage(r, c),
    openText: (r, c) => service.openText(r, c),
    reopen: (r, c) => service.reopen(r, c),
    explain: (r, c) => service.explain(r, c),
    compare: (r, c) => service.compare(r, c),
    job: (q) => service.job(q),
    cancel: (id) => service.cancel(id),
    evaluate: (r, c) => service.evaluate(r, c),
    evaluation: (id) => service.evaluation(id),
    exportReport: (r) => service.exportReport(r),
    activity: (_r, c) => service.activity(c),
    attach: (_r, c) => service.attach(c),
    detach: (_r, c) => service.detach(c),
    pickDataPath: () => {
      if (!host.pickDataPath) throw new ApiError('there is no file dialog in web mode: type the path instead', 'unavailable');
      return host.pickDataPath();
    },
    pickModelFolder: () => {
      if (!host.pickModelFolder) throw new ApiError('there is no folder dialog in web mode: type the folder path instead', 'unavailable');
      return host.pickModelFolder();
    },
  };

  async function run<M extends ApiMethod>(method: M, raw: unknown, client: string): Promise<ApiResponse<M>> {
    const request = validateRequest(method, raw, await service.validationContext(method));
    return impl[method](request, client);
  }

  return async (method, raw, client = 'local') => {
    if (!isApiMethod(method)) return { ok: false, error: `unknown API method '${method}'`, code: 'not-found' };
    try {
      return { ok: true, value: await run(method, raw, client) };
    } catch (err) {
      if (err instanceof ApiError) return { ok: false, error: err.message, code: err.code };
      if (err instanceof RelpropError) return { ok: false, error: err.message, code: 'failed' };
      // Unexpected: the message still goes to the user, the stack to the log for a bug report.
      log(`${method}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return { ok: false, error: `internal error: ${err instanceof Error ? err.message : String(err)}`, code: 'failed' };
    }
  };
}
