/**
 * The earliest occurrence of any stop string in a decoded completion; on a tie
 * at the same index the longer stop string wins (it covers the shorter one).
 * Returns null when none occurs.
 */
export function findStopString(text: string, stops: readonly string[]): { index: number; stop: string } | null {
  let best: { index: number; stop: string } | null = null;
  for (const stop of stops) {
    if (stop.length === 0) continue;
    const index = text.indexOf(stop);
    if (index < 0) continue;
    if (!best || index < best.index || (index === best.index && stop.length > best.stop.length)) best = { index, stop };
  }
  return best;
}
