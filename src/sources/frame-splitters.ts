/**
 * ffmpeg's stdout cut into frames: JPEGs by their markers, raw pixels by their fixed size.
 */

/**
 * Cuts a byte stream of JPEGs (ffmpeg's image2pipe) into single JPEG files: each runs from
 * its start-of-image marker (FF D8) to its end-of-image marker (FF D9). Bytes between images (multipart
 * boundaries and headers) are skipped. Encoders escape FF inside the compressed data, so FF D9 inside a frame
 * appears only in an embedded thumbnail, which ffmpeg's MJPEG encoder does not write.
 */
const START = Buffer.from([0xff, 0xd8]);
const END = Buffer.from([0xff, 0xd9]);

export class JpegSplitter {
  #buffer: Buffer = Buffer.alloc(0);
  /** Where the search for the end marker resumes: the bytes before it were searched already. */
  #searched = 0;

  /** Adds bytes; returns the images they complete. */
  push(chunk: Buffer): Buffer[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const images: Buffer[] = [];
    for (;;) {
      const start = this.#buffer.indexOf(START);
      if (start < 0) {
        // Keep a trailing FF: it may be the first half of a start marker.
        this.#buffer = this.#buffer.subarray(this.#buffer.length - (this.#buffer.at(-1) === 0xff ? 1 : 0));
        this.#searched = 0;
        return images;
      }
      const end = this.#buffer.indexOf(END, Math.max(start + 2, this.#searched));
      if (end < 0) {
        this.#buffer = this.#buffer.subarray(start);
        this.#searched = Math.max(2, this.#buffer.length - 1);
        return images;
      }
      images.push(this.#buffer.subarray(start, end + 2));
      this.#buffer = this.#buffer.subarray(end + 2);
      this.#searched = 0;
    }
  }
}

/** Cuts a byte stream into pieces of `size` bytes (raw frames). */
export class FixedSizeSplitter {
  readonly #size: number;
  #parts: Buffer[] = [];
  #length = 0;

  constructor(size: number) {
    this.#size = size;
  }

  /** Adds bytes; returns the frames they complete, each one Buffer of its own. */
  push(chunk: Buffer): Buffer[] {
    const frames: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(this.#size - this.#length, chunk.length - at);
      this.#parts.push(chunk.subarray(at, at + take));
      this.#length += take;
      at += take;
      if (this.#length === this.#size) {
        frames.push(this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size));
        this.#parts = [];
        this.#length = 0;
      }
    }
    return frames;
  }
}
