/**
 * The reservation policies (never merged in Linux; first-class in nofail):
 * before taking the fs lock, reserve the transaction's worst case; inside,
 * allocations draw on the reservation; at commit the rest is released.
 *   reserve-watermark  Chinner: raise the watermark by the worst case,
 *                      allocate with GFP.RESERVE below it (accounting only)
 *   reserve-tokens     Morton: take the pages now, allocations in the
 *                      transaction's scope use them first
 * The reservation wait is killable (an OOM victim gives up and exits) and
 * ends when the run stops: it waits in 50 ms slices and checks between.
 */
import { GFP, type Reservation, type ReservationMode } from '../../index.js';
import { plainTx, SYSTEM_3_19, SYSTEM_3_19_TEXT } from './common.js';
import type { FsContext, FsPolicy, LabPolicy } from '../api.js';

const SLICE_MS = 50;

function reserveKillable(ctx: FsContext, pages: number, mode: ReservationMode): Reservation {
  for (;;) {
    try {
      return ctx.pool.reserve(pages, { mode, timeoutMs: SLICE_MS });
    } catch (e) {
      if ((e as { name?: string }).name !== 'TimeoutError') throw e;
    }
    if (ctx.interrupted()) ctx.refuse(`interrupted while reserving ${pages} pages`);
  }
}

function reserveFs(mode: ReservationMode) {
  return (ctx: FsContext): FsPolicy => {
    const tx = plainTx(ctx, mode === 'watermark' ? GFP.RESERVE : 0);
    let current: Reservation | null = null;
    return {
      transaction(worst, body) {
        const r = reserveKillable(ctx, worst, mode);
        current = r;
        try {
          return r.run(() => body(tx));
        } finally {
          current = null;
          r.release();
        }
      },
      idle: () => current?.remaining ?? 0,
    };
  };
}

export const reserveWatermark: LabPolicy = {
  name: 'reserve-watermark',
  summary: "Chinner's reservation: raise the watermark by the worst case, allocate with GFP.RESERVE",
  system: SYSTEM_3_19_TEXT,
  pool: SYSTEM_3_19,
  fs: reserveFs('watermark'),
};

export const reserveTokens: LabPolicy = {
  name: 'reserve-tokens',
  summary: "Morton's tokens: take the worst case's pages up front, the transaction uses them first",
  system: SYSTEM_3_19_TEXT,
  pool: SYSTEM_3_19,
  fs: reserveFs('tokens'),
};
