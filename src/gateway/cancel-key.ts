/**
 * @module
 * The secret key of a connection's BackendKeyData, derived from the server's secret and the connection's process id.
 * A CancelRequest reaches the server's main process, while the connection lives in a database process whose thread
 * may be busy running the very statement to cancel: deriving the key lets the main process check the request
 * itself, and hand only a genuine one to the database process's watcher thread.
 */
import { createHmac } from 'node:crypto';

export function cancelSecretKey(serverSecret: string, processId: number): number {
  return createHmac('sha256', serverSecret).update(`cancel:${processId}`).digest().readInt32BE(0);
}
