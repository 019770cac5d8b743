/**
 * Progress of a long run, for a person watching: at most one line per interval (and always the last),
 * each with how many are done of how many, the rate so far and the time left at that rate.
 */
export interface ProgressOptions {
  /** Where lines go (stderr, so that stdout stays the command's output). */
  write(line: string): void;
  /** Seconds between lines at most once per; the last line is always written. */
  intervalMs?: number;
  now?: () => number;
}

export function progressReporter(verb: string, options: ProgressOptions): (done: number, total: number) => void {
  const now = options.now ?? Date.now;
  const interval = options.intervalMs ?? 1000;
  const started = now();
  let last = -Infinity;
  return (done, total) => {
    const at = now();
    const finished = done >= total;
    if (!finished && at - last < interval) return;
    last = at;
    const seconds = Math.max((at - started) / 1000, 0.001);
    const rate = done / seconds;
    const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
    const rateText = `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)}/s`;
    const tail = finished ? `in ${seconds.toFixed(1)} s` : `about ${Math.ceil((total - done) / Math.max(rate, 0.001))} s left`;
    options.write(`${verb} ${done} of ${total} (${percent}%), ${rateText}, ${tail}`);
  };
}
