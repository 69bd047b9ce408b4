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

export type ApiHandler = (method: string, request: unknown) => Promise<ApiEnvelope<unknown>>;

type Implementations = { [M in ApiMethod]: (request: ApiRequest<M>) => Promise<ApiResponse<M>> | ApiResponse<M> };

export function createApiHandler(service: RelpropService, host: HostFunctions, log: (message: string) => void = () => {}): ApiHandler {
  const impl: Implementations = {
    version: () => host.version(),
    listModels: () => service.listModels(),
    addModel: (folder) => service.addModel(folder),
    removeModel: (id) => service.removeModel(id),
    listMethods: () => service.listMethods(),
    openImage: (r) => service.openImage(r),
    openText: (r) => service.openText(r),
    reopen: (r) => service.reopen(r),
    explain: (r) => service.explain(r),
    compare: (r) => service.compare(r),
    job: (q) => service.job(q),
    cancel: (id) => service.cancel(id),
    evaluate: (r) => service.evaluate(r),
    evaluation: (id) => service.evaluation(id),
    exportReport: (r) => service.exportReport(r),
    pickDataPath: () => {
      if (!host.pickDataPath) throw new ApiError('there is no file dialog in web mode: type the path instead', 'unavailable');
      return host.pickDataPath();
    },
    pickModelFolder: () => {
      if (!host.pickModelFolder) throw new ApiError('there is no folder dialog in web mode: type the folder path instead', 'unavailable');
      return host.pickModelFolder();
    },
  };

  async function run<M extends ApiMethod>(method: M, raw: unknown): Promise<ApiResponse<M>> {
    const request = validateRequest(method, raw, await service.validationContext(method));
    return impl[method](request);
  }

  return async (method, raw) => {
    if (!isApiMethod(method)) return { ok: false, error: `unknown API method '${method}'`, code: 'not-found' };
    try {
      return { ok: true, value: await run(method, raw) };
    } catch (err) {
      if (err instanceof ApiError) return { ok: false, error: err.message, code: err.code };
      if (err instanceof RelpropError) return { ok: false, error: err.message, code: 'failed' };
      // Unexpected: the message still goes to the user, the stack to the log for a bug report.
      log(`${method}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return { ok: false, error: `internal error: ${err instanceof Error ? err.message : String(err)}`, code: 'failed' };
    }
  };
}
