/**
 * The run-queue clock the shadow thread takes out of its model runs' times: it grows while the thread is runnable
 * and kept off a CPU by other threads, and not while the thread sleeps; a run's wall time less that growth is
 * about the time the same work takes with a CPU of its own.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { runQueueClock } from '../src/thread-clock.ts';

/** A fixed amount of CPU work; returns its wall time in ms. */
function spin(): { ms: number; sum: number } {
  const t0 = performance.now();
  let sum = 0;
  for (let i = 0; i < 60_000_000; i++) sum = (sum + i * 7) % 1_000_003;
  return { ms: performance.now() - t0, sum };
}

describe.runIf(process.platform === 'linux')('runQueueClock', () => {
  it('counts the time a busy machine keeps the thread waiting, not its sleep', async () => {
    const clock = runQueueClock();
    expect(clock).toBeDefined();
    const c = clock!;
    try {
      const baseline = Math.min(spin().ms, spin().ms);

      const s0 = c.read();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 150);
      const slept = c.read() - s0;
      // Asleep, the thread is not runnable: only the wake-up's wait counts.
      expect(slept).toBeLessThan(50);

      // Three times as many spinning threads as cores (at least 4): the main thread gets a share of a CPU.
      const n = Math.max(4, 3 * availableParallelism());
      const spinners = Array.from({ length: n }, () => new Worker('for (;;) {}', { eval: true }));
      try {
        await Promise.all(spinners.map((w) => new Promise((r) => w.once('online', r))));
        await new Promise((r) => setTimeout(r, 100));
        const w0 = c.read();
        const run = spin();
        const waited = c.read() - w0;
        expect(run.sum).toBeGreaterThan(0);
        // The contended run is stretched, and the clock holds most of the stretch.
        expect(waited).toBeGreaterThan(0.3 * run.ms);
        const corrected = run.ms - waited;
        expect(corrected).toBeGreaterThan(0);
        expect(corrected).toBeLessThan(Math.max(2 * baseline, baseline + 100));
      } finally {
        await Promise.all(spinners.map((w) => w.terminate()));
      }
    } finally {
      c.close();
    }
  }, 60_000);

  it('answers NaN, not an exception, when its file cannot be read (the run it times keeps its wall time)', () => {
    const c = runQueueClock()!;
    expect(Number.isFinite(c.read())).toBe(true);
    c.close();
    expect(c.read()).toBeNaN();
  });
});
