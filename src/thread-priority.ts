import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers the calling thread's scheduling priority (Linux nice value, 0–19) so background work yields the
 * CPU to the threads that answer requests. On Linux `setpriority` with a thread id affects that thread
 * only; the id comes from /proc/thread-self. Elsewhere (or when not permitted) it does nothing and says so.
 */
export function lowerThreadPriority(nice: number): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}
