// Polling that costs what the budget allows: one refresh every `ms` while the page is visible,
// none while it is hidden, and one at once when it comes back. Each refresh is an ETag'd GET,
// so an unchanged answer is a 304.
export const POLL_MS = 60_000;

export function every(ms, refresh) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    clearTimeout(timer);
    if (stopped || document.hidden) return;
    try {
      await refresh();
    } finally {
      if (!stopped && !document.hidden) timer = setTimeout(run, ms);
    }
  };
  const onVisibility = () => {
    if (!document.hidden) run();
    else clearTimeout(timer);
  };
  document.addEventListener("visibilitychange", onVisibility);
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisibility);
  };
}
