/**
 * The calls that move many pages, or pages between threads, in one native
 * call: allocBulk / freeBulk (the kernel's alloc_pages_bulk and a batched
 * free) and transfer / adopt.
 */
import type { Attachment } from './attachment.js';
import { AllocError, BadPageError, InvalidArgTypeError, OutOfRangeError } from '../errors.js';
import { validateInteger } from '../validators.js';
import { allocFailureText, GFP, type GfpMask, gfpToAllocFlags, validateGfp } from './gfp.js';
import { ALLOC, native, TRANSIT_TASK } from '../binding/native.js';
import { checkOrder } from './options.js';
import { checkPage, makePage, markFreed, markLive, markMoved, type Page, type PageDescriptor, pageGen, setPageTask } from './page.js';
import { handOut, touchesBytes } from './handout.js';
import { currentTaskId } from './task.js';

/**
 * All or none: the watermark is checked for all n blocks at once (LOW + n,
 * as alloc_pages_bulk), then at the caller's depth below MIN once this
 * thread's page cache is given back. It never reclaims or waits; GFP.RESERVE
 * grants nothing here (reservations serve single allocations in run()).
 */
export function allocBulk(core: Attachment, n: number, gfp: GfpMask, order: number, scratch: { out: Int32Array }): Page[] {
  if (typeof n !== 'number') throw new InvalidArgTypeError(`n must be a number; received ${typeof n}`);
  if (!Number.isInteger(n) || n < 0 || n > core.totalPages) {
    throw new OutOfRangeError(`n must be an integer from 0 to ${core.totalPages}; received ${n}`);
  }
  validateGfp(gfp);
  checkOrder(order, core.maxOrder);
  if (core.kills.pending()) core.kills.deliver();
  gfp &= ~GFP.RESERVE;
  const task = currentTaskId();
  if (scratch.out.length < 2 * n) scratch.out = new Int32Array(2 * n);
  const out = scratch.out;
  let r = native.allocBulk(core.slot, n, order, ALLOC.WMARK_LOW, task, out);
  if (r < 0) {
    core.drainOwn();
    r = native.allocBulk(core.slot, n, order, gfpToAllocFlags(gfp), task, out);
  }
  if (r < 0) throw new AllocError(`${allocFailureText(gfp, order)} (bulk of ${n})`, { order, gfp });
  const pages = new Array<Page>(n);
  for (let i = 0; i < n; i++) {
    const p = makePage(core, out[2 * i]!, order, out[2 * i + 1]!);
    if (task !== 0) setPageTask(p, task);
    pages[i] = p;
  }
  if (touchesBytes(core, gfp)) {
    try {
      for (const p of pages) handOut(core, p, gfp);
    } catch (e) {
      // Nothing is lost when the bytes cannot be reached (a view that
      // cannot be made): the blocks go back, all of them.
      freeBulk(core, pages);
      throw e;
    }
  }
  return pages;
}

export function freeBulk(core: Attachment, pages: readonly Page[]): void {
  if (!Array.isArray(pages)) throw new InvalidArgTypeError('pages must be an array of Page');
  if (core.kills.pending()) core.kills.deliver();
  const refs = new Int32Array(3 * pages.length);
  let i = 0;
  try {
    // Mark as we validate, so the same page twice in the array is a double free.
    for (; i < pages.length; i++) {
      const p = pages[i];
      checkPage(p, core);
      if (core.fill >= 0) p.bytes.fill(core.fill);
      markFreed(p);
      refs[3 * i] = p.pfn;
      refs[3 * i + 1] = p.order;
      refs[3 * i + 2] = pageGen(p);
    }
  } catch (e) {
    for (let j = 0; j < i; j++) markLive(pages[j]!);
    throw e;
  }
  try {
    native.freeBulk(core.slot, refs, pages.length);
  } catch (e) {
    const freed = (e as { freed?: number }).freed ?? 0;
    for (let j = freed; j < pages.length; j++) markLive(pages[j]!);
    if (freed > 0) core.wakeWaiters();
    throw e;
  }
  core.wakeWaiters();
}

