// The chunks' built-in handlers, off the page's thread. A message is {id, payload} (or
// {id, benchmark: true}); the answer is {id, result} or {id, error}, with durationMs.
const HANDLERS = {
  async echo(payload) {
    if (typeof payload.ms === "number" && payload.ms > 0) await new Promise((r) => setTimeout(r, Math.min(payload.ms, 600_000)));
    return { echo: payload };
  },
  primes({ below = 10_000 }) {
    const n = Math.max(2, Math.min(Number(below) || 0, 50_000_000));
    const sieve = new Uint8Array(n);
    let count = 0;
    for (let i = 2; i < n; i += 1) {
      if (sieve[i]) continue;
      count += 1;
      for (let j = i * i; j < n; j += i) sieve[j] = 1;
    }
    return { below: n, primes: count };
  },
  sum({ values = [] }) {
    return { sum: values.reduce((a, b) => a + Number(b || 0), 0) };
  },
};

function benchmark() {
  const started = performance.now();
  let rounds = 0;
  while (performance.now() - started < 150) {
    HANDLERS.primes({ below: 20_000 });
    rounds += 1;
  }
  return rounds / ((performance.now() - started) / 1000); // sieve rounds per second
}

self.onmessage = async ({ data }) => {
  const started = performance.now();
  try {
    if (data.benchmark) {
      self.postMessage({ id: data.id, result: benchmark() });
      return;
    }
    const payload = data.payload && typeof data.payload === "object" ? data.payload : { value: data.payload };
    const handler = HANDLERS[payload.op || "echo"];
    if (!handler) throw new Error(`no built-in handler ${JSON.stringify(payload.op)}`);
    const result = await handler(payload);
    self.postMessage({ id: data.id, result, durationMs: Math.round(performance.now() - started) });
  } catch (err) {
    self.postMessage({ id: data.id, error: String(err && err.message ? err.message : err), durationMs: Math.round(performance.now() - started) });
  }
};
