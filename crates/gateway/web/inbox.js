// The bell and its panel: a live unread badge (`notifications.onCounts`), new items as they
// arrive (`notifications.onNew`), and the inbox itself with infinite scroll over the cursor.

import { query, mutate, subscribe } from "./trpc.js";
import { h, icon, timeElement, refreshTimes, announce, toast, replace } from "./dom.js";

const PAGE = 20;

/** Starts the bell; `onUnauthorized` is called when the session has ended. */
export function startInbox({ onUnauthorized, onCounts }) {
  const bell = document.getElementById("bell");
  const badge = document.getElementById("badge");
  const panel = document.getElementById("panel");
  bell.prepend(icon("bell", 22));

  const state = { items: [], cursor: null, hasMore: false, loading: false, unreadOnly: false, open: false, generation: 0 };

  // The panel's parts, built once.
  const unreadOnly = h("input", { type: "checkbox", id: "unread-only", role: "switch", class: "switch-input" });
  const markAll = h("button", { type: "button", class: "btn btn-quiet btn-small", id: "mark-all" }, icon("checks", 16), "Mark all read");
  const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Close notifications" }, icon("x", 18));
  const feed = h("ul", { class: "feed", id: "feed", "aria-label": "Notifications", role: "list" });
  const empty = h("div", { class: "empty", hidden: true },
    h("div", { class: "empty-art" }, icon("inbox", 28)),
    h("p", { class: "empty-title", id: "empty-title" }, "You're all caught up"),
    h("p", { class: "empty-text" }, "New notifications will show up here."));
  const more = h("div", { class: "more", "aria-hidden": "true" });
  const body = h("div", { class: "panel-body" }, feed, empty, more);
  replace(panel,
    h("div", { class: "panel-head" },
      h("h2", { id: "panel-title" }, "Notifications"),
      close),
    h("div", { class: "panel-tools" },
      h("label", { class: "switch", for: "unread-only" }, unreadOnly, h("span", { class: "switch-track", "aria-hidden": "true" }), "Unread only"),
      markAll),
    body);

  // Counts: the badge and the bell's accessible name follow every change, in every tab.
  let shownUnread = null;
  const setCounts = (counts) => {
    const unread = counts.unread;
    badge.textContent = unread > 99 ? "99+" : String(unread);
    badge.hidden = unread === 0;
    bell.setAttribute("aria-label", unread === 0 ? "Notifications, none unread" : `Notifications, ${unread} unread`);
    bell.dataset.unread = String(unread);
    if (shownUnread !== null && unread > shownUnread) {
      badge.classList.remove("pop");
      void badge.offsetWidth;
      badge.classList.add("pop");
    }
    shownUnread = unread;
    onCounts?.(counts);
  };

  const failed = (error) => {
    if (error.code === "UNAUTHORIZED") onUnauthorized();
    else toast(error.message, "error");
  };

  // One stream per tab while the panel is closed (browsers allow six connections per host,
  // shared by every tab): onCounts for the badge. onNew runs only while the panel is open, to
  // put new items at the top of the list.
  const stopCounts = subscribe("notifications.onCounts", undefined, {
    onData: (counts) => {
      if (!state.open && shownUnread !== null && counts.unread > shownUnread) {
        announce(counts.unread === 1 ? "1 unread notification" : `${counts.unread} unread notifications`);
      }
      setCounts(counts);
      // Everything was read elsewhere (another tab or device): the open list follows.
      if (state.open && counts.unread === 0) {
        for (const li of feed.children) {
          const n = state.items.find((x) => x.id === li.dataset.id);
          if (n && !n.read) setRead(n, li);
        }
      }
    },
    onError: failed,
  });
  let stopNew = null;
  const watchNew = () => subscribe("notifications.onNew", undefined, {
    onData: ({ notification, counts }) => {
      setCounts(counts);
      if (!state.open) return;
      announce(`New notification: ${notification.title}`);
      if (!state.items.some((n) => n.id === notification.id)) {
        state.items.unshift(notification);
        feed.prepend(renderItem(notification));
        showEmpty();
      }
      mutate("notifications.markAllAsSeen").catch(failed);
    },
    onError: failed,
  });

  function renderItem(n) {
    const li = h("li", { class: `item${n.read ? "" : " unread"}`, "data-id": n.id });
    const main = h("button", { type: "button", class: "item-main" },
      h("span", { class: "dot", "aria-hidden": "true" }),
      h("span", { class: "item-text" },
        h("span", { class: "item-title" }, h("span", { class: "sr-only state" }, n.read ? "" : "Unread: "), n.title),
        h("span", { class: "item-message" }, n.message),
        timeElement(n.created_at)));
    main.addEventListener("click", () => markRead(n, li));
    const archive = h("button", { type: "button", class: "icon-btn", "aria-label": `Archive “${n.title}”`, title: "Archive" }, icon("archive", 16));
    archive.addEventListener("click", () => removeItem(n, li, "notifications.archive", "Archived"));
    const remove = h("button", { type: "button", class: "icon-btn danger", "aria-label": `Delete “${n.title}”`, title: "Delete" }, icon("trash", 16));
    remove.addEventListener("click", () => removeItem(n, li, "notifications.delete", "Deleted"));
    li.append(main, h("div", { class: "item-actions" }, archive, remove));
    return li;
  }

  function setRead(n, li) {
    n.read = true;
    li.classList.remove("unread");
    const s = li.querySelector(".state");
    if (s) s.textContent = "";
  }

  async function markRead(n, li) {
    if (n.read) return;
    setRead(n, li);
    try {
      await mutate("notifications.markAsRead", { id: n.id });
    } catch (error) {
      failed(error);
    }
  }

  async function removeItem(n, li, procedure, done) {
    const next = li.nextElementSibling ?? li.previousElementSibling;
    try {
      await mutate(procedure, { id: n.id });
    } catch (error) {
      failed(error);
      return;
    }
    state.items = state.items.filter((x) => x.id !== n.id);
    li.remove();
    announce(`${done}: ${n.title}`);
    showEmpty();
    (next?.querySelector(".item-main") ?? panel).focus();
  }

  function showEmpty() {
    const none = state.items.length === 0 && !state.loading;
    empty.hidden = !none;
    document.getElementById("empty-title").textContent = state.unreadOnly ? "No unread notifications" : "You're all caught up";
    markAll.disabled = none;
  }

  async function loadMore() {
    if (state.loading || (!state.hasMore && state.items.length > 0)) return;
    state.loading = true;
    const generation = state.generation;
    feed.setAttribute("aria-busy", "true");
    more.textContent = "Loading…";
    try {
      const input = { limit: PAGE, unreadOnly: state.unreadOnly };
      if (state.cursor) input.cursor = state.cursor;
      const page = await query("notifications.list", input);
      if (generation !== state.generation) return;
      const fresh = page.notifications.filter((n) => !state.items.some((x) => x.id === n.id));
      state.items.push(...fresh);
      feed.append(...fresh.map(renderItem));
      state.cursor = page.nextCursor;
      state.hasMore = page.hasMore;
    } catch (error) {
      failed(error);
      state.hasMore = false;
    } finally {
      if (generation === state.generation) {
        state.loading = false;
        feed.removeAttribute("aria-busy");
        more.textContent = "";
        showEmpty();
        // A short first page may not fill the panel: keep loading while the end shows.
        if (state.hasMore && body.scrollHeight <= body.clientHeight + 40) loadMore();
      }
    }
  }

  function reload() {
    state.generation += 1;
    state.items = [];
    state.cursor = null;
    state.hasMore = false;
    state.loading = false;
    feed.replaceChildren();
    loadMore();
  }

  // Infinite scroll: the next page loads when the end of the list comes near.
  body.addEventListener("scroll", () => {
    if (state.hasMore && body.scrollTop + body.clientHeight >= body.scrollHeight - 160) loadMore();
  }, { passive: true });

  unreadOnly.addEventListener("change", () => {
    state.unreadOnly = unreadOnly.checked;
    reload();
  });

  markAll.addEventListener("click", async () => {
    try {
      const { count } = await mutate("notifications.markAllAsRead", {});
      for (const li of feed.children) {
        const n = state.items.find((x) => x.id === li.dataset.id);
        if (n) setRead(n, li);
      }
      announce(count === 1 ? "1 notification marked read" : `${count} notifications marked read`);
    } catch (error) {
      failed(error);
    }
  });

  function openPanel() {
    state.open = true;
    panel.hidden = false;
    bell.setAttribute("aria-expanded", "true");
    stopNew = watchNew();
    reload();
    panel.focus();
    mutate("notifications.markAllAsSeen").catch(failed);
  }

  function closePanel({ focusBell = true } = {}) {
    if (!state.open) return;
    state.open = false;
    stopNew?.();
    stopNew = null;
    panel.hidden = true;
    bell.setAttribute("aria-expanded", "false");
    if (focusBell) bell.focus();
  }

  bell.addEventListener("click", () => (state.open ? closePanel() : openPanel()));
  close.addEventListener("click", () => closePanel());
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      closePanel();
    }
  });
  const outside = (e) => {
    if (state.open && !panel.contains(e.target) && !bell.contains(e.target)) closePanel({ focusBell: false });
  };
  document.addEventListener("pointerdown", outside);
  const ticker = setInterval(() => refreshTimes(panel), 30_000);

  return () => {
    stopCounts();
    clearInterval(ticker);
    document.removeEventListener("pointerdown", outside);
    closePanel({ focusBell: false });
    bell.querySelector("svg")?.remove();
  };
}
