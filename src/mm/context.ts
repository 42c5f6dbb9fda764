/**
 * Whether any allocation context — a GFP scope, a logical task's run(), a
 * reservation's run() — has ever been entered in this thread. Until one
 * has, the allocation fast path skips looking them up (each is an
 * AsyncLocalStorage read).
 */
export let contextsUsed = false;

export function markContextsUsed(): void {
  contextsUsed = true;
}
