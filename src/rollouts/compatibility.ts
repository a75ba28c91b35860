import type { ModelSignature, TensorSpec } from '../storage/index.ts';

/**
 * The ways a candidate's signature differs from the stable version's that would break callers: an input renamed,
 * retyped, reshaped or added; an output removed or retyped; named features changed. Empty when every request the
 * stable version takes, the candidate takes too, with the same outputs. Extra outputs are fine.
 */
export function signatureDifferences(stable: ModelSignature, candidate: ModelSignature): string[] {
  const out: string[] = [];
  const byName = (specs: readonly TensorSpec[]) => new Map(specs.map((s) => [s.name, s]));
  const cand = byName(candidate.inputs);
  const stab = byName(stable.inputs);
  for (const s of stable.inputs) {
    const c = cand.get(s.name);
    if (!c) out.push(`input ${s.name} is missing (the candidate takes ${candidate.inputs.map((i) => i.name).join(', ')})`);
    else out.push(...tensorDifferences('input', s, c));
  }
  for (const c of candidate.inputs) if (!stab.has(c.name)) out.push(`input ${c.name} is new: callers of the stable version do not send it`);
  const candOut = byName(candidate.outputs);
  for (const s of stable.outputs) {
    const c = candOut.get(s.name);
    if (!c) out.push(`output ${s.name} is missing`);
    else out.push(...tensorDifferences('output', s, c).filter((d) => !d.includes('dimension 0')));
  }
  const sf = stable.features?.map((f) => f.name);
  const cf = candidate.features?.map((f) => f.name);
  if (sf && !cf) out.push('the candidate has no named features, so :predict requests would fail');
  else if (sf && cf && sf.join('\u0000') !== cf.join('\u0000')) {
    const i = sf.findIndex((n, k) => n !== cf[k]);
    out.push(`named features differ${i >= 0 ? ` at position ${i}: ${sf[i] ?? '(none)'} vs ${cf[i] ?? '(none)'}` : `: ${sf.length} vs ${cf.length}`}`);
  }
  return out;
}

function tensorDifferences(kind: 'input' | 'output', s: TensorSpec, c: TensorSpec): string[] {
  const out: string[] = [];
  if (s.datatype !== c.datatype) out.push(`${kind} ${s.name} is ${c.datatype}, the stable version's is ${s.datatype}`);
  if (s.shape.length !== c.shape.length) out.push(`${kind} ${s.name} has rank ${c.shape.length}, the stable version's ${s.shape.length}`);
  else {
    for (let d = 0; d < s.shape.length; d++) {
      const a = s.shape[d]!;
      const b = c.shape[d]!;
      // A dynamic dimension (-1) in the candidate accepts whatever the stable one took.
      if (b !== -1 && a !== b) out.push(`${kind} ${s.name} dimension ${d} is ${b}, the stable version's is ${a === -1 ? 'dynamic' : a}`);
    }
  }
  return out;
}
