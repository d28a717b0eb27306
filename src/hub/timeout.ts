/** An SDK call that did not finish in time: on a link that was working, a sign the connection is gone. */
export class OperationTimeout extends Error {
  override readonly name = 'OperationTimeout';
}

/** The SDK can wait forever (a twin GET after a lost session never answers): every call to it has a limit. */
export function withTimeout<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OperationTimeout(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}
