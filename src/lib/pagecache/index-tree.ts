/**
 * The page cache's index (mapping->i_pages) and LRU lists: which blocks of
 * the file are resident in which pool pages, which are dirty or pinned, and
 * which were evicted recently. Bookkeeping only — no I/O, no allocation;
 * pagecache.ts allocates and frees the pages and decides what to reclaim.
 *
 * Block b belongs to extent ⌊b / 1024⌋. Every extent the cache knows has an
 * index node whose 1024 Int32 slots are one pool page, so the metadata
 * costs pool memory as the data does. A slot holds
 *   0          nothing known
 *   pfn + 1    resident in page pfn
 *   < 0        a shadow entry (mm/workingset.c): evicted at eviction-clock
 *              value −1 − v; a miss that finds one counts as a refault
 * Eviction leaves shadows behind, so nodes outlive their pages, as in the
 * kernel; only the index shrinker (pagecache.ts) frees a node that still
 * holds something.
 *
 * Resident blocks are on one of two LRU lists (head = oldest), clean or
 * dirty, except while pinned: a pinned block is off both lists (isolated,
 * as isolate_lru_page()) and its node counts it as busy, so no shrinker
 * can reach it.
 *
 * Invariants (check()):
 *   |blocks| == |clean| + |dirty| + pinned;  dirtyBlocks == Σ node.dirty
 *   per node: resident == slots > 0 == its blocks,  shadows == slots < 0,
 *             dirty == its dirty blocks,  busy == its pinned blocks
 *             (+ fills in progress, which check() must not run during)
 */
import type { Page } from '../../mm/index.js';

export const NODE_SHIFT = 10;
/** Slots per index node: 1024 Int32 words fill one page. */
export const NODE_SLOTS = 1 << NODE_SHIFT;
const SLOT_MASK = NODE_SLOTS - 1;
const CLOCK_MASK = 0x3fffffff;

export class IndexNode {
  readonly id: number;
  readonly page: Page;
  readonly slots: Int32Array;
  resident = 0;
  shadows = 0;
  dirty = 0;
  /** Pinned blocks plus fills in progress: the index shrinker leaves the node alone. */
  busy = 0;
  /** Touched since the index shrinker last looked (its second chance). */
  referenced = true;

  constructor(id: number, page: Page) {
    const b = page.bytes;
    this.id = id;
    this.page = page;
    this.slots = new Int32Array(b.buffer, b.byteOffset, NODE_SLOTS);
    this.slots.fill(0);
  }

  /** Neither data, nor shadows, nor a fill or pin: nothing worth a page. */
  get empty(): boolean {
    return this.resident === 0 && this.shadows === 0 && this.busy === 0;
  }

  /** Could the index shrinker free it (with its pages)? */
  get idle(): boolean {
    return this.busy === 0 && this.dirty === 0;
  }
}

export class CachedBlock {
  readonly block: number;
  readonly page: Page;
  readonly bytes: Uint8Array;
  readonly node: IndexNode;
  dirty = false;
  pins = 0;
  /** The LRU list it is on; null while pinned. */
  list: Lru | null = null;
  prev: CachedBlock | null = null;
  next: CachedBlock | null = null;

  constructor(block: number, page: Page, node: IndexNode) {
    this.block = block;
    this.page = page;
    this.bytes = page.bytes;
    this.node = node;
  }
}

/** An intrusive LRU list: head is the oldest. */
export class Lru {
  head: CachedBlock | null = null;
  tail: CachedBlock | null = null;
  length = 0;

  push(e: CachedBlock): void {
    e.list = this;
    e.prev = this.tail;
    e.next = null;
    if (this.tail !== null) this.tail.next = e;
    else this.head = e;
    this.tail = e;
    this.length++;
  }

  remove(e: CachedBlock): void {
    if (e.prev !== null) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = e.list = null;
    this.length--;
  }
}

export class PageIndex {
  readonly blocks = new Map<number, CachedBlock>();
  /** Index nodes by extent; iteration order is the index shrinker's LRU order. */
  readonly nodes = new Map<number, IndexNode>();
  readonly clean = new Lru();
  readonly dirty = new Lru();
  pinned = 0;
  dirtyBlocks = 0;
  refaults = 0;
  #clock = 0;

  /** A hit: to the tail of its list, and its extent is referenced. */
  touch(e: CachedBlock): void {
    e.node.referenced = true;
    const list = e.list;
    if (list !== null && list.tail !== e) {
      list.remove(e);
      list.push(e);
    }
  }

  nodeOf(block: number): IndexNode | undefined {
    return this.nodes.get(block >>> NODE_SHIFT);
  }

  addNode(block: number, page: Page): IndexNode {
    const node = new IndexNode(block >>> NODE_SHIFT, page);
    this.nodes.set(node.id, node);
    return node;
  }

  /** Removes a node that holds nothing; returns its page for the caller to free, else null. */
  removeIfEmpty(node: IndexNode): Page | null {
    if (!node.empty || this.nodes.get(node.id) !== node) return null;
    this.nodes.delete(node.id);
    return node.page;
  }

  /** Enters a filled block, clean, at the LRU tail; a shadow in its slot counts as a refault. */
  insert(block: number, page: Page, node: IndexNode): CachedBlock {
    const slot = block & SLOT_MASK;
    if (node.slots[slot]! < 0) {
      node.shadows--;
      this.refaults++;
    }
    node.slots[slot] = page.pfn + 1;
    node.resident++;
    node.referenced = true;
    const e = new CachedBlock(block, page, node);
    this.blocks.set(block, e);
    this.clean.push(e);
    return e;
  }

