import type { Logger } from 'pino';
import type { SloDefinitionStore } from '../storage/index.ts';
import { parseSloFile, type SloDefinition } from './definition.ts';
import type { SloFile, SloFileState } from './slo-file.ts';

/** Where SLO definitions live: slo.yaml (one process) or the metadata store (replicas sharing one). */
export type SloSource = Pick<SloFile, 'file' | 'mtime' | 'read' | 'upsert' | 'remove'>;

/**
 * SLO definitions in the shared metadata store, with slo.yaml's surface: the revision stands in for the file's
 * modification time, so SloService's reload-on-change works unchanged and an SLO written on one replica reaches the
 * others at their next tick.
 */
export class StoreSloSource implements SloSource {
  readonly file = 'the metadata store (storage.url)';

  constructor(private readonly store: SloDefinitionStore) {}

  async mtime(): Promise<number> {
    return (await this.store.listSloDefinitions()).revision;
  }

  async read(): Promise<SloFileState> {
    const { definitions, revision } = await this.store.listSloDefinitions();
    return { slos: parseSloFile({ slos: definitions }, 'stored SLO definitions'), mtimeMs: revision };
  }

  async upsert(slo: SloDefinition): Promise<SloFileState> {
    await this.store.saveSloDefinition(slo.name, slo, Date.now());
    return this.read();
  }

  async remove(name: string): Promise<boolean> {
    return (await this.store.deleteSloDefinition(name)) !== undefined;
  }

  /**
   * A first start on a shared store: imports slo.yaml when the store holds no definitions yet, so moving a single
   * process onto PostgreSQL keeps its SLOs. Returns how many were imported (0 when the store had some already).
   */
  async importFile(file: SloFile, logger: Logger): Promise<number> {
    if ((await this.store.listSloDefinitions()).definitions.length > 0) return 0;
    if ((await file.mtime()) === 0) return 0;
    const { slos } = await file.read();
    for (const s of slos) await this.store.saveSloDefinition(s.name, s, Date.now());
    if (slos.length) logger.info({ file: file.file, slos: slos.length }, 'SLO definitions imported from the file into the shared store');
    return slos.length;
  }
}
