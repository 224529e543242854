// Who the dashboard is signed in as. The JWT is posted once to POST /api/auth/session and
// forgotten: from then on the HttpOnly cookie (which no script can read) authenticates, and
// the CSRF token from GET /api/auth/session rides on every state-changing request.
import { api, setCsrf } from "./api.js";

let current = null;

export async function whoami({ fresh = false } = {}) {
  if (current && !fresh) return current;
  const answer = await api("/api/auth/session");
  current = answer.signed_in ? answer : null;
  setCsrf(current ? current.csrf_token : null);
  return current;
}

export async function signIn(token, subject) {
  current = await api("/api/auth/session", { method: "POST", body: { token, subject: subject || null } });
  setCsrf(current.csrf_token);
  return current;
}

export async function signOut() {
  const session = await whoami({ fresh: true });
  if (session) await api("/api/auth/session", { method: "DELETE" });
  current = null;
  setCsrf(null);
}

export function forget() {
  current = null;
  setCsrf(null);
}

export function holds(session, scope) {
  return !!session && (session.scopes.includes("admin") || session.scopes.includes(scope));
}
