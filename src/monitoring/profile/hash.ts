/**
 * A 52-bit hash (two FNV-1a 32-bit passes with different offsets), used as the priority of bottom-k
 * sampling. Priorities depend only on the key, so a sample built in one pass and samples built on
 * several replicas then merged hold exactly the same rows.
 */
export function hash52(key: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  // Final avalanche so keys that differ in the last characters spread over the whole range.
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b ^= b >>> 16;
  b = Math.imul(b, 0xc2b2ae35);
  b ^= b >>> 13;
  return (a >>> 0) * 0x100000 + ((b >>> 0) & 0xfffff);
}
