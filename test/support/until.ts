/** Waits until `check` holds, polling; fails with `what` and, when given, the state `describe` tells. */
export async function until(check: () => boolean | Promise<boolean>, what: string, options: { timeoutMs?: number; everyMs?: number; describe?: () => unknown } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${options.describe ? `; state: ${JSON.stringify(await options.describe())}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}
