// The device's own identity in this browser. localStorage holds a persistent id (which
// browser this is) and, per swarm, the device id and secret from WELCOME: the device's own
// credential, which proves nothing but "this browser is that device" (never an operator
// token). A RESUME signs `device_id:ts:nonce` with HMAC-SHA256 under that secret, hex, exactly
// as src/swarms/credentials.py checks it (WebCrypto: https or localhost only).
const PID = "apiary.device.persistentId";

function randomHex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function persistentId() {
  let id = localStorage.getItem(PID);
  if (!id) {
    id = randomHex(8);
    localStorage.setItem(PID, id);
  }
  return id;
}

const key = (swarm) => `apiary.device.${swarm}`;

export function load(swarm) {
  try {
    return JSON.parse(localStorage.getItem(key(swarm))) || null;
  } catch {
    return null;
  }
}

export function save(swarm, deviceId, secret) {
  localStorage.setItem(key(swarm), JSON.stringify({ device_id: deviceId, device_secret: secret }));
}

export function forget(swarm) {
  localStorage.removeItem(key(swarm));
}

export async function resumeFrame(credentials, now = Date.now()) {
  if (!crypto.subtle) throw new Error("resuming needs WebCrypto: open this page over https (or on localhost)");
  const ts = now;
  const nonce = randomHex(12);
  const encoder = new TextEncoder();
  const hmacKey = await crypto.subtle.importKey("raw", encoder.encode(credentials.device_secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", hmacKey, encoder.encode(`${credentials.device_id}:${ts}:${nonce}`));
  const signature = Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
  return JSON.stringify({ type: "RESUME", data: { device_id: credentials.device_id, ts, nonce, signature } });
}
