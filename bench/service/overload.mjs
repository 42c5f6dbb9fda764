// The overload client of the service load test: `clients` uploaders, each
// PUTting `bodyBytes` slowly (in `chunks` pieces over `uploadMs`), one after
// the other for `seconds`, so that far more bytes are in flight than the
// service's memory holds. Each one behaves as a careful HTTP client does
// (RFC 9112 §9.6, and what curl does): an answer that comes before its
// upload is done ends the upload; a 503 is retried after its Retry-After.
// With `finishUploads`, clients send every byte before they read the
// answer instead — the naive client, which a server that closes on it
// makes fail with EPIPE.
//
// What it counts is what a client sees: every answer by status, whether a
// 503 carried Retry-After and whether any answer said Connection: close,
// answers that came before the upload ended, and errors — a socket error
// or a timeout before any answer, which is a client left without one.
// Bodies are printable, their sha256 sent as x-checksum; a stored key is
// read back (GET) during the run and after it, and its value checked.
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';

const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

function printable(n) {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) b[i] = ALPHABET[b[i] & 63];
  return b;
}

const sha = (b) => createHash('sha256').update(b).digest('hex');

/** One PUT of `body`, sent in `chunks` pieces over `uploadMs`. Resolves with what the client saw. */
function upload(url, agent, key, body, digest, { uploadMs, chunks, finishUploads, timeoutMs }) {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    let sent = 0;
    let timer = null;
    const done = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(deadline);
      resolve({ ...r, ms: performance.now() - started });
    };
    const deadline = setTimeout(() => {
      req.destroy();
      done({ error: 'timeout' });
    }, timeoutMs);
    const req = request(`${url}/kv/${key}`, {
      method: 'PUT',
      agent,
      headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, 'x-checksum': digest },
    });
    // What a naive client does with an answer that came early: nothing
    // until its upload is done (then it reads it); a write that fails in
    // between is the error it sees.
    let heard = null;
    req.on('response', (res) => {
      const answer = {
        status: res.statusCode,
        retryAfter: res.headers['retry-after'],
        connectionClose: /close/i.test(res.headers.connection ?? ''),
        early: sent < body.length,
      };
      res.resume();
      res.on('end', () => {
        if (sent >= body.length) return done(answer);
        if (finishUploads) {
          heard = answer;
          return;
        }
        // A careful client: the answer ends the upload (the rest of the body
        // is not wanted, and the connection is not reusable mid-body).
        req.destroy();
        done(answer);
      });
    });
    req.on('error', (e) => done({ error: e.code ?? e.message }));
    const piece = Math.ceil(body.length / chunks);
    const next = () => {
      if (settled || req.destroyed) return;
      const end = Math.min(body.length, sent + piece);
      const chunk = body.subarray(sent, end);
      sent = end;
      if (sent < body.length) {
        req.write(chunk);
        timer = setTimeout(next, uploadMs / chunks);
        return;
      }
      req.end(chunk, () => {
        if (heard !== null) done(heard);
      });
    };
    next();
  });
}

function get(url, agent, key) {
  return new Promise((resolve) => {
    const req = request(`${url}/kv/${key}`, { agent }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, checksum: res.headers['x-checksum'], body: Buffer.concat(parts) }));
      res.on('error', (e) => resolve({ error: e.code ?? e.message }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

/**
 * Runs the overload against `url`; returns the tallies. `onPhase` is
 * called with 'start' when the first uploads go out and 'end' when the
 * last client stopped starting new ones (in-flight uploads finish after).
 */
export async function overload({ url, clients = 160, bodyBytes = 1 << 20, uploadMs = 1600, chunks = 16, seconds = 15, finishUploads = false, distinct = 16, onPhase = () => {} }) {
  const bodies = Array.from({ length: distinct }, () => printable(bodyBytes));
  const digests = bodies.map(sha);
  const t = {
    requests: 0,
    statuses: {},
    missingRetryAfter: 0,
    connectionClose: 0,
    early: 0,
    errors: {},
    stored: [],
    reads: { checked: 0, corrupt: 0, statuses: {}, errors: 0 },
    readsAfter: { checked: 0, corrupt: 0, statuses: {}, errors: 0 },
  };
  const note = (map, k) => (map[k] = (map[k] ?? 0) + 1);
  const opts = { uploadMs, chunks, finishUploads, timeoutMs: uploadMs + 30_000 };
  let stopAt = Infinity;
  const runClient = async (c) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; performance.now() < stopAt; i++) {
      const which = (c + i) % distinct;
      const key = `o${c}-${i}`;
      const r = await upload(url, agent, key, bodies[which], digests[which], opts);
      t.requests++;
      if (r.error !== undefined) {
        note(t.errors, r.error);
        continue;
      }
      note(t.statuses, r.status);
      if (r.connectionClose) t.connectionClose++;
      if (r.early) t.early++;
      if (r.status === 201) t.stored.push({ key, which });
      if (r.status === 503) {
        if (r.retryAfter === undefined) t.missingRetryAfter++;
        const wait = Number(r.retryAfter ?? 1) * 1000;
        await new Promise((res) => setTimeout(res, Math.min(wait, Math.max(0, stopAt - performance.now()))));
      }
    }
    agent.destroy();
  };
  // Reads of stored values while the uploads go on: served from pages that
  // reclaim may be taking back at the same time.
  const readAgent = new Agent({ keepAlive: true, maxSockets: 4 });
  // The most recently stored keys: the ones a cache under this much
  // pressure still holds (older ones were rightly evicted: a 404).
  const readOne = async (tally) => {
    const s = t.stored[t.stored.length - 1 - Math.floor(Math.random() * Math.min(8, t.stored.length))];
    if (s === undefined) return;
    const r = await get(url, readAgent, s.key);
    if (r.error !== undefined) {
      tally.errors++;
      return;
    }
    note(tally.statuses, r.status);
    if (r.status !== 200) return;
    tally.checked++;
    if (r.checksum !== digests[s.which] || !r.body.equals(bodies[s.which])) tally.corrupt++;
  };
  const startedAt = performance.now();
  stopAt = startedAt + seconds * 1000;
  onPhase('start');
  const readers = (async () => {
    while (performance.now() < stopAt) {
      await readOne(t.reads);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  // Staggered over one upload time, as clients arriving, not one burst.
  const all = Array.from({ length: clients }, (_, c) => new Promise((r) => setTimeout(r, (c * uploadMs) / clients)).then(() => runClient(c)));
  await new Promise((r) => setTimeout(r, Math.max(0, stopAt - performance.now())));
  onPhase('end');
  await Promise.all([readers, ...all]);
  // Right after the last upload: the values are read back. A GET allocates
  // nothing and must not be refused for the pressure that was (PSI's
  // averages still show it for seconds).
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 25; i++) await readOne(t.readsAfter);
    }),
  );
  readAgent.destroy();
  return { ...t, stored: t.stored.length, storedBytes: t.stored.length * bodyBytes, seconds: (performance.now() - startedAt) / 1000 };
}
