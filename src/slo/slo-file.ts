import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Document, isMap, isSeq, parseDocument, type YAMLSeq } from 'yaml';
import { WardenError } from '../errors.ts';
import { parseSloFile, type SloDefinition } from './definition.ts';

/** What a read of the file found: its SLOs and the modification time they belong to (0 when there is no file). */
export interface SloFileState {
  slos: SloDefinition[];
  mtimeMs: number;
}

/**
 * The SLO definitions file (`slo.yaml`): the one place definitions live, so they can be reviewed and versioned
 * like any config. The API edits it in place through the YAML document model, keeping comments and the order
 * of entries, and replaces it atomically (write, then rename). A missing file means no SLOs.
 */
export class SloFile {
  constructor(readonly file: string) {}

  /** Modification time (ms), or 0 when the file does not exist. */
  async mtime(): Promise<number> {
    try {
      return (await stat(this.file)).mtimeMs;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
  }

  private async text(): Promise<string | undefined> {
    try {
      return await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new WardenError('WARDEN_BAD_REQUEST', `cannot read SLO file ${this.file}: ${(e as Error).message}`);
    }
  }

  private document(text: string | undefined): Document {
    if (text === undefined || text.trim() === '') return new Document({ slos: [] });
    const doc = parseDocument(text);
    if (doc.errors.length > 0) throw new WardenError('WARDEN_BAD_REQUEST', `SLO file ${this.file} is not valid YAML: ${doc.errors[0]!.message}`);
    return doc;
  }

  /** Reads and validates the file (WARDEN_BAD_REQUEST naming the path of each problem). */
  async read(): Promise<SloFileState> {
    const mtimeMs = await this.mtime();
    const text = await this.text();
    const doc = this.document(text);
    return { slos: parseSloFile(doc.toJS(), `SLO file ${this.file}`), mtimeMs };
  }

  /** Creates or replaces the SLO of `slo.name` in place (comments on the entry are kept). */
  async upsert(slo: SloDefinition): Promise<SloFileState> {
    return this.edit((doc, seq) => {
      const node = doc.createNode(slo);
      const at = indexOf(seq, slo.name);
      if (at < 0) {
        seq.items.push(node);
        return;
      }
      const old = seq.items[at] as { commentBefore?: string | null; comment?: string | null };
      if (old.commentBefore) node.commentBefore = old.commentBefore;
      if (old.comment) node.comment = old.comment;
      seq.items[at] = node;
    });
  }

  /** Removes the SLO named `name`; false when the file has none. */
  async remove(name: string): Promise<boolean> {
    let found = false;
    await this.edit((_doc, seq) => {
      const at = indexOf(seq, name);
      if (at >= 0) {
        seq.items.splice(at, 1);
        found = true;
      }
    });
    return found;
  }

  private async edit(change: (doc: Document, seq: YAMLSeq) => void): Promise<SloFileState> {
    const doc = this.document(await this.text());
    // Validate what is there first: an edit must not bless a file that is already broken.
    parseSloFile(doc.toJS(), `SLO file ${this.file}`);
    let seq = doc.get('slos', true);
    if (!isSeq(seq)) {
      doc.set('slos', doc.createNode([]));
      seq = doc.get('slos', true);
    }
    change(doc, seq as YAMLSeq);
    const slos = parseSloFile(doc.toJS(), `SLO file ${this.file}`);
    await mkdir(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, doc.toString());
    await rename(tmp, this.file);
    return { slos, mtimeMs: await this.mtime() };
  }
}

function indexOf(seq: YAMLSeq, name: string): number {
  return seq.items.findIndex((item) => isMap(item) && item.get('name') === name);
}
