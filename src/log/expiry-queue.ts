interface Entry<T> {
  at: number;
  item: T;
}

/** A min-heap of items by expiry time: the item expiring first is read in O(1), removed in O(log n). */
export class ExpiryQueue<T> {
  #heap: Entry<T>[] = [];

  get size(): number {
    return this.#heap.length;
  }

  /** When the first item expires; Infinity when the queue is empty. */
  firstAt(): number {
    return this.#heap[0]?.at ?? Number.POSITIVE_INFINITY;
  }

  push(at: number, item: T): void {
    const heap = this.#heap;
    const entry = { at, item };
    let i = heap.length;
    heap.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = heap[parent] as Entry<T>;
      if (above.at <= at) break;
      heap[i] = above;
      i = parent;
    }
    heap[i] = entry;
  }

  /** Removes and returns the entry expiring first. */
  shift(): Entry<T> | undefined {
    const heap = this.#heap;
    const first = heap[0];
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return first;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && (heap[right] as Entry<T>).at < (heap[left] as Entry<T>).at ? right : left;
      const below = heap[child] as Entry<T>;
      if (below.at >= last.at) break;
      heap[i] = below;
      i = child;
    }
    heap[i] = last;
    return first;
  }

  /** Replaces the whole content: sheds entries that no longer count. */
  rebuild(entries: Iterable<Entry<T>>): void {
    this.#heap = [];
    for (const { at, item } of entries) this.push(at, item);
  }
}
