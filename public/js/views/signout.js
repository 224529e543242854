// Sign out: the session is revoked server-side (the old cookie is refused from then on), the
// cookie cleared, and the page says so.
import { signOut } from "../session.js";
import { clear, errorBox, h } from "../ui.js";

export async function render(main) {
  document.title = "Signed out · apiary";
  const box = h("div", { class: "signin card" }, h("h1", {}, "Signing out…"));
  main.append(box);
  try {
    await signOut();
  } catch (err) {
    clear(box, h("h1", {}, "Sign-out failed"), errorBox(err));
    return;
  }
  clear(document.getElementById("who"));
  clear(box, h("h1", { id: "signed-out" }, "You are signed out"),
    h("p", {}, "The session is revoked on the server. ", h("a", { href: "/signin" }, "Sign in again")));
}
