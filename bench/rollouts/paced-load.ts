// bench/rollouts/paced-load: an open-loop, paced HTTP/1.1 load generator that keeps every request's latency with
// the time it was due, so requests can be grouped by when they were sent (bench/rollouts/shadow-interleaved.ts
// switches between two paths every few seconds and compares the blocks). wrk2 paces the same way but only prints
// one histogram per run, and a run of it costs 10 s of calibration; this one records per block.
//
// As in wrk2, request i (over all connections) is due at start + i / rate; connection c sends the requests with
// i ≡ c (mod connections), one at a time, on keep-alive sockets. A request whose connection is still waiting for
// the previous answer is sent when that answer arrives, and its latency still counts from when it was due
// (coordinated omission corrected). The sends are driven by the answers themselves (every answer checks every
// idle connection) and by a timer when none arrive; the generator's own lateness is part of what it measures, for
// both paths alike, and is printed (`late`).
import net from 'node:net';

export interface PacedOptions {
  host: string;
  port: number;
  connections: number;
  /** Requests per second over all connections. */
  rate: number;
  /** Sent like the rest, not recorded. */
  warmupMs: number;
  blockMs: number;
  /** Requests due in the first `guardMs` of a block are sent like the rest and not recorded: what the previous
   *  block left behind (queued work, a wave in flight, a log flush) falls there. Default 0. */
  guardMs?: number;
  blocks: number;
  /** The raw request (HTTP/1.1, keep-alive) to send for each kind of block. */
  requests: readonly Buffer[];
  /** Which of `requests` a block sends (blocks before 0 are the warm-up's). */
  kindOf(block: number): number;
}

export interface Block {
  kind: number;
  /** ms from when each request was due to its answer's last byte. */
  corrected: Float32Array;
  /** ms from when each request was written. */
  uncorrected: Float32Array;
  n: number;
  non2xx: number;
}

export interface PacedResult {
  blocks: Block[];
  sent: number;
  /** The generator's CPU over the run, in cores. */
  cores: number;
  /** How late the generator wrote requests whose connection was free when they were due: median and p99, ms. */
  lateP50: number;
  lateP99: number;
  errors: number;
}

interface Conn {
  socket: net.Socket;
  /** Index (over all connections) of the request in flight, or of the next one to send when idle. */
  next: number;
  busy: boolean;
  sentAt: number;
  dueAt: number;
  /** When the connection's last answer arrived. */
  idleSince: number;
  pending: Buffer | undefined;
}

/** The quantile `q` of latencies (a sorted copy; `xs` is left as it is). */
export function quantile(xs: Float32Array, q: number): number {
  const s = Float32Array.from(xs).sort();
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]! : NaN;
}

