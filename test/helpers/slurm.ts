/**
 * A one-node Slurm cluster of its own, for a test: munged, slurmctld and slurmd from Debian's
 * `slurm-wlm` and `munge`, with their key, sockets, state, logs and slurm.conf in a temporary
 * folder and ports of their own, so nothing of a system installation is used or disturbed. Run as
 * root, the daemons and jobs run as `nobody` (an unprivileged user, as on a real cluster); otherwise
 * as the user running the tests. If a daemon does not come up, `start` throws with the reason
 * (its log) — the test fails, it does not skip.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface SlurmCluster {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  /** How to run a command as the cluster's user (empty when that is this process's user). */
  readonly as: readonly string[];
  /** Runs a command as the cluster's user with SLURM_CONF set; resolves with its output, rejects on a non-zero exit. */
  exec(cmd: string, args: readonly string[], options?: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number }): Promise<{ stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

async function tail(file: string, n = 15): Promise<string> {
  const t = await fs.readFile(file, 'utf8').catch(() => '(no log)');
  return t.trim().split('\n').slice(-n).join('\n');
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function which(cmd: string): Promise<string> {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env['PATH'] ?? '').split(':')]) {
    const p = path.join(dir, cmd);
    if (await fs.access(p).then(() => true, () => false)) return p;
  }
  throw new Error(`Slurm test: '${cmd}' is not installed (Debian packages slurm-wlm and munge; .ci/run installs them)`);
}

export async function startSlurm(): Promise<SlurmCluster> {
  const [munged, slurmctld, slurmd] = await Promise.all([which('munged'), which('slurmctld'), which('slurmd'), which('sbatch')]);
  const root = process.getuid?.() === 0;
  const user = root ? 'nobody' : os.userInfo().username;
  const group = root ? (await run('id', ['-gn', 'nobody'])).stdout.trim() : '';
  const as = root ? ['setpriv', `--reuid=${user}`, `--regid=${group}`, '--clear-groups'] : [];
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'relprop-slurm-'));
  await fs.chmod(dir, 0o755);
  for (const d of ['state', 'spool']) await fs.mkdir(path.join(dir, d));
  await fs.writeFile(path.join(dir, 'munge.key'), randomBytes(1024), { mode: 0o400 });
  if (root) {
    const { uid, gid } = { uid: Number((await run('id', ['-u', user])).stdout), gid: Number((await run('id', ['-g', user])).stdout) };
    for (const f of ['', 'state', 'spool', 'munge.key']) await fs.chown(path.join(dir, f), uid, gid);
  }
  const host = os.hostname().split('.')[0]!;
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const conf = path.join(dir, 'slurm.conf');
  await fs.writeFile(
    conf,
    [
      'ClusterName=relproptest',
      `SlurmctldHost=${host}`,
      `SlurmUser=${user}`,
      `SlurmdUser=${user}`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${dir}/munge.sock`,
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      // No cgroups, no accounting: what an unprivileged user on one node can run.
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'JobAcctGatherType=jobacct_gather/none',
      'AccountingStorageType=accounting_storage/none',
      'MpiDefault=none',
      'ReturnToService=2',
      `NodeName=${host} CPUs=${os.availableParallelism()} RealMemory=${Math.floor(os.totalmem() / 2 ** 20 / 2)} State=UNKNOWN`,
      `PartitionName=test Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, SLURM_CONF: conf };
  const daemons: ChildProcess[] = [];
  const daemon = (bin: string, args: string[], log: string) => {
    const p = spawn(as[0] ?? bin, [...as.slice(1), ...(as.length ? [bin] : []), ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    daemons.push(p);
    return { p, why: async () => `${path.basename(bin)} ${p.exitCode !== null ? `exited ${p.exitCode}` : 'is running'}; stderr: ${err.trim() || '(none)'}; log:\n${await tail(log)}` };
  };
  const exec: SlurmCluster['exec'] = async (cmd, args, o = {}) => {
    const full = as.length ? [...as.slice(1), cmd, ...args] : [...args];
    return run(as.length ? as[0]! : cmd, full, { env: { ...env, ...o.env }, cwd: o.cwd ?? dir, timeout: o.timeout ?? 600_000, maxBuffer: 16 << 20 });
  };
  const stop = async () => {
    for (const p of daemons.reverse()) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    await Promise.all(daemons.map((p) => (p.exitCode !== null || p.signalCode !== null ? null : new Promise((r) => p.once('exit', r)))));
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    const m = daemon(munged, ['--foreground', '--force', `--key-file=${dir}/munge.key`, `--socket=${dir}/munge.sock`, `--pid-file=${dir}/munged.pid`, `--log-file=${dir}/munged.log`, `--seed-file=${dir}/munge.seed`], `${dir}/munged.log`);
    await waitFor(() => fs.access(path.join(dir, 'munge.sock')).then(() => true, () => false), 10_000, m.why);
    const c = daemon(slurmctld, ['-D', '-f', conf], `${dir}/slurmctld.log`);
    const d = daemon(slurmd, ['-D', '-f', conf], `${dir}/slurmd.log`);
    const idle = async () => {
      if (c.p.exitCode !== null) throw new Error(`Slurm test: slurmctld did not start: ${await c.why()}`);
      if (d.p.exitCode !== null) throw new Error(`Slurm test: slurmd did not start: ${await d.why()}`);
      const r = await exec('sinfo', ['-h', '-o', '%t']).catch(() => ({ stdout: '' }));
      return /^idle/m.test(r.stdout);
    };
    await waitFor(idle, 30_000, async () => `${await c.why()}\n${await d.why()}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { dir, env, as, exec, stop };
}

async function waitFor(ok: () => Promise<boolean>, ms: number, why: () => Promise<string>): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`Slurm test: the cluster did not come up within ${ms / 1000} s: ${await why()}`);
}