  markDirty(e: CachedBlock): void {
    if (e.dirty) return;
    e.dirty = true;
    e.node.dirty++;
    this.dirtyBlocks++;
    if (e.list !== null) {
      e.list.remove(e);
      this.dirty.push(e);
    }
  }

  markClean(e: CachedBlock): void {
    if (!e.dirty) return;
    e.dirty = false;
    e.node.dirty--;
    this.dirtyBlocks--;
    if (e.list !== null) {
      e.list.remove(e);
      this.clean.push(e);
    }
  }

  pin(e: CachedBlock): void {
    if (e.pins++ > 0) return;
    e.list?.remove(e);
    e.node.busy++;
    this.pinned++;
  }

  unpin(e: CachedBlock): void {
    if (--e.pins > 0) return;
    (e.dirty ? this.dirty : this.clean).push(e);
    e.node.busy--;
    this.pinned--;
  }

  /** Removes an unpinned clean block, leaving a shadow entry; returns its page for the caller to free. */
  evict(e: CachedBlock): Page {
    e.list!.remove(e);
    this.blocks.delete(e.block);
    const node = e.node;
    node.slots[e.block & SLOT_MASK] = -1 - this.#clock;
    this.#clock = (this.#clock + 1) & CLOCK_MASK;
    node.resident--;
    node.shadows++;
    return e.page;
  }

  /** Pages the index shrinker could free: every idle extent, its node and its (clean) data. */
  idlePages(): number {
    let n = 0;
    for (const node of this.nodes.values()) if (node.idle) n += 1 + node.resident;
    return n;
  }

  /** Removes an idle extent whole; returns its data pages, then its node's page, for the caller to free. */
  removeExtent(node: IndexNode): Page[] {
    const pages: Page[] = [];
    const base = node.id * NODE_SLOTS;
    for (let i = 0; i < NODE_SLOTS && node.resident > 0; i++) {
      if (node.slots[i]! <= 0) continue;
      const e = this.blocks.get(base + i)!;
      e.list!.remove(e);
      this.blocks.delete(e.block);
      node.resident--;
      pages.push(e.page);
    }
    this.nodes.delete(node.id);
    pages.push(node.page);
    return pages;
  }

  /** Moves a node to the tail of the index's LRU order. */
  rotate(node: IndexNode): void {
    this.nodes.delete(node.id);
    this.nodes.set(node.id, node);
  }

  /** Forgets everything; returns every page (data and nodes) for the caller to free. */
  clear(): Page[] {
    const pages = [...this.blocks.values()].map((e) => e.page);
    for (const n of this.nodes.values()) pages.push(n.page);
    this.blocks.clear();
    this.nodes.clear();
    for (const l of [this.clean, this.dirty]) {
      l.head = l.tail = null;
      l.length = 0;
    }
    this.pinned = this.dirtyBlocks = 0;
    return pages;
  }

  /** The first broken invariant (header comment), or null. O(cached + 1024 × nodes). */
  check(): string | null {
    let pinned = 0;
    let dirty = 0;
    const perNode = new Map<IndexNode, { resident: number; dirty: number; pinned: number }>();
    for (const [block, e] of this.blocks) {
      const node = e.node;
      if (e.block !== block) return `block ${block} indexed as ${e.block}`;
      if (this.nodeOf(block) !== node) return `block ${block} is not under its index node`;
      if (node.slots[block & SLOT_MASK] !== e.page.pfn + 1) return `the slot of block ${block} does not hold its page`;
      if (e.pins > 0 ? e.list !== null : e.list !== (e.dirty ? this.dirty : this.clean)) return `block ${block} is on the wrong list`;
      const c = perNode.get(node) ?? { resident: 0, dirty: 0, pinned: 0 };
      perNode.set(node, c);
      c.resident++;
      if (e.dirty) c.dirty++, dirty++;
      if (e.pins > 0) c.pinned++, pinned++;
    }
    if (pinned !== this.pinned) return `pinned ${this.pinned}, counted ${pinned}`;
    if (dirty !== this.dirtyBlocks) return `dirty ${this.dirtyBlocks}, counted ${dirty}`;
    for (const [lru, name] of [[this.clean, 'clean'], [this.dirty, 'dirty']] as const) {
      let n = 0;
      for (let e = lru.head; e !== null; e = e.next, n++) {
        if (e.list !== lru || this.blocks.get(e.block) !== e) return `stale block ${e.block} on the ${name} list`;
      }
      if (n !== lru.length) return `${name} list length ${lru.length}, counted ${n}`;
    }
    if (this.clean.length + this.dirty.length + pinned !== this.blocks.size) return 'lists and pins do not add up to the cached blocks';
    for (const [id, node] of this.nodes) {
      let resident = 0;
      let shadows = 0;
      for (const v of node.slots) {
        if (v > 0) resident++;
        else if (v < 0) shadows++;
      }
      const c = perNode.get(node) ?? { resident: 0, dirty: 0, pinned: 0 };
      if (node.empty) return `node ${id} holds nothing but was kept`;
      if (node.id !== id || node.resident !== resident || resident !== c.resident) {
        return `node ${id}: resident ${node.resident}, slots ${resident}, blocks ${c.resident}`;
      }
      if (node.shadows !== shadows) return `node ${id}: shadows ${node.shadows}, slots ${shadows}`;
      if (node.dirty !== c.dirty) return `node ${id}: dirty ${node.dirty}, blocks ${c.dirty}`;
      if (node.busy !== c.pinned) return `node ${id}: busy ${node.busy}, pinned blocks ${c.pinned}`;
    }
    return null;
  }
}
