/**
 * Arrays of one size, handed out again once the work that used them is done. Under the start script's malloc
 * setting every array over 128 KiB is fresh pages from the system (README, "Memory settings"), each page a fault
 * when first written; an image model's input tensor (768 KiB for the bundled model) is one such array a request.
 */
export class ReusedArrays<T> {
  readonly #free: T[] = [];
  readonly #make: () => T;
  readonly #keep: number;

  /** @param keep how many idle arrays to hold (about the requests a version runs at once) */
  constructor(make: () => T, keep: number) {
    this.#make = make;
    this.#keep = keep;
  }

  take(): T {
    return this.#free.pop() ?? this.#make();
  }

  /** Only for an array nothing reads or writes any more. */
  give(array: T): void {
    if (this.#free.length < this.#keep) this.#free.push(array);
  }
}
