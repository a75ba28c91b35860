import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorCatalogue } from '../src/errors.ts';
import { repoRoot } from './helpers/server.ts';

describe('docs/errors.md', () => {
  it('lists exactly the codes in src/errors.ts with their statuses', () => {
    const doc = readFileSync(path.join(repoRoot, 'docs', 'errors.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `(WARDEN_[A-Z0-9_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    const expected = Object.entries(errorCatalogue).map(([code, v]) => [code, v.status]);
    expect(rows.sort()).toEqual(expected.sort());
  });
});
