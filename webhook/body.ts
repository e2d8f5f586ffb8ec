// Request bodies under a budget. With failurePolicy Fail an OOM-killed webhook blocks every opted-in pod in the
// cluster, so what requests may hold is bounded: one body by maxBodyBytes (what the API server can send), the
// admissions being read or answered by MAX_IN_FLIGHT, and the bytes of all bodies being read by a budget of
// BUFFERED_BODIES × maxBodyBytes. A request past a bound is refused at once (503, the connection closed)
// instead of waiting, so a flood costs the webhook a little CPU and no memory.
import type { IncomingMessage } from 'node:http';

/** Admissions read or answered at once; the API server sends a handful at a time, each answered in ~1 ms. */
export const MAX_IN_FLIGHT = 16;
/** Bodies being read may hold this many times maxBodyBytes together. */
export const BUFFERED_BODIES = 4;

export type Body =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly status: number; readonly error: string };

export class BodyBudget {
  readonly #maxBody: number;
  readonly #maxBuffered: number;
  #inFlight = 0;
  #buffered = 0;

  constructor(maxBodyBytes: number) {
    this.#maxBody = maxBodyBytes;
    this.#maxBuffered = BUFFERED_BODIES * maxBodyBytes;
  }

  /** Takes an in-flight slot, or says why not; `release` must follow a success once the answer is sent. */
  enter(): string | undefined {
    if (this.#inFlight >= MAX_IN_FLIGHT) return `the webhook is already handling ${MAX_IN_FLIGHT} admissions; retry`;
    this.#inFlight += 1;
    return undefined;
  }

  leave(): void {
    this.#inFlight -= 1;
  }

  /** Reads the body of a request that holds a slot, reserving its bytes from the budget while it is read. */
  read(req: IncomingMessage): Promise<Body> {
    const max = this.#maxBody;
    const tooLarge: Body = { ok: false, status: 413, error: `the body is larger than ${max} bytes (maxBodyBytes)` };
    const busy: Body = {
      ok: false,
      status: 503,
      error: `the webhook is already reading ${Math.round(this.#maxBuffered / 1024)} KiB of request bodies; retry`,
    };
    const declared = Number(req.headers['content-length'] ?? 0) || 0;
    if (declared > max) return Promise.resolve(tooLarge);
    // A declared length is reserved whole, so a slow upload holds its share from its first byte.
    let reserved = 0;
    const reserve = (bytes: number): boolean => {
      if (bytes <= reserved) return true;
      if (this.#buffered + bytes - reserved > this.#maxBuffered) return false;
      this.#buffered += bytes - reserved;
      reserved = bytes;
      return true;
    };
    if (!reserve(declared)) return Promise.resolve(busy);
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (body: Body): void => {
        if (done) return;
        done = true;
        req.off('data', onData);
        this.#buffered -= reserved;
        reserved = 0;
        resolve(body);
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size > max) finish(tooLarge);
        else if (!reserve(size)) finish(busy);
        else chunks.push(chunk);
      };
      req.on('data', onData);
      req.once('end', () => {
        // A keep-alive TLS request of a usual review arrives in one chunk: decode it without a copy.
        const [first] = chunks;
        finish({
          ok: true,
          text:
            chunks.length === 1 && first !== undefined
              ? first.toString('utf8')
              : Buffer.concat(chunks).toString('utf8'),
        });
      });
      req.once('close', () => {
        finish({ ok: false, status: 400, error: 'the request body could not be read' });
      });
      req.once('error', () => {
        finish({ ok: false, status: 400, error: 'the request body could not be read' });
      });
    });
  }
}
