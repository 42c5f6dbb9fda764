// What each worker of cases/workers.mjs runs: the shared-state patterns, for
// each implementation. Every loop is `run(n) -> pages`: it does about n
// pages' worth of work (returning early once `stopped()`), and returns how
// many pages it completed, so the harness can add them up across workers.
//
//   working-set  Each worker holds a working set that swings between BASE
//                and BASE + SWING pages, as a service's load does: it
//                allocates (and writes) SWING pages, then frees SWING pages
//                picked at random from all it holds, and again. SWING is
//                twice the largest a thread's page cache grows to (its high
//                caps at PCP_HIGH_MAX = 8192 pages), so at least half of the
//                pages go through the shared zone (refills and drains)
//                every wave; the random frees give random lifetimes. (A
//                working set replaced one page at a time, free one then
//                alloc one, never leaves the cache, however large it is:
//                the cache hands the freed page straight back.)
//   handoff      Pages move between threads, as from a thread that reads
//                requests to one that handles them. The producer allocates
//                a batch of BATCH pages, writes one byte in each, and hands
//                them over through a SharedArrayBuffer ring (lib/ring.mjs)
//                of (pfn, order, gen), or the implementation's equivalent;
//                the consumer adopts them, reads the byte and frees them.
//                Roles: `ring`, worker i hands to worker i+1 (mod N), each
//                both produces and consumes (at N = 1 the worker hands pages
//                to itself: the same work, on one thread); `split`, workers
//                0..N/2-1 produce only, each for its own consumer. A page
//                counts when its consumer has freed it.
//   compute      No allocation at all, nothing shared: the scaling ceiling
//                of the machine itself.
import { receiveMessageOnPort } from 'node:worker_threads';
import { MemPool } from '@thi.ng/malloc';
import { GFP, Pool } from '../../dist/index.js';
import { Mutex } from './mutex.mjs';
import { loadNaive, NAIVE_MISSING } from './naive.mjs';
import { PAGE } from './peers.mjs';
import { Ring } from './ring.mjs';

export const WORKING_SET = { BASE: 4096, SWING: 16384 };
export const BATCH = 64;

/** The implementation's alloc/view/free in this worker (lib/peers.mjs's interface), over the shared state in `data`. */
export function workerPeer(impl, data) {
  switch (impl) {
    case 'nofail': {
      const pool = Pool.attach(data.handle);
      return { pool, alloc: () => pool.alloc(GFP.KERNEL, 0), view: (p) => p.bytes, free: (p) => pool.free(p) };
    }
    case 'naive mutex pool': {
      const naive = loadNaive();
      if (naive === null) throw new Error(NAIVE_MISSING);
      const id = data.naiveId;
      const region = naive.region(id);
      return {
        naive,
        region,
        alloc: () => {
          const index = naive.alloc(id);
          if (index < 0) throw new Error('naive pool: out of pages (the benchmark sized it too small)');
          return index;
        },
        view: (index) => new Uint8Array(region, index * PAGE, PAGE),
        free: (index) => naive.free(id, index),
      };
    }
    case '@thi.ng/malloc': {
      // The main thread initialized the pool in the buffer; a worker only
      // wraps it. Every call takes the lock, as a thread-safe wrapper would.
      const mp = new MemPool({ buf: data.thingBuf, skipInitialization: true });
      const mutex = new Mutex(data.thingLock);
      return {
        u8: new Uint8Array(data.thingBuf),
        alloc: () => {
          mutex.lock();
          const v = mp.mallocAs('u8', PAGE);
          mutex.unlock();
          if (v === undefined) throw new Error('@thi.ng/malloc: out of memory (the benchmark sized it too small)');
          return v;
        },
        view: (v) => v,
        free: (v) => {
          mutex.lock();
          const ok = mp.free(v);
          mutex.unlock();
          if (!ok) throw new Error('@thi.ng/malloc: free of a block it does not know');
        },
      };
    }
    case 'Buffer.allocUnsafe':
      return { alloc: () => Buffer.allocUnsafe(PAGE), view: (b) => b, free: () => {} };
    default:
      throw new Error(`no worker implementation ${impl}`);
  }
}

export function workingSetLoop({ alloc, view, free }, stopped = () => false) {
  const { BASE, SWING } = WORKING_SET;
  const live = new Array(BASE + SWING).fill(null);
  let count = 0;
  for (; count < BASE; count++) view((live[count] = alloc()))[0] = 0;
  let up = true;
  let x = 0x2545f491;
  // A page is one alloc step and one free step, but a timed window holds
  // whole waves only when a wave is short: with @thi.ng/malloc a free
  // costs a thousand allocs and one wave takes seconds, with Buffer the
  // other way round. So each phase is timed (once per call and at each
  // turn, a few ns per 256 steps), and a step counts as its phase's share
  // of a page's cost: the window's pages are then right whatever part of
  // a wave it saw. (Both phases' times include any time the thread was
  // descheduled, alike, so the shares hold on an oversubscribed machine.)
  const t = [0, 0];  // ms in the up and down phases, since the start
  const steps = [0, 0];
  const run = (n) => {
    const done = [0, 0];
    let t0 = performance.now();
    for (let i = 0; i < n; i++) {
      // A slow peer's step can take milliseconds: look at STOP now and then.
      if ((i & 15) === 15 && stopped()) break;
      if (up) {
        const h = alloc();
        view(h)[0] = i;
        live[count++] = h;
        done[0]++;
        if (count === BASE + SWING) {
          const t1 = performance.now();
          t[0] += t1 - t0;
          t0 = t1;
          up = false;
        }
      } else {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const r = (x >>> 0) % count;
        free(live[r]);
        live[r] = live[--count];
        live[count] = null;
        done[1]++;
        if (count === BASE) {
          const t1 = performance.now();
          t[1] += t1 - t0;
          t0 = t1;
          up = true;
        }
      }
    }
    t[up ? 0 : 1] += performance.now() - t0;
    steps[0] += done[0];
    steps[1] += done[1];
    const cost = [steps[0] ? t[0] / steps[0] : 0, steps[1] ? t[1] / steps[1] : 0];
    const page = cost[0] + cost[1];
    if (page === 0 || cost[0] === 0 || cost[1] === 0) return (done[0] + done[1]) / 2;  // warm-up only: see ready
    return (done[0] * cost[0] + done[1] * cost[1]) / page;
  };
  // The weights need both phases timed: the warm-up round runs on until
  // they are (a slow peer on many workers may need longer than its time).
  run.ready = () => steps[0] > 0 && steps[1] > 0;
  return run;
}

