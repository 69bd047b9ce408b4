// Long work (explanations) runs as jobs on the service; the renderer polls
// them. Polling rather than push keeps the two transports identical (HTTP has
// no channel back), and `from` keeps each poll small: results already received
// are not sent again.

import type { ExplainResult, JobStatus, JobTicket, RelpropApi } from '../../../shared/api';

const POLL_MS = 120;

export interface JobProgress {
  status: JobStatus;
  /** Results that arrived with this poll. */
  fresh: ExplainResult[];
}

export async function followJob(api: RelpropApi, ticket: JobTicket, onProgress: (p: JobProgress) => void): Promise<JobStatus> {
  let received = 0;
  for (;;) {
    const status = await api.job({ id: ticket.jobId, from: received });
    received += status.results.length;
    onProgress({ status, fresh: status.results });
    if (status.state !== 'queued' && status.state !== 'running') return status;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
