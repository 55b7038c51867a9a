// A tiny client for Tidings' tRPC wire, with no dependencies: the reference for frontends.
//
//   import { query, mutate, subscribe } from "/assets/trpc.js";
//   await mutate("auth.login", { email, password });        // sets the session cookie
//   const { notifications } = await query("notifications.list", { limit: 20 });
//   const stop = subscribe("notifications.onCounts", undefined, { onData: (c) => … });
//
// Queries are GET with `?input=` (the input in a `{"json": …}` envelope), mutations POST with
// the envelope as a JSON body. Answers come back as `{"result":{"data":{"json": …}}}` or
// `{"error":{"json":{message, code, data:{code, httpStatus, path}}}}`; branch on
// `error.code` (the tRPC key, e.g. "UNAUTHORIZED"), not on the number. The browser sends the
// `tidings_session` cookie and an `Origin` header by itself, which is what the server's CSRF
// check wants. Subscriptions are server-sent events (an `EventSource`), which reconnect by
// themselves and resume from the last event id.

const BASE = "/api/trpc/";

/** A tRPC error: `code` is the key ("NOT_FOUND"), `httpStatus` the HTTP status. */
export class TrpcError extends Error {
  constructor(json, httpStatus) {
    super(json?.message ?? "Request failed");
    this.name = "TrpcError";
    this.code = json?.data?.code ?? "INTERNAL_SERVER_ERROR";
    this.httpStatus = json?.data?.httpStatus ?? httpStatus ?? 0;
    this.path = json?.data?.path;
  }
}

function envelope(input) {
  return JSON.stringify({ json: input === undefined ? null : input });
}

async function unwrap(response) {
  let body;
  try {
    body = await response.json();
  } catch {
    throw new TrpcError({ message: `Unexpected answer (HTTP ${response.status})` }, response.status);
  }
  if (body && body.error) throw new TrpcError(body.error.json, response.status);
  if (!body || !body.result) throw new TrpcError({ message: "Malformed answer" }, response.status);
  return body.result.data?.json;
}

/** Calls a query procedure: `GET /api/trpc/<path>?input=…`. */
export async function query(path, input) {
  const url = `${BASE}${path}?input=${encodeURIComponent(envelope(input))}`;
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
  } catch {
    throw new TrpcError({ message: "The server cannot be reached", data: { code: "NETWORK" } });
  }
  return unwrap(response);
}

/** Calls a mutation procedure: `POST /api/trpc/<path>` with a JSON body. */
export async function mutate(path, input) {
  let response;
  try {
    response = await fetch(BASE + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: envelope(input),
    });
  } catch {
    throw new TrpcError({ message: "The server cannot be reached", data: { code: "NETWORK" } });
  }
  return unwrap(response);
}

/** Codes after which the stream is worth opening again; others (UNAUTHORIZED…) are final. */
const RETRYABLE = new Set(["INTERNAL_SERVER_ERROR", "BAD_GATEWAY", "SERVICE_UNAVAILABLE", "GATEWAY_TIMEOUT", "TOO_MANY_REQUESTS"]);

/**
 * Opens a subscription (`GET /api/trpc/<path>?input=…` as server-sent events) and calls
 * `onData(data, id)` for each event. `onState("live" | "reconnecting")` follows the connection,
 * `onError(TrpcError)` ends it for good. Returns a function that closes it.
 *
 * The stream starts with `event: connected`; data events carry `{"json": …}` and, for tracked
 * events (`notifications.onNew`), an `id:` that the `EventSource` sends back as `Last-Event-ID`
 * when it reconnects, so nothing is missed; `event: ping` keeps it alive;
 * `event: serialized-error` carries an error and ends it.
 */
export function subscribe(path, input, { onData, onError, onState } = {}) {
  let source = null;
  let closed = false;
  let lastEventId = null;
  let retryTimer = null;

  const open = () => {
    const resume = lastEventId ? { ...(input ?? {}), lastEventId } : input;
    source = new EventSource(`${BASE}${path}?input=${encodeURIComponent(envelope(resume))}`);
    source.addEventListener("connected", () => onState?.("live"));
    source.onmessage = (event) => {
      if (event.lastEventId) lastEventId = event.lastEventId;
      const body = JSON.parse(event.data);
      onData?.(body.json, event.lastEventId || null);
    };
    source.addEventListener("serialized-error", (event) => {
      source.close();
      const error = new TrpcError(JSON.parse(event.data).json);
      if (RETRYABLE.has(error.code) && !closed) {
        onState?.("reconnecting");
        retryTimer = setTimeout(open, 3000);
      } else {
        closed = true;
        onError?.(error);
      }
    });
    source.addEventListener("return", () => {
      closed = true;
      source.close();
    });
    // The EventSource reconnects by itself after a dropped connection.
    source.onerror = () => {
      if (!closed) onState?.("reconnecting");
    };
  };

  open();
  return () => {
    closed = true;
    clearTimeout(retryTimer);
    source?.close();
  };
}
