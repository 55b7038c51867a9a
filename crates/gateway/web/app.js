// The page's entry point: who is signed in, the header, the routes (#/, #/preferences,
// #/admin) and the banner.

import { query, mutate } from "./trpc.js";
import { h, replace, toast } from "./dom.js";
import { startInbox } from "./inbox.js";
import { signInView, homeView, updateHomeCounts, preferencesView, adminView, showBanner } from "./pages.js";

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");
const bannerSlot = document.getElementById("banner-slot");
const userBox = document.getElementById("user");

let user = null;
let counts = null;
let stopInbox = null;
let bannerTimer = null;

function route() {
  const name = location.hash.replace(/^#\/?/, "") || "home";
  return ["home", "preferences", "admin"].includes(name) ? name : "home";
}

async function render() {
  if (!user) return;
  const name = route() === "admin" && user.role !== "admin" ? "home" : route();
  for (const link of document.querySelectorAll("[data-route]")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = { home: "Tidings", preferences: "Preferences · Tidings", admin: "Admin · Tidings" }[name];
  main.dataset.view = name;
  if (name === "home") homeView(main, user, counts);
  if (name === "preferences") await preferencesView(main);
  if (name === "admin") await adminView(main, () => showBanner(bannerSlot));
}

// The session cookie is HttpOnly, so the page keeps a note that it signed in, and asks who is
// signed in only then: a first visit shows the form without a 401 in the console.
const SIGNED_IN = "tidings.signedIn";

function signedIn(me) {
  user = me;
  localStorage.setItem(SIGNED_IN, "1");
  topbar.hidden = false;
  document.querySelector("[data-route=admin]").hidden = user.role !== "admin";
  const signOut = h("button", { type: "button", class: "btn btn-quiet btn-small", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", async () => {
    try {
      await mutate("auth.logout");
    } catch {
      // The session may already be gone; signing out locally is what matters.
    }
    signedOut();
  });
  const initial = (user.name || user.email || "?").trim()[0].toUpperCase();
  replace(userBox,
    h("span", { class: "avatar", "aria-hidden": "true" }, initial),
    h("span", { class: "user-name" }, user.name || user.email),
    signOut);
  stopInbox = startInbox({
    onUnauthorized: signedOut,
    onCounts: (c) => {
      counts = c;
      if (main.dataset.view === "home") updateHomeCounts(main, c);
    },
  });
  showBanner(bannerSlot);
  bannerTimer = setInterval(() => showBanner(bannerSlot), 60_000);
  render();
  main.focus();
}

function signedOut() {
  user = null;
  localStorage.removeItem(SIGNED_IN);
  counts = null;
  stopInbox?.();
  stopInbox = null;
  clearInterval(bannerTimer);
  topbar.hidden = true;
  replace(bannerSlot);
  delete bannerSlot.dataset.bannerId;
  replace(userBox);
  main.dataset.view = "signin";
  document.title = "Sign in · Tidings";
  signInView(main, signedIn);
}

window.addEventListener("hashchange", () => {
  render();
  main.focus();
});
window.addEventListener("storage", (e) => {
  if (e.key === SIGNED_IN && !e.newValue && user) signedOut();
});
document.addEventListener("visibilitychange", () => {
  if (user && document.visibilityState === "visible") showBanner(bannerSlot);
});

(async () => {
  if (!localStorage.getItem(SIGNED_IN)) {
    signedOut();
    return;
  }
  try {
    signedIn(await query("auth.me"));
  } catch (error) {
    if (error.code !== "UNAUTHORIZED") toast(error.message, "error");
    signedOut();
  }
})();
