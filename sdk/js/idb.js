// IndexedDB, just enough for the SDK's cache: one database, one object
// store, records keyed by source URL. Called by sdk/src/idb.rs; every
// function answers with a promise, rejected with the failure's message.
const DATABASE = "provider-sync";
const STORE = "states";

const settle = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => {
      const error = request.error;
      reject(error ? `${error.name}: ${error.message}` : "IndexedDB request failed");
    };
  });

// The database, or null where the browser has none (some private modes).
// No version: whatever version the database has (another release or tab
// may have upgraded it); a new one is created at 1. The handle is marked
// closed when another tab upgrades or deletes the database (this connection
// is closed so it never blocks that) or the browser closes it.
export async function idbOpen() {
  let factory;
  try {
    factory = globalThis.window?.indexedDB;
  } catch {
    return null;
  }
  if (!factory) return null;
  const request = factory.open(DATABASE);
  request.onupgradeneeded = () => {
    const db = request.result;
    if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE);
  };
  const db = await settle(request);
  const handle = { db, closed: false };
  db.onversionchange = () => {
    handle.closed = true;
    db.close();
  };
  db.onclose = () => (handle.closed = true);
  return handle;
}

const store = (handle, mode) => handle.db.transaction(STORE, mode).objectStore(STORE);

export const idbGet = async (handle, key) => settle(store(handle, "readonly").get(key));
export const idbPut = async (handle, key, value) => void (await settle(store(handle, "readwrite").put(value, key)));
export const idbDelete = async (handle, key) => void (await settle(store(handle, "readwrite").delete(key)));
export const idbClosed = (handle) => handle.closed;

export function idbClose(handle) {
  handle.db.onversionchange = handle.db.onclose = null;
  handle.db.close();
}
