// Sign in: a token, once. From `apiary token --open` the token arrives in the URL fragment
// (`#token=...`), which browsers never send to a server, so no access log keeps it; the page
// posts it to POST /api/auth/session and takes it out of the address bar and history at once.
import { signIn, whoami } from "../session.js";
import { clear, errorBox, h } from "../ui.js";

function destination(query) {
  const next = query.get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export async function render(main, { query, navigate }) {
  document.title = "Sign in · apiary";
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromLink = fragment.get("token");
  if (fromLink) history.replaceState(null, "", location.pathname + location.search);
  const problem = h("div", { id: "signin-error" });
  const token = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const subject = h("input", { id: "subject", name: "subject", autocomplete: "username" });
  const submit = h("button", { id: "submit", type: "submit", class: "primary" }, "Sign in");
  const go = async (value, who) => {
    submit.disabled = true;
    clear(problem);
    try {
      await signIn(value.trim(), who.trim());
      navigate(destination(query), { replace: true });
    } catch (err) {
      clear(problem, errorBox(err));
      submit.disabled = false;
    }
  };
  const form = h("form", { onsubmit: (e) => { e.preventDefault(); go(token.value, subject.value); } },
    h("label", { for: "subject" }, "Subject (optional: the token must be this subject's)", subject),
    h("label", { for: "token" }, "Token", token),
    submit);
  main.append(h("div", { class: "signin card" },
    h("h1", {}, "Sign in to apiary"),
    h("p", { class: "muted" }, "Paste a token from ", h("code", {}, "apiary token --open"),
      ". The session lasts as long as the token and carries exactly its scopes."),
    problem, form));
  if (fromLink) return go(fromLink, "");
  if (await whoami().catch(() => null)) {
    problem.append(h("p", { class: "muted" }, "You are already signed in; signing in again replaces the session."));
  }
  token.focus();
}
