/**
 * @module
 * The few Postgres wire-protocol messages the engine and the gateway build or read themselves.
 * @see https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import type { SqlState } from './sql-state.js';

/** Frontend message type bytes. */
export const Frontend = {
  Bind: 0x42, // B
  Close: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  Describe: 0x44, // D
  Execute: 0x45, // E
  Flush: 0x48, // H
  FunctionCall: 0x46, // F
  Parse: 0x50, // P
  PasswordMessage: 0x70, // p (also SASLInitialResponse and SASLResponse)
  Query: 0x51, // Q
  Sync: 0x53, // S
  Terminate: 0x58, // X
} as const;

/** Backend message type bytes. */
export const Backend = {
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyData: 0x64, // d
  CopyInResponse: 0x47, // G
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  ReadyForQuery: 0x5a, // Z
} as const;

/** The request codes a client's first message carries (after its length), before any message type byte exists. */
export const StartupCode = {
  Protocol3: 196608,
  SslRequest: 80877103,
  GssEncRequest: 80877104,
  CancelRequest: 80877102,
} as const;

/** The name/value pairs of a StartupMessage (after its length and protocol version). */
export function startupParameters(packet: Buffer): Map<string, string> {
  const fields = packet.toString('utf8', 8).split('\0');
  const params = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]) params.set(fields[i]!, fields[i + 1]!);
  return params;
}

/** The transaction status byte of ReadyForQuery. */
export const TransactionStatus = { Idle: 0x49, InTransaction: 0x54, Failed: 0x45 } as const; // I T E
export type TransactionStatus = (typeof TransactionStatus)[keyof typeof TransactionStatus];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Builds one message: a type byte, an int32 length, then the body. */
export function message(type: number, ...parts: Array<Uint8Array | string | number[]>): Buffer {
  const chunks = parts.map((part) => (typeof part === 'string' ? cstring(part) : Array.isArray(part) ? Uint8Array.from(part) : part));
  const length = 4 + chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const out = Buffer.allocUnsafe(1 + length);
  out[0] = type;
  out.writeUInt32BE(length, 1);
  let offset = 5;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

export function cstring(text: string): Uint8Array {
  const bytes = encoder.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

export function int32(value: number): Uint8Array {
  const out = Buffer.allocUnsafe(4);
  out.writeInt32BE(value);
  return out;
}

export function int16(value: number): Uint8Array {
  const out = Buffer.allocUnsafe(2);
  out.writeInt16BE(value);
  return out;
}

export const query = (sql: string): Buffer => message(Frontend.Query, sql);
export const sync = (): Buffer => message(Frontend.Sync);
export const readyForQuery = (status: TransactionStatus): Buffer => message(Backend.ReadyForQuery, [status]);
export const commandComplete = (tag: string): Buffer => message(Backend.CommandComplete, tag);
export const parameterStatus = (name: string, value: string): Buffer => message(Backend.ParameterStatus, name, value);

export type BackendErrorFields = {
  severity: 'ERROR' | 'FATAL';
  code: SqlState | string;
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
};

const FIELD_CODES = { severity: 'S', code: 'C', message: 'M', detail: 'D', hint: 'H', position: 'P' } as const;

/** Encodes an ErrorResponse. A FATAL one must be followed by closing that client's connection. */
export function backendError(fields: BackendErrorFields): Buffer {
  const parts: string[] = [];
  for (const [key, code] of Object.entries(FIELD_CODES)) {
    const value = fields[key as keyof BackendErrorFields];
    if (value !== undefined) parts.push(code + value);
  }
  // 'V' is the non-localised severity that modern clients read first.
  parts.splice(1, 0, `V${fields.severity}`);
  return message(Backend.ErrorResponse, ...parts, [0]);
}

/** Walks the messages of a complete buffer of backend output. */
export function* eachMessage(data: Uint8Array): Generator<{ type: number; start: number; end: number }> {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  while (offset + 5 <= data.length) {
    const end = offset + 1 + view.getUint32(offset + 1);
    yield { type: data[offset]!, start: offset, end };
    offset = end;
  }
}

/** Reads the text columns of DataRow messages: enough for the engine's own small catalog queries. */
export function readRows(data: Uint8Array): Array<Array<string | null>> {
  const rows: Array<Array<string | null>> = [];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (const { type, start } of eachMessage(data)) {
    if (type !== Backend.DataRow) continue;
    const count = view.getInt16(start + 5);
    let offset = start + 7;
    const row: Array<string | null> = [];
    for (let i = 0; i < count; i++) {
      const length = view.getInt32(offset);
      offset += 4;
      if (length < 0) {
        row.push(null);
      } else {
        row.push(decoder.decode(data.subarray(offset, offset + length)));
        offset += length;
      }
    }
    rows.push(row);
  }
  return rows;
}

export type ErrorFields = { severity: string; code: string; message: string; [field: string]: string };

const ERROR_FIELD_NAMES: Record<string, string> = {
  S: 'severity', V: 'severityNonLocalized', C: 'code', M: 'message', D: 'detail', H: 'hint', P: 'position',
  p: 'internalPosition', q: 'internalQuery', W: 'where', s: 'schema', t: 'table', c: 'column', d: 'dataType',
  n: 'constraint', F: 'file', L: 'line', R: 'routine',
};

/** The fields of the first ErrorResponse in backend output, if there is one. */
export function readError(data: Uint8Array): ErrorFields | undefined {
  for (const { type, start, end } of eachMessage(data)) {
    if (type !== Backend.ErrorResponse) continue;
    const fields: Record<string, string> = {};
    let offset = start + 5;
    while (offset < end && data[offset] !== 0) {
      const key = String.fromCharCode(data[offset]!);
      const stop = data.indexOf(0, offset + 1);
      fields[ERROR_FIELD_NAMES[key] ?? key] = decoder.decode(data.subarray(offset + 1, stop));
      offset = stop + 1;
    }
    return fields as ErrorFields;
  }
  return undefined;
}

/** The status byte of the last ReadyForQuery in backend output, if there is one. */
export function lastReadyStatus(data: Uint8Array): TransactionStatus | undefined {
  let status: TransactionStatus | undefined;
  for (const { type, start } of eachMessage(data)) {
    if (type === Backend.ReadyForQuery) status = data[start + 5] as TransactionStatus;
  }
  return status;
}

export function decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
