/**
 * Long synchronous work (listing, staging, renaming thousands of files) done in slices, so
 * that the agent serves its other clients between them: one client's big review never holds
 * the event loop for more than about a slice.
 */

/** How long one slice of work runs before the event loop gets a turn. */
export const SLICE_MS = 10;

/** One turn of the event loop: what other clients sent is read and answered. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Call `step()` between units of work: it gives the event loop a turn once a slice has passed. */
export class Pacer {
  private sliceStart = performance.now();

  constructor(private readonly sliceMs = SLICE_MS) {}

  async step(): Promise<void> {
    if (performance.now() - this.sliceStart < this.sliceMs) return;
    await nextTurn();
    this.sliceStart = performance.now();
  }
}
