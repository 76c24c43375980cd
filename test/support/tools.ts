/**
 * @module
 * Runs libpq tools (psql, pgbench) from tests. Not spawnSync: a gateway running in the test's own process would be
 * blocked along with the event loop. PGSSLMODE and the other PG* variables are removed, so a tool uses its defaults.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export type ToolRun = { status: number | null; stdout: string; stderr: string };

/** Starts a tool; `done` resolves once it has exited (killed after `timeoutMs`). */
export function startTool(command: string, args: string[], input = '', timeoutMs = 60_000): { child: ChildProcess; done: Promise<ToolRun> } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('PG')));
  const child = spawn(command, args, { env: { ...env, PGCONNECT_TIMEOUT: '10' }, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = new Promise<ToolRun>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
  child.stdin!.end(input);
  return { child, done };
}

export function runTool(command: string, args: string[], input = '', timeoutMs = 60_000): Promise<ToolRun> {
  return startTool(command, args, input, timeoutMs).done;
}
