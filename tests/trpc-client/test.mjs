// Drives a running Tidings server with the real @trpc/client v11 (httpLink, then httpBatchLink;
// transformer: superjson), untyped, and checks every inbox procedure of SPEC.md §4 (seed 003) and
// every error case as the client sees it (WIRE.md §4-§6); then the subscriptions
// (notifications.onNew, notifications.onCounts) through httpSubscriptionLink behind splitLink,
// with the `eventsource` package as EventSource, as WIRE.md §9 observed them (goldens 80-86).
//
// Started by run.sh, which creates the users, the notifications and the server, and passes them
// in the JSON file named by TIDINGS_FIXTURES:
//   {baseUrl, serviceKey, users: [{email, password, user: {id, ...}, created: [<create response>, ...]}]}
// Each suite signs in as one user and uses the other as "someone else": the httpLink suite is
// Alice's (Bob is the other), the httpBatchLink suite Bob's (Alice is the other), so each suite
// starts from an untouched inbox of 8 unread notifications.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  createTRPCClient,
  httpBatchLink,
  httpLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
} from '@trpc/client';
import { EventSource } from 'eventsource';
import superjson from 'superjson';

const fixtures = JSON.parse(readFileSync(process.env.TIDINGS_FIXTURES, 'utf8'));
const BASE = fixtures.baseUrl;
const URL_ = `${BASE}/api/trpc`;

// ---------------------------------------------------------------------------------------------
// A tiny sequential test runner.
let passed = 0;
let failed = 0;
const failures = [];
let group = '';

