/** The storage contract (see contract.ts) for SLO definitions kept in the metadata store. */
import { describe, expect, it } from 'vitest';
import type { SloDefinitionStore } from '../../src/storage/index.ts';
import type { StorageUnderTest } from './contract.ts';

export function sloContract(stores: () => StorageUnderTest): void {
  describe('MetadataStore: SLO definitions', () => {
    const store = () => stores().metadata as unknown as SloDefinitionStore;

    it('keeps definitions in creation order, replaces by name, and counts every change in the revision', async () => {
      const m = store();
      expect(await m.listSloDefinitions()).toEqual({ definitions: [], revision: 0 });
      const r1 = await m.saveSloDefinition('b', { name: 'b', objective: 0.99 }, 1);
      const r2 = await m.saveSloDefinition('a', { name: 'a', objective: 0.9 }, 2);
      expect(r2).toBeGreaterThan(r1);
      // Replacing keeps the position.
      const r3 = await m.saveSloDefinition('b', { name: 'b', objective: 0.999 }, 3);
      expect(await m.listSloDefinitions()).toEqual({
        definitions: [
          { name: 'b', objective: 0.999 },
          { name: 'a', objective: 0.9 },
        ],
        revision: r3,
      });
      const r4 = await m.deleteSloDefinition('b');
      expect(r4).toBeGreaterThan(r3);
      expect(await m.deleteSloDefinition('b')).toBeUndefined();
      const after = await m.listSloDefinitions();
      expect(after).toEqual({ definitions: [{ name: 'a', objective: 0.9 }], revision: r4 });
      // A new one goes last even after a delete.
      await m.saveSloDefinition('c', { name: 'c' }, 5);
      expect((await m.listSloDefinitions()).definitions.map((d) => (d as { name: string }).name)).toEqual(['a', 'c']);
    });

    it('loses no definition when writers race', async () => {
      const m = store();
      const revs = await Promise.all(Array.from({ length: 12 }, (_, i) => m.saveSloDefinition(`s${i}`, { name: `s${i}` }, i)));
      expect(new Set(revs).size).toBe(12);
      const { definitions, revision } = await m.listSloDefinitions();
      expect(definitions).toHaveLength(12);
      expect(revision).toBe(Math.max(...revs));
    });
  });
}
