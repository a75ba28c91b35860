import { randomUUID } from 'node:crypto';

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** Honours a caller's `x-request-id` when it is printable ASCII of sane length; else makes a time-ordered one. */
export function requestIdFrom(header: unknown): string {
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : timeOrderedId();
}

/** Ids a 12-bit counter can number within one millisecond before the clock is run ahead by one. */
const PER_MS = 4096;

let lastMs = 0;
let counter = 0;
let prefixMs = -1;
let prefix = '';

/**
 * A UUID version 7 (RFC 9562 §5.7): 48-bit Unix milliseconds, a 12-bit counter in `rand_a` (method 1 of
 * §6.2, so ids of one process sort in the order they were made), and 62 random bits from Node's pooled
 * `randomUUID`. Ordered ids matter to the prediction log: each event's request id goes into a B-tree
 * index, and ids that arrive in order append to its rightmost page, where random v4 ids dirty a
 * different page per insert (≈ 3× the writer's cost per event, measured in docs/benchmarks.md).
 * The clock never runs backwards here: a step back, or more than 4,096 ids in a millisecond, continues
 * from the last millisecond used.
 */
export function timeOrderedId(): string {
  const now = Date.now();
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
  } else if (++counter >= PER_MS) {
    lastMs++;
    counter = 0;
  }
  if (prefixMs !== lastMs) {
    prefixMs = lastMs;
    const hex = lastMs.toString(16).padStart(12, '0');
    prefix = `${hex.slice(0, 8)}-${hex.slice(8)}-7`;
  }
  // randomUUID() is `xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx` with the RFC variant in V: its last 18 characters
  // (`-Vxxx-xxxxxxxxxxxx`) are the variant and 62 random bits, as v7 wants them.
  return `${prefix}${counter.toString(16).padStart(3, '0')}${randomUUID().slice(18)}`;
}