async function test(name, fn) {
  const full = group ? `${group} > ${name}` : name;
  try {
    await fn();
    passed++;
    console.log(`ok   - ${full}`);
  } catch (err) {
    failed++;
    failures.push(full);
    console.log(`FAIL - ${full}`);
    const text = err instanceof assert.AssertionError ? err.message : (err?.stack ?? String(err));
    for (const line of String(text).split('\n')) console.log(`         ${line}`);
    if (err instanceof TRPCClientError) {
      console.log(`         TRPCClientError data=${JSON.stringify(err.data)} shape=${JSON.stringify(err.shape)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Wire expectations (WIRE.md §5).
const CODES = {
  BAD_REQUEST: -32600,
  UNAUTHORIZED: -32001,
  FORBIDDEN: -32003,
  NOT_FOUND: -32004,
  METHOD_NOT_SUPPORTED: -32005,
};
const HTTP = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_SUPPORTED: 405,
};

// Seed 003's getPreferences response: the default matrix, in the seed's order.
const DEFAULT_PREFERENCES = {
  email: {
    ticketCreated: true,
    ticketAssigned: true,
    ticketUpdated: false,
    ticketResolved: true,
    newComment: true,
    mentions: true,
    slaWarning: true,
    slaBreach: true,
    weeklyReport: true,
  },
  inApp: {
    ticketCreated: true,
    ticketAssigned: true,
    ticketUpdated: true,
    ticketResolved: true,
    newComment: true,
    mentions: true,
    slaWarning: true,
    slaBreach: true,
    weeklyReport: false,
  },
  push: {
    ticketAssigned: true,
    mentions: true,
    slaWarning: false,
    slaBreach: true,
  },
};

const UNKNOWN_ID = 'ffffffff-ffff-4fff-bfff-ffffffffffff';
const ISO_MS_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Awaits `promise`, which must reject with a TRPCClientError of this code, status and path
 * (`path: null`: a whole-request error, whose data has no path).
 */
async function expectError(promise, { code, path, status, message }) {
  let value;
  let err;
  try {
    value = await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${code}, but the call resolved to ${JSON.stringify(value)}`);
  assert.ok(err instanceof TRPCClientError, `expected a TRPCClientError, got ${err?.stack ?? err}`);
  assert.ok(err.data, `error has no .data (message: ${err.message})`);
  assert.equal(err.data.code, code, `data.code (message: ${err.message})`);
  assert.equal(err.data.httpStatus, HTTP[code], 'data.httpStatus');
  if (path === null) {
    // A whole-request failure (WIRE.md §4): no path.
    assert.deepEqual(Object.keys(err.data).sort(), ['code', 'httpStatus'], 'data holds only code, httpStatus');
  } else {
    assert.equal(err.data.path, path, 'data.path');
    assert.deepEqual(Object.keys(err.data).sort(), ['code', 'httpStatus', 'path'], 'data holds only code, httpStatus, path');
  }
  assert.ok(err.shape, 'error has no .shape');
  assert.equal(typeof err.shape.code, 'number', 'shape.code is a number');
  assert.equal(err.shape.code, CODES[code], 'shape.code');
  assert.equal(err.shape.message, err.message, 'shape.message is the error message');
  assert.equal(typeof err.message, 'string');
  assert.ok(err.message.length > 0, 'the message is not empty');
  if (message instanceof RegExp) assert.match(err.message, message);
  else if (message !== undefined) assert.equal(err.message, message);
  assert.equal(err.meta?.response?.status, status ?? HTTP[code], 'HTTP status of the response');
  return err;
}

// ---------------------------------------------------------------------------------------------
// A client with a cookie jar: the `fetch` wrapper reads Set-Cookie, `headers` sends the cookie.

function makeClient(linkName, { cookie = null } = {}) {
  const session = {
    cookie, // "tidings_session=<token>" or null
    setCookies: [], // every tidings_session Set-Cookie seen, raw
    requests: [], // {method, url, path, search, status, headers, body}
  };
  const fetchWrapper = async (url, init = {}) => {
    const res = await globalThis.fetch(url, init);
    const u = new URL(String(url));
    session.requests.push({
      method: init.method ?? 'GET',
      url: String(url),
      path: decodeURIComponent(u.pathname),
      search: u.searchParams,
      headers: { ...(init.headers ?? {}) },
      body: init.body,
      status: res.status,
      responseHeaders: res.headers,
    });
    for (const raw of res.headers.getSetCookie()) {
      const [pair, ...attrs] = raw.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (name !== 'tidings_session') continue;
      session.setCookies.push(raw);
      const expired = attrs.some((a) => /^max-age=0$/i.test(a)) || value === '';
      session.cookie = expired ? null : `tidings_session=${value}`;
    }
    return res;
  };
  const opts = {
    url: URL_,
    transformer: superjson,
    fetch: fetchWrapper,
    headers: () => (session.cookie ? { cookie: session.cookie } : {}),
  };
  const link = linkName === 'httpBatchLink' ? httpBatchLink(opts) : httpLink(opts);
  const client = createTRPCClient({ links: [link] });
  return { client, session, last: () => session.requests.at(-1) };
}

/** The notifications run.sh created for `user`, oldest first, as records. */
function createdOf(user) {
  const records = [];
  for (const response of user.created) {
    const json = response.result.data.json;
    records.push(...(Array.isArray(json) ? json : [json]));
  }
  return records;
}

function checkInboxItem(item, record) {
  const keys = ['id', 'type', 'title', 'message', 'read', 'created_at'];
  if (record.data != null) keys.push('data');
  assert.deepEqual(Object.keys(item).sort(), keys.sort(), `fields of inbox item ${item.id}`);
  assert.equal(typeof item.id, 'string');
  assert.equal(item.id, record.id);
  assert.equal(item.type, record.type);
  assert.equal(item.title, record.subject);
  assert.equal(item.message, record.message);
  if (record.data != null) assert.deepEqual(item.data, record.data);
  assert.equal(typeof item.read, 'boolean');
  assert.equal(typeof item.created_at, 'string', 'created_at is a plain string (no superjson Date)');
  assert.match(item.created_at, ISO_MS_Z);
  assert.equal(item.created_at, record.timestamp);
}

async function listAll(client, input) {
  const pages = [];
  let cursor;
  for (let i = 0; i < 100; i++) {
    const page = await client.notifications.list.query(cursor ? { ...input, cursor } : input);
    pages.push(page);
    if (!page.hasMore) break;
    cursor = page.nextCursor;
  }
  return pages;
}

// ---------------------------------------------------------------------------------------------

async function suite(linkName, me, other) {
  const batched = linkName === 'httpBatchLink';
  const records = createdOf(me);
  const newestFirst = [...records].reverse();
  const ids = newestFirst.map((r) => r.id);
  const byId = new Map(records.map((r) => [r.id, r]));
  // The other user's notification that no suite deletes: their oldest.
  const othersId = createdOf(other)[0].id;
  const { client, session, last } = makeClient(linkName);
  const anonymous = makeClient(linkName).client;

  group = `${linkName}`;
  assert.equal(records.length, 8, 'run.sh created 8 notifications per user');

  // --- no session ------------------------------------------------------------------------------
  await test('no cookie: list → UNAUTHORIZED', async () => {
    await expectError(anonymous.notifications.list.query(), { code: 'UNAUTHORIZED', path: 'notifications.list' });
  });
  await test('no cookie: unreadCount, markAllAsRead, auth.me → UNAUTHORIZED', async () => {
    await expectError(anonymous.notifications.unreadCount.query(), { code: 'UNAUTHORIZED', path: 'notifications.unreadCount' });
    await expectError(anonymous.notifications.markAllAsRead.mutate(), { code: 'UNAUTHORIZED', path: 'notifications.markAllAsRead' });
    await expectError(anonymous.auth.me.query(), { code: 'UNAUTHORIZED', path: 'auth.me' });
  });
  await test('no cookie + invalid input → UNAUTHORIZED (auth before validation)', async () => {
    await expectError(anonymous.notifications.list.query({ limit: 0 }), { code: 'UNAUTHORIZED', path: 'notifications.list' });
  });
  await test('unknown token → UNAUTHORIZED', async () => {
    const c = makeClient(linkName, { cookie: 'tidings_session=not-a-real-token' }).client;
    await expectError(c.notifications.unreadCount.query(), { code: 'UNAUTHORIZED', path: 'notifications.unreadCount' });
  });
  await test('auth.login with a wrong password → UNAUTHORIZED, no cookie', async () => {
    const c = makeClient(linkName);
    await expectError(c.client.auth.login.mutate({ email: me.email, password: 'wrong-password' }), {
      code: 'UNAUTHORIZED',
      path: 'auth.login',
    });
    assert.equal(c.session.cookie, null);
  });

  // --- sign in through the client -------------------------------------------------------------
  await test('auth.login sets tidings_session, read through the fetch wrapper', async () => {
    const out = await client.auth.login.mutate({ email: me.email, password: me.password });
    assert.equal(out.user.id, me.user.id);
    assert.equal(out.user.email, me.email);
    const req = last();
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/api/trpc/auth.login');
    assert.equal(req.search.get('batch'), batched ? '1' : null);
    assert.ok(session.cookie, 'a tidings_session cookie was set');
    assert.match(session.cookie, /^tidings_session=[A-Za-z0-9_-]{20,}$/);
    const raw = session.setCookies.at(-1);
    for (const attr of ['HttpOnly', 'SameSite=Lax', 'Path=/']) assert.ok(raw.includes(attr), `${raw} has ${attr}`);
  });
  await test('auth.me → the signed-in user, cookie sent via the headers option', async () => {
    const me2 = await client.auth.me.query();
    assert.equal(me2.id, me.user.id);
    assert.equal(me2.email, me.email);
    assert.equal(me2.name, me.user.name);
    assert.equal(last().headers.cookie, session.cookie);
  });

  await test('success replies: content-type application/json, vary: trpc-accept, accept', async () => {
    await client.notifications.unreadCount.query();
    const res = last().responseHeaders;
    assert.equal(last().status, 200);
    assert.equal(res.get('content-type'), 'application/json');
    assert.equal(res.get('vary'), 'trpc-accept, accept');
  });
  await test('the session cookie is found among other cookies', async () => {
    const c = makeClient(linkName, { cookie: `foo=1; ${session.cookie}; bar=2` }).client;
    const me2 = await c.auth.me.query();
    assert.equal(me2.id, me.user.id);
  });

  // --- list -------------------------------------------------------------------------------------
  await test('list() with no argument: all 8, newest first, last page', async () => {
    const out = await client.notifications.list.query();
    const req = last();
    assert.equal(req.method, 'GET');
    const sent = batched ? JSON.parse(req.search.get('input'))['0'] : JSON.parse(req.search.get('input'));
    assert.deepEqual(sent, { json: null, meta: { values: ['undefined'], v: 1 } }, 'the client sent json:null + meta');
    assert.deepEqual(Object.keys(out).sort(), ['hasMore', 'nextCursor', 'notifications']);
    assert.deepEqual(out.notifications.map((n) => n.id), ids);
    assert.equal(out.nextCursor, null);
    assert.equal(out.hasMore, false);
    for (const item of out.notifications) {
      checkInboxItem(item, byId.get(item.id));
      assert.equal(item.read, false);
    }
  });
  await test('list({limit: 2}) → 2 items, a string nextCursor, hasMore', async () => {
    const out = await client.notifications.list.query({ limit: 2 });
    const sent = batched ? JSON.parse(last().search.get('input'))['0'] : JSON.parse(last().search.get('input'));
    assert.deepEqual(sent, { json: { limit: 2 } });
    assert.deepEqual(out.notifications.map((n) => n.id), ids.slice(0, 2));
    assert.equal(typeof out.nextCursor, 'string');
    assert.equal(out.hasMore, true);
  });
  await test('list({limit: 1, cursor: undefined}) (superjson undefined → null + meta)', async () => {
    const out = await client.notifications.list.query({ limit: 1, cursor: undefined });
    const sent = batched ? JSON.parse(last().search.get('input'))['0'] : JSON.parse(last().search.get('input'));
    assert.deepEqual(sent.json, { limit: 1, cursor: null });
    assert.deepEqual(out.notifications.map((n) => n.id), [ids[0]]);
    assert.equal(out.hasMore, true);
  });
  await test('list({limit: 3}) cursor paging to the end: 3 + 3 + 2, no gaps or repeats', async () => {
    const pages = await listAll(client, { limit: 3 });
    assert.deepEqual(pages.map((p) => p.notifications.length), [3, 3, 2]);
    assert.deepEqual(pages.map((p) => p.hasMore), [true, true, false]);
    assert.deepEqual(pages.map((p) => typeof p.nextCursor), ['string', 'string', 'object']);
    assert.equal(pages.at(-1).nextCursor, null);
    for (const p of pages) assert.equal(p.hasMore, typeof p.nextCursor === 'string', 'hasMore ⇔ nextCursor is a string');
    assert.deepEqual(pages.flatMap((p) => p.notifications.map((n) => n.id)), ids);
  });
  await test('list({limit: 8}) exactly all → no next page', async () => {
    const out = await client.notifications.list.query({ limit: 8 });
    assert.equal(out.notifications.length, 8);
    assert.equal(out.nextCursor, null);
    assert.equal(out.hasMore, false);
  });
  await test('list({limit: 100}) (the maximum) → all', async () => {
    const out = await client.notifications.list.query({ limit: 100 });
    assert.deepEqual(out.notifications.map((n) => n.id), ids);
  });
  await test('list({limit: 0}) → BAD_REQUEST', async () => {
    await expectError(client.notifications.list.query({ limit: 0 }), { code: 'BAD_REQUEST', path: 'notifications.list', message: /limit/ });
  });
  await test('list({limit: 101}) → BAD_REQUEST', async () => {
    await expectError(client.notifications.list.query({ limit: 101 }), { code: 'BAD_REQUEST', path: 'notifications.list', message: /limit/ });
  });
  await test('list({limit: "2"}) (wrong type) → BAD_REQUEST', async () => {
    await expectError(client.notifications.list.query({ limit: '2' }), { code: 'BAD_REQUEST', path: 'notifications.list' });
  });

  // --- counts -----------------------------------------------------------------------------------
  await test('unreadCount() → {count: 8}', async () => {
    assert.deepEqual(await client.notifications.unreadCount.query(), { count: 8 });
  });
  await test('counts() → {unread: 8, unseen: 8, total: 8}', async () => {
    assert.deepEqual(await client.notifications.counts.query(), { unread: 8, unseen: 8, total: 8 });
  });

  // --- markAsRead / unreadOnly ------------------------------------------------------------------
  await test('markAsRead({id}) → {success: true}', async () => {
    const out = await client.notifications.markAsRead.mutate({ id: ids[1] });
    assert.deepEqual(out, { success: true });
    const req = last();
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(req.body), batched ? { 0: { json: { id: ids[1] } } } : { json: { id: ids[1] } });
  });
  await test('after markAsRead: unreadCount 7, item read in list()', async () => {
    assert.deepEqual(await client.notifications.unreadCount.query(), { count: 7 });
    const out = await client.notifications.list.query();
    assert.equal(out.notifications.find((n) => n.id === ids[1]).read, true);
    assert.equal(out.notifications.filter((n) => n.read).length, 1);
  });
  await test('markAsRead again (already read) → {success: true}', async () => {
    assert.deepEqual(await client.notifications.markAsRead.mutate({ id: ids[1] }), { success: true });
    assert.deepEqual(await client.notifications.unreadCount.query(), { count: 7 });
  });
  await test('list({unreadOnly: true}) → the 7 unread', async () => {
    const out = await client.notifications.list.query({ unreadOnly: true });
    assert.deepEqual(out.notifications.map((n) => n.id), ids.filter((id) => id !== ids[1]));
    assert.ok(out.notifications.every((n) => n.read === false));
    assert.equal(out.hasMore, false);
  });
  await test('list({unreadOnly: true, limit: 4}) paging → 4 + 3', async () => {
    const pages = await listAll(client, { unreadOnly: true, limit: 4 });
    assert.deepEqual(pages.map((p) => p.notifications.length), [4, 3]);
    assert.deepEqual(pages.flatMap((p) => p.notifications.map((n) => n.id)), ids.filter((id) => id !== ids[1]));
  });
  await test('list({unreadOnly: false}) → all 8', async () => {
    const out = await client.notifications.list.query({ unreadOnly: false });
    assert.equal(out.notifications.length, 8);
  });

  // --- markAllAsSeen ----------------------------------------------------------------------------
  await test('markAllAsSeen() → {success: true, count: 8}; counts unseen 0', async () => {
    assert.deepEqual(await client.notifications.markAllAsSeen.mutate(), { success: true, count: 8 });
    assert.deepEqual(await client.notifications.counts.query(), { unread: 7, unseen: 0, total: 8 });
  });
  await test('markAllAsSeen({}) → {success: true, count: 0}', async () => {
    assert.deepEqual(await client.notifications.markAllAsSeen.mutate({}), { success: true, count: 0 });
  });

  // --- archive ----------------------------------------------------------------------------------
  await test('archive({id}) → {success: true}; gone from the inbox, in status "archived"', async () => {
    assert.deepEqual(await client.notifications.archive.mutate({ id: ids[2] }), { success: true });
    const inbox = await client.notifications.list.query();
    assert.deepEqual(inbox.notifications.map((n) => n.id), ids.filter((id) => id !== ids[2]));
    const archived = await client.notifications.list.query({ status: 'archived' });
    assert.deepEqual(archived.notifications.map((n) => n.id), [ids[2]]);
    assert.deepEqual(await client.notifications.counts.query(), { unread: 6, unseen: 0, total: 7 });
    assert.deepEqual(await client.notifications.unreadCount.query(), { count: 6 });
  });

  // --- delete -----------------------------------------------------------------------------------
  await test('delete({id}) → {success: true}; gone; then NOT_FOUND on it', async () => {
    assert.deepEqual(await client.notifications.delete.mutate({ id: ids[3] }), { success: true });
    const inbox = await client.notifications.list.query();
    assert.ok(!inbox.notifications.some((n) => n.id === ids[3]));
    assert.deepEqual(await client.notifications.counts.query(), { unread: 5, unseen: 0, total: 6 });
    await expectError(client.notifications.markAsRead.mutate({ id: ids[3] }), { code: 'NOT_FOUND', path: 'notifications.markAsRead' });
    await expectError(client.notifications.delete.mutate({ id: ids[3] }), { code: 'NOT_FOUND', path: 'notifications.delete' });
  });

  // --- markAllAsRead ----------------------------------------------------------------------------
  await test('markAllAsRead() (no argument) → {success: true, count: 5}', async () => {
    const out = await client.notifications.markAllAsRead.mutate();
    const body = JSON.parse(last().body);
    assert.deepEqual(batched ? body['0'] : body, { json: null, meta: { values: ['undefined'], v: 1 } });
    assert.deepEqual(out, { success: true, count: 5 });
    assert.deepEqual(await client.notifications.unreadCount.query(), { count: 0 });
    const unread = await client.notifications.list.query({ unreadOnly: true });
    assert.deepEqual(unread, { notifications: [], nextCursor: null, hasMore: false });
  });
  await test('markAllAsRead({}) → {success: true, count: 0}', async () => {
    assert.deepEqual(await client.notifications.markAllAsRead.mutate({}), { success: true, count: 0 });
    assert.deepEqual(JSON.parse(last().body), batched ? { 0: { json: {} } } : { json: {} });
  });

  // --- preferences ------------------------------------------------------------------------------
  await test("getPreferences() equals seed 003's default matrix", async () => {
    const prefs = await client.notifications.getPreferences.query();
    assert.deepEqual(prefs, DEFAULT_PREFERENCES);
  });
  await test("getPreferences() lists types in seed 003's order", async () => {
    const prefs = await client.notifications.getPreferences.query();
    assert.deepEqual(Object.keys(prefs), Object.keys(DEFAULT_PREFERENCES));
    for (const channel of Object.keys(DEFAULT_PREFERENCES)) {
      assert.deepEqual(Object.keys(prefs[channel]), Object.keys(DEFAULT_PREFERENCES[channel]), channel);
    }
  });
  await test('updatePreferences({channel: "email", type: "ticketUpdated", enabled: true})', async () => {
    const out = await client.notifications.updatePreferences.mutate({ channel: 'email', type: 'ticketUpdated', enabled: true });
    assert.deepEqual(out, { success: true, preferences: { email: { ticketUpdated: true } } });
    const prefs = await client.notifications.getPreferences.query();
    assert.deepEqual(prefs, { ...DEFAULT_PREFERENCES, email: { ...DEFAULT_PREFERENCES.email, ticketUpdated: true } });
  });
  await test('updatePreferences({channel: "push", type: "mentions", enabled: false})', async () => {
    const out = await client.notifications.updatePreferences.mutate({ channel: 'push', type: 'mentions', enabled: false });
    assert.deepEqual(out, { success: true, preferences: { push: { mentions: false } } });
    const prefs = await client.notifications.getPreferences.query();
    assert.equal(prefs.push.mentions, false);
    assert.equal(prefs.inApp.mentions, true);
  });
  await test('updatePreferences with channel "sms" → BAD_REQUEST', async () => {
    await expectError(client.notifications.updatePreferences.mutate({ channel: 'sms', type: 'mentions', enabled: true }), {
      code: 'BAD_REQUEST',
      path: 'notifications.updatePreferences',
      message: /channel/,
    });
  });
  await test('updatePreferences with an unknown type → BAD_REQUEST', async () => {
    await expectError(client.notifications.updatePreferences.mutate({ channel: 'email', type: 'noSuchType', enabled: true }), {
      code: 'BAD_REQUEST',
      path: 'notifications.updatePreferences',
      message: /type/,
    });
  });
  await test('updatePreferences on a channel the type lacks (push weeklyReport) → BAD_REQUEST', async () => {
    await expectError(client.notifications.updatePreferences.mutate({ channel: 'push', type: 'weeklyReport', enabled: true }), {
      code: 'BAD_REQUEST',
      path: 'notifications.updatePreferences',
    });
  });
  await test('updatePreferences without `enabled` → BAD_REQUEST', async () => {
    await expectError(client.notifications.updatePreferences.mutate({ channel: 'email', type: 'mentions' }), {
      code: 'BAD_REQUEST',
      path: 'notifications.updatePreferences',
    });
  });
  await test('disableAllEmail() → {success: true, message}; every email type off, others kept', async () => {
    const out = await client.notifications.disableAllEmail.mutate();
    assert.deepEqual(out, { success: true, message: 'All email notifications disabled' });
    const prefs = await client.notifications.getPreferences.query();
    assert.deepEqual(prefs.email, Object.fromEntries(Object.keys(DEFAULT_PREFERENCES.email).map((k) => [k, false])));
    assert.deepEqual(prefs.inApp, DEFAULT_PREFERENCES.inApp);
    assert.deepEqual(prefs.push, { ...DEFAULT_PREFERENCES.push, mentions: false });
  });
  await test('disableAllEmail({}) → {success: true, message}', async () => {
    assert.deepEqual(await client.notifications.disableAllEmail.mutate({}), { success: true, message: 'All email notifications disabled' });
  });

  // --- error cases --------------------------------------------------------------------------------
  await test('NOT_FOUND: markAsRead / delete / archive of an unknown id', async () => {
    const err = await expectError(client.notifications.markAsRead.mutate({ id: UNKNOWN_ID }), {
      code: 'NOT_FOUND',
      path: 'notifications.markAsRead',
      message: 'Notification not found',
    });
    assert.equal(err.meta.response.headers.get('content-type'), 'application/json');
    await expectError(client.notifications.delete.mutate({ id: UNKNOWN_ID }), { code: 'NOT_FOUND', path: 'notifications.delete' });
    await expectError(client.notifications.archive.mutate({ id: UNKNOWN_ID }), { code: 'NOT_FOUND', path: 'notifications.archive' });
  });
  await test("FORBIDDEN: markAsRead / delete / archive of the other user's notification", async () => {
    await expectError(client.notifications.markAsRead.mutate({ id: othersId }), { code: 'FORBIDDEN', path: 'notifications.markAsRead' });
    await expectError(client.notifications.delete.mutate({ id: othersId }), { code: 'FORBIDDEN', path: 'notifications.delete' });
    await expectError(client.notifications.archive.mutate({ id: othersId }), { code: 'FORBIDDEN', path: 'notifications.archive' });
  });
  await test("the other user's notifications never show in this user's list", async () => {
    const out = await client.notifications.list.query({ status: 'archived' });
    const inbox = await client.notifications.list.query();
    const seen = new Set([...out.notifications, ...inbox.notifications].map((n) => n.id));
    for (const r of createdOf(other)) assert.ok(!seen.has(r.id), `${r.id} leaked`);
  });
  await test('BAD_REQUEST: markAsRead without id', async () => {
    await expectError(client.notifications.markAsRead.mutate({}), { code: 'BAD_REQUEST', path: 'notifications.markAsRead' });
  });
  await test('METHOD_NOT_SUPPORTED: a query sent by .mutate (POST) → 405, Allow: GET', async () => {
    const err = await expectError(client.notifications.list.mutate({ limit: 1 }), {
      code: 'METHOD_NOT_SUPPORTED',
      path: 'notifications.list',
    });
    assert.equal(last().method, 'POST');
    assert.equal(err.meta.response.headers.get('allow'), 'GET');
    await expectError(client.notifications.unreadCount.mutate(), { code: 'METHOD_NOT_SUPPORTED', path: 'notifications.unreadCount' });
  });
  await test('METHOD_NOT_SUPPORTED: a mutation sent by .query (GET) → 405, Allow: POST', async () => {
    const err = await expectError(client.notifications.markAllAsRead.query(), {
      code: 'METHOD_NOT_SUPPORTED',
      path: 'notifications.markAllAsRead',
    });
    assert.equal(last().method, 'GET');
    assert.equal(err.meta.response.headers.get('allow'), 'POST');
  });
  await test('METHOD_NOT_SUPPORTED comes before auth (no cookie)', async () => {
    await expectError(anonymous.notifications.markAsRead.query({ id: ids[0] }), {
      code: 'METHOD_NOT_SUPPORTED',
      path: 'notifications.markAsRead',
    });
  });
  await test('unknown procedure (query and mutation) → NOT_FOUND with its path', async () => {
    await expectError(client.notifications.nope.query(), {
      code: 'NOT_FOUND',
      path: 'notifications.nope',
      message: 'No procedure found on path "notifications.nope"',
    });
    await expectError(client.notifications.nope.mutate({ id: ids[0] }), { code: 'NOT_FOUND', path: 'notifications.nope' });
  });
  await test('unknown procedure without a cookie → NOT_FOUND (before auth)', async () => {
    await expectError(anonymous.nope.query(), { code: 'NOT_FOUND', path: 'nope' });
  });

  // --- several calls at once ----------------------------------------------------------------------
  await test('Promise.all of three queries', async () => {
    const before = session.requests.length;
    const [count, page, prefs] = await Promise.all([
      client.notifications.unreadCount.query(),
      client.notifications.list.query({ limit: 1 }),
      client.notifications.getPreferences.query(),
    ]);
    assert.deepEqual(count, { count: 0 });
    assert.equal(page.notifications.length, 1);
    assert.equal(page.hasMore, true);
    assert.equal(typeof prefs.email, 'object');
    const sent = session.requests.slice(before);
    if (batched) {
      assert.equal(sent.length, 1, 'one batched request');
      assert.equal(sent[0].path, '/api/trpc/notifications.unreadCount,notifications.list,notifications.getPreferences');
      assert.equal(sent[0].search.get('batch'), '1');
      assert.equal(sent[0].status, 200);
    } else {
      assert.equal(sent.length, 3, 'one request per call');
    }
  });
  await test('one success and one failure at once (batch → 207)', async () => {
    const before = session.requests.length;
    const [ok, bad] = await Promise.allSettled([
      client.notifications.unreadCount.query(),
      client.notifications.list.query({ limit: 0 }),
    ]);
    assert.equal(ok.status, 'fulfilled', `unreadCount: ${ok.reason}`);
    assert.deepEqual(ok.value, { count: 0 });
    assert.equal(bad.status, 'rejected');
    await expectError(Promise.reject(bad.reason), {
      code: 'BAD_REQUEST',
      path: 'notifications.list',
      status: batched ? 207 : 400,
    });
    const sent = session.requests.slice(before);
    if (batched) {
      assert.equal(sent.length, 1);
      assert.equal(sent[0].path, '/api/trpc/notifications.unreadCount,notifications.list');
      assert.equal(sent[0].status, 207);
    }
  });
  await test('two mutations at once: one ok, one FORBIDDEN (batch → 207)', async () => {
    const before = session.requests.length;
    const [ok, bad] = await Promise.allSettled([
      client.notifications.markAsRead.mutate({ id: ids[4] }),
      client.notifications.delete.mutate({ id: othersId }),
    ]);
    assert.equal(ok.status, 'fulfilled', `markAsRead: ${ok.reason}`);
    assert.deepEqual(ok.value, { success: true });
    await expectError(Promise.reject(bad.reason), {
      code: 'FORBIDDEN',
      path: 'notifications.delete',
      status: batched ? 207 : 403,
    });
    const sent = session.requests.slice(before);
    if (batched) {
      assert.equal(sent.length, 1);
      assert.equal(sent[0].method, 'POST');
      assert.equal(sent[0].path, '/api/trpc/notifications.markAsRead,notifications.delete');
      assert.equal(sent[0].status, 207);
    }
  });
  await test('a known and an unknown procedure at once', async () => {
    const [ok, bad] = await Promise.allSettled([
      client.notifications.counts.query(),
      client.notifications.nope.query(),
    ]);
    assert.equal(ok.status, 'fulfilled', `counts: ${ok.reason}`);
    assert.deepEqual(ok.value, { unread: 0, unseen: 0, total: 6 });
    await expectError(Promise.reject(bad.reason), { code: 'NOT_FOUND', path: 'notifications.nope', status: batched ? 207 : 404 });
  });
  await test('all calls fail the same way (batch → that status)', async () => {
    const results = await Promise.allSettled([
      client.notifications.markAsRead.mutate({ id: UNKNOWN_ID }),
      client.notifications.archive.mutate({ id: UNKNOWN_ID }),
    ]);
    await expectError(Promise.reject(results[0].reason), { code: 'NOT_FOUND', path: 'notifications.markAsRead' });
    await expectError(Promise.reject(results[1].reason), { code: 'NOT_FOUND', path: 'notifications.archive' });
  });

  await test('a query and a mutation sent by .query at once', async () => {
    const before = session.requests.length;
    const [ok, bad] = await Promise.allSettled([
      client.notifications.unreadCount.query(),
      client.notifications.markAllAsRead.query(),
    ]);
    const sent = session.requests.slice(before);
    if (batched) {
      // One GET holding a query and a mutation: the reference refuses the whole request (26),
      // and the client applies that one error to every call of the batch.
      assert.equal(sent.length, 1);
      assert.equal(sent[0].status, 400);
      assert.equal(sent[0].responseHeaders.get('content-type'), 'text/plain;charset=UTF-8');
      for (const r of [ok, bad]) {
        assert.equal(r.status, 'rejected');
        await expectError(Promise.reject(r.reason), {
          code: 'BAD_REQUEST',
          path: null,
          message: 'Cannot mix procedure types in call: query, mutation',
        });
      }
    } else {
      assert.equal(sent.length, 2);
      assert.equal(ok.status, 'fulfilled', `unreadCount: ${ok.reason}`);
      assert.deepEqual(ok.value, { count: 0 });
      const err = await expectError(Promise.reject(bad.reason), { code: 'METHOD_NOT_SUPPORTED', path: 'notifications.markAllAsRead' });
      assert.equal(err.meta.response.headers.get('allow'), 'POST');
    }
  });
  await test('a mutation sent by .query and an unknown procedure at once (batch → 207, Allow: POST)', async () => {
    const [wrong, unknown] = await Promise.allSettled([
      client.notifications.markAllAsRead.query(),
      client.notifications.nope.query(),
    ]);
    const err = await expectError(Promise.reject(wrong.reason), {
      code: 'METHOD_NOT_SUPPORTED',
      path: 'notifications.markAllAsRead',
      status: batched ? 207 : 405,
    });
    assert.equal(err.meta.response.headers.get('allow'), 'POST');
    await expectError(Promise.reject(unknown.reason), { code: 'NOT_FOUND', path: 'notifications.nope', status: batched ? 207 : 404 });
  });
  await test('no cookie, two calls at once: all UNAUTHORIZED (batch → 401)', async () => {
    const results = await Promise.allSettled([
      anonymous.notifications.unreadCount.query(),
      anonymous.notifications.counts.query(),
    ]);
    await expectError(Promise.reject(results[0].reason), { code: 'UNAUTHORIZED', path: 'notifications.unreadCount' });
    await expectError(Promise.reject(results[1].reason), { code: 'UNAUTHORIZED', path: 'notifications.counts' });
  });

  // --- logout -------------------------------------------------------------------------------------
  await test('auth.logout() → {success: true}, clears the cookie', async () => {
    const token = session.cookie;
    const out = await client.auth.logout.mutate();
    assert.deepEqual(out, { success: true });
    assert.match(session.setCookies.at(-1), /^tidings_session=;/);
    assert.match(session.setCookies.at(-1), /Max-Age=0/i);
    assert.equal(session.cookie, null, 'the jar dropped the cookie');
    session.revoked = token;
  });
  await test('after logout, no cookie → UNAUTHORIZED', async () => {
    await expectError(client.notifications.list.query(), { code: 'UNAUTHORIZED', path: 'notifications.list' });
  });
  await test('after logout, the old token (revoked) → UNAUTHORIZED', async () => {
    const c = makeClient(linkName, { cookie: session.revoked }).client;
    await expectError(c.notifications.unreadCount.query(), { code: 'UNAUTHORIZED', path: 'notifications.unreadCount' });
    await expectError(c.auth.me.query(), { code: 'UNAUTHORIZED', path: 'auth.me' });
    await expectError(c.notifications.markAllAsRead.mutate({}), { code: 'UNAUTHORIZED', path: 'notifications.markAllAsRead' });
  });
}

// ---------------------------------------------------------------------------------------------

// Subscriptions (WIRE.md §9): httpSubscriptionLink behind splitLink, as golden 80 builds it.

const NO_INPUT_ENVELOPE = { json: null, meta: { values: ['undefined'], v: 1 } };

/** Signs in with a plain fetch and returns "tidings_session=<token>". */
async function signIn(user) {
  const res = await fetch(`${URL_}/auth.login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ json: { email: user.email, password: user.password } }),
  });
  assert.equal(res.status, 200, `auth.login: ${await res.text()}`);
  const raw = res.headers.getSetCookie().find((c) => c.startsWith('tidings_session='));
  assert.ok(raw, 'auth.login set the session cookie');
  return raw.split(';')[0];
}

/** Creates notifications with the service key (notifications.create with an array). */
async function serviceCreate(records) {
  const res = await fetch(`${URL_}/notifications.create`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fixtures.serviceKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ json: records }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, `notifications.create: ${JSON.stringify(body)}`);
  return body.result.data.json;
}

/**
 * A client as golden 80 builds it: subscriptions through httpSubscriptionLink with the
 * `eventsource` package (the cookie goes in through its `fetch` option), the rest through
 * httpBatchLink. Every request the EventSource makes is recorded.
 */
function makeSplitClient({ cookie = null } = {}) {
  const session = { cookie, sseRequests: [] };
  const link = splitLink({
    condition: (op) => op.type === 'subscription',
    true: httpSubscriptionLink({
      url: URL_,
      transformer: superjson,
      EventSource,
      eventSourceOptions: () => ({
        fetch: (u, init) => {
          const headers = { ...init.headers, ...(session.cookie ? { cookie: session.cookie } : {}) };
          const url = new URL(String(u));
          session.sseRequests.push({ url, path: url.pathname, search: url.searchParams, headers });
          return fetch(u, { ...init, headers });
        },
      }),
    }),
    false: httpBatchLink({
      url: URL_,
      transformer: superjson,
      headers: () => (session.cookie ? { cookie: session.cookie } : {}),
    }),
  });
  return { client: createTRPCClient({ links: [link] }), session };
}

/**
 * Subscribes with every callback recorded; `until(cond, what)` waits (at most 5 s) for a
 * callback to make `cond()` true.
 */
function watch(procedure, input) {
  const log = { started: 0, stopped: 0, data: [], errors: [], completed: false, states: [] };
  let wake = null;
  const poke = () => {
    if (wake) wake();
  };
  const sub = procedure.subscribe(input, {
    onStarted: () => {
      log.started++;
      poke();
    },
    onData: (d) => {
      log.data.push(d);
      poke();
    },
    onError: (e) => {
      log.errors.push(e);
      poke();
    },
    onStopped: () => {
      log.stopped++;
      poke();
    },
    onComplete: () => {
      log.completed = true;
      poke();
    },
    onConnectionStateChange: (s) => {
      log.states.push(s);
      poke();
    },
  });
  log.unsubscribe = () => sub.unsubscribe();
  log.until = async (cond, what, ms = 5000) => {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = { ...log, errors: log.errors.map((e) => e.message) };
        throw new Error(`no ${what} within ${ms} ms; callbacks so far: ${JSON.stringify(seen)}`);
      }
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          wake = null;
          resolve();
        };
      });
    }
  };
  return log;
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A record for notifications.create, for `user`. */
function recordFor(user, n, extra = {}) {
  return { recipient: user.user.id, subject: `Live ${n}`, message: `Live message ${n}`, ...extra };
}

/** onData of onNew: `{id, data: {notification, unreadCount, counts}}` for this record. */
function checkNewEvent(event, record, { unread, unseen, total }) {
  assert.deepEqual(Object.keys(event).sort(), ['data', 'id'], `onData keys: ${JSON.stringify(event)}`);
  assert.equal(event.id, record.id);
  assert.deepEqual(Object.keys(event.data), ['notification', 'unreadCount', 'counts']);
  checkInboxItem(event.data.notification, record);
  assert.equal(event.data.notification.read, false);
  assert.equal(event.data.unreadCount, unread);
  assert.deepEqual(event.data.counts, { unread, unseen, total });
}

async function subscriptionSuite(me, other) {
  group = 'httpSubscriptionLink';
  const { client, session } = makeSplitClient();
  let live = 0;

  await test('sign in for the subscription client', async () => {
    session.cookie = await signIn(me);
    const who = await client.auth.me.query();
    assert.equal(who.id, me.user.id);
  });

  let sub;
  let before;
  const created = [];
  await test('onNew.subscribe(): onStarted, one GET as golden 80, no-input envelope, accept + cookie', async () => {
    sub = watch(client.notifications.onNew);
    await sub.until(() => sub.started === 1, 'onStarted');
    assert.equal(session.sseRequests.length, 1);
    const req = session.sseRequests[0];
    assert.equal(req.path, '/api/trpc/notifications.onNew');
    assert.equal(req.search.get('batch'), null, 'subscriptions are never batched');
    assert.deepEqual(JSON.parse(req.search.get('input')), NO_INPUT_ENVELOPE);
    assert.equal(req.headers.Accept, 'text/event-stream');
    assert.equal(req.headers.cookie, session.cookie);
    assert.deepEqual(sub.states.map((s) => s.state), ['connecting', 'pending']);
    // Queries beside it still go through httpBatchLink.
    before = await client.notifications.counts.query();
    assert.equal(session.sseRequests.length, 1);
  });

  await test('onData {id, data: {notification, unreadCount, counts}} for each notification created while subscribed', async () => {
    const records = await serviceCreate([
      recordFor(me, ++live),
      recordFor(me, ++live, { type: 'ticketAssigned', data: { ticketNumber: 1234, nested: { list: [1, 'two'] } } }),
    ]);
    created.push(...records);
    await sub.until(() => sub.data.length === 2, '2 onData');
    records.forEach((record, i) => {
      checkNewEvent(sub.data[i], record, {
        unread: before.unread + i + 1,
        unseen: before.unseen + i + 1,
        total: before.total + i + 1,
      });
    });
    assert.deepEqual(sub.data[1].data.notification.data, { ticketNumber: 1234, nested: { list: [1, 'two'] } });
    assert.equal(sub.errors.length, 0);
  });

  await test("another user's notifications never reach the stream", async () => {
    await serviceCreate([recordFor(other, 'other')]);
    const mine = await serviceCreate([recordFor(me, ++live)]);
    created.push(...mine);
    await sub.until(() => sub.data.length === 3, 'onData for the next own notification');
    assert.equal(sub.data[2].id, mine[0].id);
  });

  let lastEventId;
  await test('unsubscribe() → onComplete (and nothing more arrives: checked below)', async () => {
    lastEventId = sub.data.at(-1).id;
    sub.unsubscribe();
    await sub.until(() => sub.completed, 'onComplete');
    assert.equal(sub.errors.length, 0);
  });

  await test('resubscribe with lastEventId as input → exactly the missed ones, oldest first, then live ones', async () => {
    const missed = await serviceCreate([recordFor(me, ++live), recordFor(me, ++live), recordFor(me, ++live)]);
    const counts = await client.notifications.counts.query();
    const resumed = watch(client.notifications.onNew, { lastEventId });
    await resumed.until(() => resumed.data.length === 3, 'the 3 missed notifications');
    const req = session.sseRequests.at(-1);
    assert.deepEqual(JSON.parse(req.search.get('input')), { json: { lastEventId } });
    assert.equal(req.headers['Last-Event-ID'], undefined);
    missed.forEach((record, i) => {
      const later = missed.length - 1 - i;
      checkNewEvent(resumed.data[i], record, {
        unread: counts.unread - later,
        unseen: counts.unseen - later,
        total: counts.total - later,
      });
    });
    const next = await serviceCreate([recordFor(me, ++live)]);
    await resumed.until(() => resumed.data.length === 4, 'the live notification');
    assert.equal(resumed.data[3].id, next[0].id);
    assert.deepEqual(resumed.data.map((d) => d.id), [...missed, ...next].map((r) => r.id));
    // The first subscription, unsubscribed, saw none of them.
    assert.equal(sub.data.length, 3);
    resumed.unsubscribe();
    await resumed.until(() => resumed.completed, 'onComplete');
  });

  await test('onCounts.subscribe(): {unread, unseen, total} at once, then after each change', async () => {
    const counts = watch(client.notifications.onCounts);
    await counts.until(() => counts.data.length === 1, 'the first counts');
    const now = await client.notifications.counts.query();
    assert.deepEqual(counts.data[0], now);
    const out = await client.notifications.markAllAsSeen.mutate();
    assert.equal(out.success, true);
    await counts.until(() => counts.data.length === 2, 'counts after markAllAsSeen');
    assert.deepEqual(counts.data[1], { ...now, unseen: 0 });
    await serviceCreate([recordFor(me, ++live)]);
    await counts.until(() => counts.data.length === 3, 'counts after a new notification');
    assert.deepEqual(counts.data[2], { unread: now.unread + 1, unseen: 1, total: now.total + 1 });
    counts.unsubscribe();
  });

  await test('invalid input {lastEventId: 5} → onStarted, then onError BAD_REQUEST', async () => {
    const bad = watch(client.notifications.onNew, { lastEventId: 5 });
    await bad.until(() => bad.errors.length === 1, 'onError');
    assert.equal(bad.started, 1);
    const err = bad.errors[0];
    assert.ok(err instanceof TRPCClientError, String(err));
    assert.deepEqual(err.data, { code: 'BAD_REQUEST', httpStatus: 400, path: 'notifications.onNew' });
    assert.equal(err.shape.code, CODES.BAD_REQUEST);
    assert.match(err.message, /lastEventId/);
    bad.unsubscribe();
  });

  await test('unknown procedure → onError "Non-200 status code (404)", no data', async () => {
    const nope = watch(client.notifications.nope);
    await nope.until(() => nope.errors.length === 1, 'onError');
    assert.equal(nope.started, 0);
    assert.equal(nope.errors[0].message, 'Non-200 status code (404)');
    assert.equal(nope.errors[0].data, undefined);
    nope.unsubscribe();
  });

  await test('no cookie / unknown token → onStarted, then onError UNAUTHORIZED (-32001), no retry', async () => {
    const runs = [makeSplitClient(), makeSplitClient({ cookie: 'tidings_session=not-a-real-token' })].map((c) => ({
      ...c,
      log: watch(c.client.notifications.onNew),
    }));
    for (const { log } of runs) {
      await log.until(() => log.errors.length === 1, 'onError');
      assert.equal(log.started, 1, 'onStarted came first');
      const err = log.errors[0];
      assert.ok(err instanceof TRPCClientError, String(err));
      assert.equal(err.message, 'Not authenticated');
      assert.deepEqual(err.data, { code: 'UNAUTHORIZED', httpStatus: 401, path: 'notifications.onNew' });
      assert.deepEqual(err.shape, { message: 'Not authenticated', code: -32001, data: err.data });
      assert.equal(err.meta, undefined);
    }
    // Longer than the EventSource's 3 s retry delay: a non-retryable error is final.
    await pause(3500);
    for (const { log, session: s } of runs) {
      assert.equal(s.sseRequests.length, 1, 'no retry');
      assert.equal(log.errors.length, 1);
      assert.equal(log.data.length, 0);
      assert.equal(log.started, 1);
      log.unsubscribe();
    }
  });
}

const [alice, bob] = fixtures.users;
try {
  await suite('httpLink', alice, bob);
  await suite('httpBatchLink', bob, alice);
  await subscriptionSuite(alice, bob);
} catch (err) {
  failed++;
  console.log(`FAIL - suite aborted: ${err?.stack ?? err}`);
}
group = '';
if (failures.length) {
  console.log('\nfailed:');
  for (const f of failures) console.log(`  - ${f}`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
