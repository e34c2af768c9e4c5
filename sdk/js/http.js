// `fetch` with a deadline (an AbortController fired by a timer), for
// sdk/src/transport/http.rs. Resolves with the answer's text; rejects with
// [kind, detail, retryAfterMs]: kind 0 network (detail: the message),
// 1 timeout, 2 HTTP status (detail: the status; `Retry-After` in ms, if
// any, on 429/503 and the like), 3 the body could not be read (detail: the
// message).
const message = (e) =>
  e instanceof Error ? e.message : typeof e === "string" ? e : "an unknown JavaScript error";

// `Retry-After` in ms: delta-seconds or an HTTP date.
function retryAfter(response) {
  const value = response.headers.get("retry-after");
  if (value === null) return undefined;
  const seconds = Number(value.trim());
  if (!Number.isNaN(seconds)) return Math.max(seconds, 0) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(at - Date.now(), 0);
}

// `headers`: names and values in turn.
export async function fetchText(method, url, body, timeoutMs, headers, credentials) {
  if (typeof window === "undefined") throw [0, "no window: the SDK runs in a browser page"];
  const controller = new AbortController();
  let request;
  try {
    const init = { method, signal: controller.signal };
    if (credentials) init.credentials = credentials;
    if (body !== undefined || headers.length > 0) {
      const sent = new Headers();
      for (let i = 0; i < headers.length; i += 2) sent.set(headers[i], headers[i + 1]);
      if (body !== undefined) {
        init.body = body;
        sent.set("content-type", "application/json");
      }
      init.headers = sent;
    }
    request = new Request(url, init);
  } catch (e) {
    throw [0, message(e)];
  }
  const deadline = setTimeout(() => controller.abort(), Math.min(timeoutMs, 2 ** 31 - 1));
  try {
    let response;
    try {
      response = await fetch(request);
    } catch (e) {
      throw e?.name === "AbortError" ? [1] : [0, message(e)];
    }
    if (!response.ok) throw [2, response.status, retryAfter(response)];
    try {
      return await response.text();
    } catch (e) {
      throw [3, message(e)];
    }
  } finally {
    clearTimeout(deadline);
  }
}
