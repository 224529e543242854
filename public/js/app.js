// The dashboard's shell: a URL per view (History API; the back button works), the session
// check before any view that needs one, and the navigation. Each view is one module with
// `render(main, ctx)`, which may return a function that stops its polling or socket.
import { ApiError } from "./api.js";
import { whoami, forget } from "./session.js";
import { clear, errorBox, h } from "./ui.js";

const NAV = [
  ["/", "Overview"],
  ["/swarms", "Swarms"],
  ["/tasks", "Tasks"],
  ["/servers", "Servers"],
  ["/cron", "Cron"],
  ["/browser", "Browser checks"],
  ["/fleet", "Fleet"],
];

const ROUTES = [
  [/^\/$/, "overview"],
  [/^\/swarms$/, "swarms"],
  [/^\/swarms\/(swm_[0-9A-Z]{26})$/, "swarm"],
  [/^\/tasks$/, "tasks"],
  [/^\/tasks\/(tsk_[0-9A-Z]{26})$/, "task"],
  [/^\/servers$/, "servers"],
  [/^\/cron$/, "cron"],
  [/^\/cron\/runs\/(crn_[0-9A-Z]{26})$/, "cron_run"],
  [/^\/browser$/, "browser"],
  [/^\/browser\/(btr_[0-9A-Z]{26})$/, "browser_run"],
  [/^\/fleet$/, "fleet"],
  [/^\/fleet\/([a-z0-9][a-z0-9_-]{0,62})$/, "fleet_worker"],
  [/^\/signin$/, "signin", { public: true }],
  [/^\/signout$/, "signout", { public: true }],
];

const main = document.getElementById("main");
let stopView = null;

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  render();
}

function match(pathname) {
  for (const [pattern, view, options] of ROUTES) {
    const found = pattern.exec(pathname);
    if (found) return { view, params: found.slice(1), options: options || {} };
  }
  return null;
}

function drawNav(pathname) {
  const nav = document.getElementById("nav");
  clear(nav, NAV.map(([href, text]) => {
    const here = href === "/" ? pathname === "/" : pathname.startsWith(href);
    return h("a", { href, "aria-current": here ? "page" : null }, text);
  }), h("a", { href: "/docs", "data-external": "" }, "API"));
}

function drawWho(session) {
  const who = document.getElementById("who");
  if (!session) return clear(who);
  clear(who, h("span", { id: "signed-in-as" }, `signed in as ${session.subject}`),
    h("a", { href: "/signout", class: "signout" }, "Sign out"));
}

async function render() {
  if (stopView) stopView();
  stopView = null;
  const { pathname } = location;
  drawNav(pathname);
  const route = match(pathname);
  if (!route) {
    document.title = "Not found · apiary";
    clear(main, h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "/" }, "Go to the overview.")));
    return;
  }
  try {
    const session = route.options.public ? null : await whoami();
    if (!route.options.public && !session) {
      navigate(`/signin?next=${encodeURIComponent(pathname + location.search)}`, { replace: true });
      return;
    }
    drawWho(session);
    const module = await import(`./views/${route.view}.js`);
    clear(main);
    const ctx = { params: route.params, query: new URLSearchParams(location.search), session, navigate };
    stopView = (await module.render(main, ctx)) || null;
    main.focus({ preventScroll: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && !route.options.public) {
      forget();
      navigate(`/signin?next=${encodeURIComponent(pathname)}`, { replace: true });
      return;
    }
    clear(main, h("h1", {}, "Something went wrong"), errorBox(err));
  }
}

// Same-origin links stay in the page; /docs and /join are pages of their own.
document.addEventListener("click", (event) => {
  const a = event.target.closest("a[href]");
  if (!a || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || a.target) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || a.hasAttribute("data-external")) return;
  if (url.pathname.startsWith("/join") || url.pathname.startsWith("/docs") || url.pathname.startsWith("/api/")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", render);
render();
