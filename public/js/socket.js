// A reconnecting WebSocket, after PartySocket: exponential backoff with full jitter, frames
// buffered while disconnected (unless `buffer: false`), a `ping` heartbeat (answered by the
// swarm's hibernation auto-response, so it wakes nothing), a fresh URL per attempt (`url` is
// a function), and an optional `hello()` whose frame goes first on every connection (a
// device's JOIN or RESUME). `stop()` from a handler ends the reconnecting for good.
export class ReconnectingSocket {
  constructor(url, { minDelayMs = 500, maxDelayMs = 15_000, heartbeatMs = 25_000, hello = null, buffer = true } = {}) {
    this.url = url;
    this.hello = hello;
    this.buffering = buffer;
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.heartbeatMs = heartbeatMs;
    this.failures = 0;
    this.buffer = [];
    this.closed = false;
    this.handlers = { open: [], message: [], close: [] };
    this.connect();
  }

  on(kind, handler) {
    this.handlers[kind].push(handler);
    return this;
  }

  emit(kind, value) {
    for (const handler of this.handlers[kind]) handler(value);
  }

  connect() {
    if (this.closed) return;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener("open", async () => {
      if (this.hello) ws.send(await this.hello());
      if (ws.readyState !== WebSocket.OPEN) return;
      for (const frame of this.buffer.splice(0)) ws.send(frame);
      this.beat = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send("ping"), this.heartbeatMs);
      this.emit("open", ws);
    });
    ws.addEventListener("message", (event) => {
      if (event.data === "pong") return;
      this.failures = 0; // it answered: the next drop starts the backoff afresh
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.emit("message", message);
    });
    ws.addEventListener("close", (event) => {
      clearInterval(this.beat);
      if (this.ws !== ws) return;
      this.emit("close", event);
      if (this.closed) return;
      if (event.wasClean && event.code === 1000) this.failures = 0;
      this.failures += 1;
      const cap = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** this.failures);
      this.retryInMs = Math.round(Math.random() * cap); // full jitter
      this.timer = setTimeout(() => this.connect(), this.retryInMs);
    });
  }

  send(kind, data) {
    const frame = JSON.stringify({ type: kind, data });
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
    else if (this.buffering) this.buffer.push(frame);
  }

  get open() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.beat);
    if (this.ws) this.ws.close(1000, "closed by the page");
  }
}