let state = 0x2545f491;
export function computeLoop(n) {
  let x = state;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 32; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
  }
  state = x;
  return n;
}

/**
 * Both ends of a handoff for `impl`: produce(ring) hands BATCH fresh pages
 * into the ring (the caller checked there is room), consume(ring) takes up
 * to BATCH pages out, reads and frees them, and returns how many.
 * `ports`: for Buffer.allocUnsafe, the MessagePorts the buffers travel
 * through (the ring then only counts them, for flow control).
 */
export function handoffEnds(impl, data, ports) {
  const peer = workerPeer(impl, data);
  const { alloc, view, free } = peer;
  switch (impl) {
    case 'nofail': {
      const { pool } = peer;
      const id = data.handle.id;
      const held = new Array(BATCH).fill(null);
      return {
        produce(ring) {
          for (let k = 0; k < BATCH; k++) view((held[k] = alloc()))[0] = k;
          const d = pool.transferBulk(held);
          for (let k = 0; k < BATCH; k++) ring.put(k, d[k].pfn, d[k].order, d[k].gen);
          ring.commit(BATCH);
        },
        consume(ring) {
          const n = Math.min(ring.available(), BATCH);
          if (n === 0) return 0;
          const i32 = ring.i32;
          const descriptors = new Array(n);
          for (let k = 0; k < n; k++) {
            const at = ring.at(k);
            descriptors[k] = { pool: id, pfn: i32[at], order: i32[at + 1], gen: i32[at + 2] };
          }
          ring.release(n);
          const pages = pool.adoptBulk(descriptors);
          let sum = 0;
          for (let k = 0; k < n; k++) {
            sum += pages[k].bytes[0];
            pool.free(pages[k]);
          }
          if (sum < 0) throw new Error('unreachable');  // keeps the reads
          return n;
        },
      };
    }
    case 'naive mutex pool':
    case '@thi.ng/malloc': {
      // An index (naive) or a byte address (thi.ng) is all a thread needs.
      const naive = impl === 'naive mutex pool';
      const u8 = naive ? null : peer.u8;
      return {
        produce(ring) {
          for (let k = 0; k < BATCH; k++) {
            const h = alloc();
            view(h)[0] = k;
            ring.put(k, naive ? h : h.byteOffset, 0, 0);
          }
          ring.commit(BATCH);
        },
        consume(ring) {
          const n = Math.min(ring.available(), BATCH);
          if (n === 0) return 0;
          let sum = 0;
          for (let k = 0; k < n; k++) {
            const a = ring.i32[ring.at(k)];
            if (naive) {
              sum += view(a)[0];
              free(a);
            } else {
              sum += u8[a];
              free(a);
            }
          }
          ring.release(n);
          if (sum < 0) throw new Error('unreachable');
          return n;
        },
      };
    }
    case 'Buffer.allocUnsafe': {
      // What a user does without a shared pool: postMessage with the
      // buffers' ArrayBuffers in the transfer list (moved, not copied).
      return {
        produce(ring) {
          const list = new Array(BATCH);
          for (let k = 0; k < BATCH; k++) {
            const b = alloc();
            b[0] = k;
            list[k] = b.buffer;
          }
          ports.out.postMessage(list, list);
          ring.commit(BATCH);
        },
        consume(ring) {
          const m = receiveMessageOnPort(ports.in);
          if (m === undefined) return 0;
          let sum = 0;
          for (const ab of m.message) sum += new Uint8Array(ab)[0];
          ring.release(m.message.length);
          if (sum < 0) throw new Error('unreachable');
          return m.message.length;
        },
      };
    }
    default:
      throw new Error(`no handoff for ${impl}`);
  }
}

/** The loop of one handoff worker: `role` ring | producer | consumer. */
export function handoffLoop(ends, role, out, inp, stopped) {
  if (role === 'ring') {
    return (n) => {
      let done = 0;
      while (done < n) {
        let progress = false;
        if (out.room() >= BATCH) {
          ends.produce(out);
          progress = true;
        }
        const got = ends.consume(inp);
        done += got;
        if (got === 0 && !progress) {
          if (stopped()) break;
          inp.waitData();
        }
      }
      return done;
    };
  }
  if (role === 'producer') {
    return (n) => {
      for (let made = 0; made < n; ) {
        if (out.room() < BATCH) {
          if (stopped()) break;
          out.waitRoom(BATCH);
          continue;
        }
        ends.produce(out);
        made += BATCH;
      }
      return 0;  // pages count where they are freed
    };
  }
  return (n) => {
    let done = 0;
    while (done < n) {
      const got = ends.consume(inp);
      done += got;
      if (got === 0) {
        if (stopped()) break;
        inp.waitData();
      }
    }
    return done;
  };
}

export { Ring };
