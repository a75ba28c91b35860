import { closeSync, openSync, readSync } from 'node:fs';

/**
 * Milliseconds the calling thread has spent waiting for a CPU while runnable, from Linux's
 * /proc/thread-self/schedstat (its second field, `run_delay`, in ns). A thread at a low priority (nice 10) on a
 * busy machine is preempted in the middle of a synchronous model run; a run timed by the wall clock then reads as
 * slow for the machine's load, not the model's. Its wall time less the growth of this clock over the run is the
 * time the run held a CPU, which is what a candidate's latency check should compare.
 *
 * Returns undefined where the file is missing or unreadable (not Linux, or a kernel without schedstats), and
 * `read` answers NaN if a later read fails: callers keep the wall time then. The file stays open and is read with
 * pread (a few µs), so the clock is meant for a background thread's runs, not for a request's path. Each thread
 * must make its own: the file names the thread that opened it.
 */
export function runQueueClock(): { read(): number; close(): void } | undefined {
  let fd: number;
  try {
    fd = openSync('/proc/thread-self/schedstat', 'r');
  } catch {
    return undefined;
  }
  const buf = Buffer.alloc(96);
  const read = (): number => {
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, 0);
    } catch {
      // A clock that cannot be read must not fail the run it times: NaN, and the caller keeps the wall time.
      return NaN;
    }
    const line = buf.toString('latin1', 0, n);
    const first = line.indexOf(' ');
    const second = line.indexOf(' ', first + 1);
    return Number(line.slice(first + 1, second < 0 ? undefined : second)) / 1e6;
  };
  if (!Number.isFinite(read())) {
    closeSync(fd);
    return undefined;
  }
  return { read, close: () => closeSync(fd) };
}
