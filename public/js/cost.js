// Cloudflare's list prices (Workers Paid, 2026) for what the meter counts, beyond the monthly
// included usage: a rough figure for "what would this have cost", not a bill.
export const PRICES = {
  worker_requests: 0.3 / 1e6,
  do_requests: 0.15 / 1e6,
  do_rows_read: 0.001 / 1e6,
  do_rows_written: 1.0 / 1e6,
  d1_rows_read: 0.001 / 1e6,
  d1_rows_written: 1.0 / 1e6,
  cpu_ms: 0.02 / 1e6,
};

export function estimate(billable) {
  return Object.entries(PRICES).reduce((sum, [key, price]) => sum + (billable[key] || 0) * price, 0);
}
