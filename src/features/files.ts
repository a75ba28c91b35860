/**
 * Synchronous, chunked readers and writers for the historical join's files. They run on the join's worker thread
 * (never on the server's event loop), where blocking reads are the fast way: a megabyte is read at a time, so memory
 * holds one chunk and the record being parsed, whatever the file's size.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

const CHUNK = 1 << 20;

/** Reads a file as text, a chunk at a time. */
class ChunkedText {
  private readonly fd: number;
  private readonly bytes = Buffer.allocUnsafe(CHUNK);
  private readonly decoder = new StringDecoder('utf8');
  eof = false;
  private closed = false;

  constructor(file: string) {
    this.fd = openSync(file, 'r');
  }

  /** The next chunk of text ('' at the end, and then closed). */
  read(): string {
    if (this.eof) return '';
    const n = readSync(this.fd, this.bytes, 0, CHUNK, null);
    if (n === 0) {
      this.eof = true;
      this.close();
      return this.decoder.end();
    }
    return this.decoder.write(this.bytes.subarray(0, n));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** The lines of a file (LF or CRLF), in order; empty lines included. */
export class LineReader {
  private readonly text: ChunkedText;
  private buf = '';
  private pos = 0;

  constructor(file: string) {
    this.text = new ChunkedText(file);
  }

  next(): string | undefined {
    for (;;) {
      const nl = this.buf.indexOf('\n', this.pos);
      if (nl !== -1) {
        const end = nl > this.pos && this.buf.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        const line = this.buf.slice(this.pos, end);
        this.pos = nl + 1;
        return line;
      }
      if (this.text.eof) {
        if (this.pos >= this.buf.length) return undefined;
        const line = this.buf.slice(this.pos);
        this.pos = this.buf.length;
        return line;
      }
      this.buf = this.buf.slice(this.pos) + this.text.read();
      this.pos = 0;
    }
  }

  close(): void {
    this.text.close();
  }
}

/**
 * RFC 4180 records of a CSV file: quoted fields may hold commas, quotes (doubled) and line breaks; a byte-order mark is
 * skipped, empty lines are skipped, LF or CRLF. A line without quotes is split at once (the common case).
 */
export class CsvReader {
  private readonly text: ChunkedText;
  private buf = '';
  private pos = 0;
  /** Where the next quote of `buf` is at or after `pos` (-1: none in the buffer). */
  private quote = -1;
  private quoteFrom = Number.POSITIVE_INFINITY;
  /** Records returned so far (the header is record 1). */
  records = 0;
  /** The line the last record started on (1-based), for error messages. */
  line = 0;
  private nextLine = 1;

  constructor(readonly file: string) {
    this.text = new ChunkedText(file);
    this.buf = this.text.read();
    if (this.buf.charCodeAt(0) === 0xfeff) this.pos = 1;
  }

  next(): string[] | undefined {
    for (;;) {
      const r = this.parse(this.text.eof);
      if (r !== INCOMPLETE) {
        if (r) this.records++;
        return r;
      }
      this.buf = this.buf.slice(this.pos) + this.text.read();
      this.pos = 0;
      this.quoteFrom = Number.POSITIVE_INFINITY;
    }
  }

  close(): void {
    this.text.close();
  }

  private nextQuote(from: number): number {
    if (this.quoteFrom <= from && (this.quote === -1 || this.quote >= from)) return this.quote;
    this.quote = this.buf.indexOf('"', from);
    this.quoteFrom = from;
    return this.quote;
  }

  /** One record from `pos`; INCOMPLETE when the buffer ends inside it (and more text may come). */
  private parse(final: boolean): string[] | undefined | typeof INCOMPLETE {
    const s = this.buf;
    for (;;) {
      if (this.pos >= s.length) return final ? undefined : INCOMPLETE;
      const nl = s.indexOf('\n', this.pos);
      const q = this.nextQuote(this.pos);
      if (nl !== -1 && (q === -1 || q > nl)) {
        const end = nl > this.pos && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
        const start = this.pos;
        this.pos = nl + 1;
        this.line = this.nextLine++;
        if (end === start) continue;
        return s.slice(start, end).split(',');
      }
      if (nl === -1 && q === -1) {
        if (!final) return INCOMPLETE;
        const start = this.pos;
        this.pos = s.length;
        this.line = this.nextLine++;
        const rest = s.endsWith('\r') ? s.slice(start, -1) : s.slice(start);
        if (rest === '') return undefined;
        return rest.split(',');
      }
      return this.parseQuoted(final);
    }
  }

  /** The slow path: a record with a quote in it, character by character. */
  private parseQuoted(final: boolean): string[] | typeof INCOMPLETE {
    const s = this.buf;
    const fields: string[] = [];
    let field = '';
    let i = this.pos;
    let lines = 1;
    let quoted = false;
    let fieldStart = i;
    for (;;) {
      if (i >= s.length) {
        if (!final) return INCOMPLETE;
        if (quoted) throw new Error(`${this.file}: line ${this.nextLine}: a quoted field is not closed before the end of the file`);
        fields.push(field + s.slice(fieldStart, i));
        this.pos = i;
        break;
      }
      const c = s.charCodeAt(i);
      if (quoted) {
        if (c === 34) {
          if (i + 1 >= s.length && !final) return INCOMPLETE;
          if (s.charCodeAt(i + 1) === 34) {
            field += s.slice(fieldStart, i + 1);
            i += 2;
            fieldStart = i;
            continue;
          }
          field += s.slice(fieldStart, i);
          quoted = false;
          i++;
          fieldStart = i;
          continue;
        }
        if (c === 10) lines++;
        i++;
        continue;
      }
      if (c === 34) {
        field += s.slice(fieldStart, i);
        quoted = true;
        i++;
        fieldStart = i;
        continue;
      }
      if (c === 44) {
        fields.push(field + s.slice(fieldStart, i));
        field = '';
        i++;
        fieldStart = i;
        continue;
      }
      if (c === 10) {
        const end = i > fieldStart && s.charCodeAt(i - 1) === 13 ? i - 1 : i;
        fields.push(field + s.slice(fieldStart, end));
        this.pos = i + 1;
        break;
      }
      i++;
    }
    this.line = this.nextLine;
    this.nextLine += lines;
    this.quoteFrom = Number.POSITIVE_INFINITY;
    return fields;
  }
}

const INCOMPLETE = Symbol('incomplete');

/** Appends text to a file through a buffer, written a chunk at a time. */
export class TextWriter {
  private readonly fd: number;
  private parts: string[] = [];
  private size = 0;
  bytes = 0;

  constructor(
    readonly file: string,
    private readonly flushAt = 1 << 16,
  ) {
    this.fd = openSync(file, 'w', 0o600);
  }

  write(text: string): void {
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= this.flushAt) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const b = Buffer.from(this.parts.join(''), 'utf8');
    this.bytes += b.byteLength;
    let off = 0;
    while (off < b.byteLength) off += writeSync(this.fd, b, off);
    this.parts = [];
    this.size = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

const ESCAPED = '\u0001';

/** Text made safe for one line of a run or spool file: text with a line break (or the marker) is stored as JSON after the marker. */
export function lineSafe(text: string): string {
  return text.includes('\n') || text.includes('\r') || text.charCodeAt(0) === 1 ? ESCAPED + JSON.stringify(text) : text;
}

/** The text {@link lineSafe} stored. */
export function fromLineSafe(stored: string): string {
  return stored.charCodeAt(0) === 1 ? (JSON.parse(stored.slice(1)) as string) : stored;
}