export async function pacedLoad(o: PacedOptions): Promise<PacedResult> {
  const intervalMs = 1000 / o.rate;
  const totalMs = o.warmupMs + o.blockMs * o.blocks;
  const last = Math.floor(totalMs / intervalMs);
  const perBlock = Math.ceil((o.blockMs / intervalMs) * 1.02) + o.connections + 16;
  const blocks: Block[] = Array.from({ length: o.blocks }, (_, b) => ({ kind: o.kindOf(b), corrected: new Float32Array(perBlock), uncorrected: new Float32Array(perBlock), n: 0, non2xx: 0 }));
  const late = new Float32Array(Math.min(last + 1, 2_000_000));
  let lateN = 0;
  let sent = 0;
  let errors = 0;
  let done = 0;
  let start = 0;
  let finish!: () => void;
  let fail!: (e: Error) => void;
  const finished = new Promise<void>((resolve, reject) => ((finish = resolve), (fail = reject)));
  /** ms from the end of the warm-up to when request i is due. */
  const dueAfterWarmup = (i: number) => i * intervalMs - o.warmupMs;
  const blockOf = (i: number) => Math.floor(dueAfterWarmup(i) / o.blockMs);
  const guardMs = o.guardMs ?? 0;
  const guarded = (i: number, b: number) => dueAfterWarmup(i) - b * o.blockMs < guardMs;

  const conns: Conn[] = await Promise.all(
    Array.from(
      { length: o.connections },
      (_, c) =>
        new Promise<Conn>((resolve, reject) => {
          const socket = net.connect({ host: o.host, port: o.port, noDelay: true }, () => resolve(conn));
          const conn: Conn = { socket, next: c, busy: false, sentAt: 0, dueAt: 0, idleSince: 0, pending: undefined };
          socket.once('error', reject);
        }),
    ),
  );

  const send = (conn: Conn, now: number) => {
    const i = conn.next;
    const b = blockOf(i);
    conn.busy = true;
    conn.dueAt = start + i * intervalMs;
    conn.sentAt = now;
    // Late by the generator's own doing only when the connection was free before the request was due.
    if (lateN < late.length && conn.idleSince <= conn.dueAt) late[lateN++] = now - conn.dueAt;
    conn.socket.write(o.requests[o.kindOf(b)]!);
    sent++;
  };
  /** Sends every request that is due on an idle connection; returns ms until the next one is due. */
  const pump = (): number => {
    const now = performance.now();
    let wait = Infinity;
    for (const conn of conns) {
      if (conn.busy || conn.next > last) continue;
      const due = start + conn.next * intervalMs;
      if (due <= now) send(conn, now);
      else if (due - now < wait) wait = due - now;
    }
    return wait;
  };
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const wait = pump();
    if (timer === undefined && wait !== Infinity) {
      timer = setTimeout(() => {
        timer = undefined;
        arm();
      }, Math.max(0, wait - 0.5));
    }
  };

  const answered = (conn: Conn, status: number) => {
    const now = performance.now();
    const b = blockOf(conn.next);
    if (b >= 0 && b < o.blocks && !guarded(conn.next, b)) {
      const blk = blocks[b]!;
      if (status < 200 || status >= 300) blk.non2xx++;
      else if (blk.n < perBlock) {
        blk.corrected[blk.n] = now - conn.dueAt;
        blk.uncorrected[blk.n] = now - conn.sentAt;
        blk.n++;
      }
    }
    conn.busy = false;
    conn.idleSince = now;
    conn.next += o.connections;
    if (conn.next > last) {
      if (++done === conns.length) finish();
    }
    arm();
  };

  for (const conn of conns) {
    conn.socket.on('data', (chunk: Buffer) => {
      let buf = conn.pending ? Buffer.concat([conn.pending, chunk]) : chunk;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buf.toString('latin1', 0, end);
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!m) {
          fail(new Error(`an answer without content-length: ${head.slice(0, 200)}`));
          return;
        }
        const total = end + 4 + Number(m[1]);
        if (buf.length < total) break;
        const status = Number(head.slice(9, 12));
        buf = buf.subarray(total);
        answered(conn, status);
      }
      conn.pending = buf.length ? Buffer.from(buf) : undefined;
    });
    conn.socket.on('error', () => errors++);
    conn.socket.on('close', () => {
      if (conn.next <= last) fail(new Error('the server closed a connection during the run'));
    });
  }

  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  start = performance.now();
  arm();
  await finished;
  clearTimeout(timer);
  const c = process.cpuUsage(cpu0);
  const wall = performance.now() - wall0;
  for (const conn of conns) conn.socket.destroy();
  const l = late.subarray(0, lateN);
  return {
    blocks: blocks.map((b) => ({ ...b, corrected: b.corrected.subarray(0, b.n), uncorrected: b.uncorrected.subarray(0, b.n) })),
    sent,
    cores: (c.user + c.system) / 1000 / wall,
    lateP50: quantile(l, 0.5),
    lateP99: quantile(l, 0.99),
    errors,
  };
}

/** A keep-alive HTTP/1.1 POST of a JSON body, as bytes. */
export function postRequest(host: string, port: number, path: string, body: string): Buffer {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\nConnection: keep-alive\r\n\r\n`, 'latin1'), b]);
}
