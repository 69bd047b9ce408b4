// Messages between the service (main thread) and the compute worker. Internal
// to src/main: the renderer never sees these, only the types in shared/api.ts.

import type { ApiErrorCode, ExplainOptions, ExplainResult, MethodCatalogue, OpenedInput, SkippedMethod } from '../shared/api.js';

export interface ModelRef {
  readonly id: string;
  readonly dir: string;
}

/** What an input was made from, so a fresh worker can rebuild it after the old one was stopped. */
export type InputSource =
  | { readonly kind: 'image'; readonly name: string; readonly bytes: Uint8Array }
  | { readonly kind: 'text'; readonly name: string; readonly text: string };

export type WorkerRequest =
  | { readonly type: 'catalogue'; readonly id: number }
  /** Load a model (an added folder is tried before it is remembered). */
  | { readonly type: 'load'; readonly id: number; readonly model: ModelRef }
  | {
      readonly type: 'open';
      readonly id: number;
      readonly inputId: string;
      readonly model: ModelRef;
      /** Sent only when this worker has not seen the input yet. */
      readonly source?: InputSource;
    }
  | {
      readonly type: 'explain';
      readonly id: number;
      readonly jobId: string;
      readonly inputId: string;
      readonly model: ModelRef;
      readonly source?: InputSource;
      readonly methods: readonly string[];
      readonly target?: number;
      readonly contrast?: number;
      readonly options: ExplainOptions;
    };

/** Not answered: they act on state, between or instead of requests. */
export type WorkerSignal =
  | { readonly type: 'cancel'; readonly jobId: string }
  | { readonly type: 'forget'; readonly inputId: string }
  /** A queued request whose caller has gone (a cancelled opening): skip it when its turn comes. */
  | { readonly type: 'drop'; readonly requestId: number };

export type WorkerMessage = WorkerRequest | WorkerSignal;

export interface OpenReply {
  readonly opened: Omit<OpenedInput, 'inputId' | 'modelId'>;
  /** The loaded model's own class names (the config may not list them). */
  readonly labels: string[];
}

export type WorkerReplyValue = MethodCatalogue | OpenReply | { readonly cancelled: boolean } | { readonly labels: string[] };

export type WorkerEvent =
  | { readonly type: 'reply'; readonly id: number; readonly ok: true; readonly value: WorkerReplyValue }
  | { readonly type: 'reply'; readonly id: number; readonly ok: false; readonly error: string; readonly code: ApiErrorCode }
  | { readonly type: 'started'; readonly jobId: string; readonly total: number }
  | { readonly type: 'progress'; readonly jobId: string; readonly done: number; readonly current: string | null }
  | { readonly type: 'skipped'; readonly jobId: string; readonly skipped: SkippedMethod }
  /** Passes of the running method (multi-pass methods: integrated gradients, SmoothGrad, occlusion). */
  | { readonly type: 'step'; readonly jobId: string; readonly done: number; readonly total: number }
  | { readonly type: 'result'; readonly jobId: string; readonly result: ExplainResult };