/** Parks the page on the pool's transit task: this thread's exit or close() must not take it back. */
export function transfer(core: Attachment, page: Page): PageDescriptor {
  checkPage(page, core);
  native.setOwner(core.slot, page.pfn, page.order, pageGen(page), TRANSIT_TASK, 0);
  markMoved(page);
  return Object.freeze({ pool: core.id, pfn: page.pfn, order: page.order, gen: pageGen(page) });
}

export function adopt(core: Attachment, descriptor: PageDescriptor): Page {
  if (descriptor === null || typeof descriptor !== 'object') {
    throw new InvalidArgTypeError('descriptor must come from pool.transfer()');
  }
  const { pool, pfn, order, gen } = descriptor;
  if (pool !== core.id) throw new BadPageError('the descriptor belongs to another pool');
  const task = currentTaskId();
  native.setOwner(core.slot, pfn, order, gen, task, TRANSIT_TASK);
  const page = makePage(core, pfn, order, gen);
  if (task !== 0) setPageTask(page, task);
  return page;
}

/**
 * transfer() for many pages in one native call: every handle is checked
 * first, so a bad one leaves every page where it was; then all move to the
 * transit task under one hold of the zone lock.
 */
export function transferBulk(core: Attachment, pages: readonly Page[]): PageDescriptor[] {
  if (!Array.isArray(pages)) throw new InvalidArgTypeError('pages must be an array of Page');
  const seen = new Set<Page>();
  const refs = new Int32Array(3 * pages.length);
  for (let i = 0; i < pages.length; i++) {
    const p = pages[i];
    checkPage(p, core);
    if (seen.has(p)) throw new BadPageError(`page ${p.pfn} is in the list twice`);
    seen.add(p);
    refs[3 * i] = p.pfn;
    refs[3 * i + 1] = p.order;
    refs[3 * i + 2] = pageGen(p);
  }
  // Every entry was checked as a live handle of this thread: native refuses
  // none of them (a failure here is a bug, and throws as one).
  native.setOwnerBulk(core.slot, refs, pages.length, TRANSIT_TASK, 0);
  const out = new Array<PageDescriptor>(pages.length);
  for (let i = 0; i < pages.length; i++) {
    const p = pages[i]!;
    markMoved(p);
    out[i] = Object.freeze({ pool: core.id, pfn: p.pfn, order: p.order, gen: refs[3 * i + 2]! });
  }
  return out;
}

/**
 * adopt() for many descriptors in one native call. A bad descriptor stops
 * it: those before it, already moved to this thread, go back in transit, so
 * every descriptor stays as usable as it was, and the error is thrown.
 */
export function adoptBulk(core: Attachment, descriptors: readonly PageDescriptor[]): Page[] {
  if (!Array.isArray(descriptors)) throw new InvalidArgTypeError('descriptors must be an array from pool.transferBulk()');
  const n = descriptors.length;
  const refs = new Int32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const d = descriptors[i];
    if (d === null || typeof d !== 'object') throw new InvalidArgTypeError(`descriptors[${i}] must come from pool.transfer()`);
    if (d.pool !== core.id) throw new BadPageError(`descriptors[${i}] belongs to another pool`);
    // Into an Int32Array they go: a non-integer would silently become 0 there.
    validateInteger(d.pfn, `descriptors[${i}].pfn`, 0, 2 ** 31 - 1);
    validateInteger(d.order, `descriptors[${i}].order`, 0, 2 ** 31 - 1);
    validateInteger(d.gen, `descriptors[${i}].gen`, 0, 2 ** 31 - 1);
    refs[3 * i] = d.pfn;
    refs[3 * i + 1] = d.order;
    refs[3 * i + 2] = d.gen;
  }
  const task = currentTaskId();
  try {
    native.setOwnerBulk(core.slot, refs, n, task, TRANSIT_TASK);
  } catch (e) {
    const moved = (e as { moved?: number }).moved ?? 0;
    if (moved > 0) native.setOwnerBulk(core.slot, refs, moved, TRANSIT_TASK, 0);
    throw e;
  }
  const out = new Array<Page>(n);
  for (let i = 0; i < n; i++) {
    const p = makePage(core, refs[3 * i]!, refs[3 * i + 1]!, refs[3 * i + 2]!);
    if (task !== 0) setPageTask(p, task);
    out[i] = p;
  }
  return out;
}
