/** A bounded uniform sample: the k items with the smallest priority (hash) seen so far. */
export interface BottomK<T> {
  k: number;
  /** Max-heap on priority: index 0 holds the largest kept priority. */
  priorities: number[];
  items: T[];
}

export function emptyBottomK<T>(k: number): BottomK<T> {
  return { k, priorities: [], items: [] };
}

function siftUp<T>(s: BottomK<T>, i: number): void {
  const p = s.priorities;
  const it = s.items;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (p[parent]! >= p[i]!) break;
    [p[parent], p[i]] = [p[i]!, p[parent]!];
    [it[parent], it[i]] = [it[i]!, it[parent]!];
    i = parent;
  }
}

function siftDown<T>(s: BottomK<T>, i: number): void {
  const p = s.priorities;
  const it = s.items;
  const n = p.length;
  for (;;) {
    const l = 2 * i + 1;
    const r = l + 1;
    let top = i;
    if (l < n && p[l]! > p[top]!) top = l;
    if (r < n && p[r]! > p[top]!) top = r;
    if (top === i) return;
    [p[top], p[i]] = [p[i]!, p[top]!];
    [it[top], it[i]] = [it[i]!, it[top]!];
    i = top;
  }
}

/**
 * Offers an item; O(1) when it is rejected, which is almost always once the sample is full. A
 * priority already in the sample is ignored, so offering the same keyed row twice keeps one copy.
 */
export function offer<T>(s: BottomK<T>, priority: number, item: T): void {
  if (s.k <= 0) return;
  if (s.priorities.length < s.k) {
    if (s.priorities.includes(priority)) return;
    s.priorities.push(priority);
    s.items.push(item);
    siftUp(s, s.priorities.length - 1);
    return;
  }
  if (priority >= s.priorities[0]!) return;
  if (s.priorities.includes(priority)) return;
  s.priorities[0] = priority;
  s.items[0] = item;
  siftDown(s, 0);
}

/** The merge of two samples: exactly the sample one pass over both inputs would have kept. */
export function mergeBottomK<T>(a: BottomK<T>, b: BottomK<T>): BottomK<T> {
  const out = emptyBottomK<T>(Math.min(a.k, b.k));
  for (let i = 0; i < a.priorities.length; i++) offer(out, a.priorities[i]!, a.items[i]!);
  for (let i = 0; i < b.priorities.length; i++) offer(out, b.priorities[i]!, b.items[i]!);
  return out;
}

/** Items in ascending priority: a canonical order, so equal samples serialize identically. */
export function sortedItems<T>(s: BottomK<T>): { priorities: number[]; items: T[] } {
  const order = s.priorities.map((_, i) => i).sort((x, y) => s.priorities[x]! - s.priorities[y]!);
  return { priorities: order.map((i) => s.priorities[i]!), items: order.map((i) => s.items[i]!) };
}
