// The page's views: sign-in, home, preferences, admin, and the banner at the top.

import { query, mutate } from "./trpc.js";
import { h, icon, toast, announce, replace, formatDate } from "./dom.js";

const CHANNELS = [
  ["email", "Email"],
  ["inApp", "In-app"],
  ["push", "Push"],
];

/** A form field: label, control, hint and a place for its error. */
function field(label, control, hint) {
  const id = control.id;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

/** Shows an error under a form, for screen readers too. */
function formError(form, message) {
  let box = form.querySelector(".form-error");
  if (!box) {
    box = h("p", { class: "form-error", role: "alert" });
    form.prepend(box);
  }
  box.textContent = message ?? "";
  box.hidden = !message;
}

function busy(button, on) {
  button.disabled = on;
  button.setAttribute("aria-busy", on ? "true" : "false");
}

// Sign-in ----------------------------------------------------------------------------------

export function signInView(main, onSignedIn) {
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Sign in");
  const form = h("form", { class: "stack", novalidate: true },
    field("Email", email), field("Password", password), submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!email.value || !password.value) {
      formError(form, "Enter your email and password.");
      (email.value ? password : email).focus();
      return;
    }
    busy(submit, true);
    try {
      const { user } = await mutate("auth.login", { email: email.value.trim(), password: password.value });
      formError(form, null);
      onSignedIn(user);
    } catch (error) {
      formError(form, error.code === "UNAUTHORIZED" || error.code === "BAD_REQUEST" ? "That email and password do not match." : error.message);
      password.select();
      password.focus();
    } finally {
      busy(submit, false);
    }
  });
  replace(main,
    h("div", { class: "signin" },
      h("div", { class: "card signin-card" },
        h("div", { class: "signin-brand" }, h("img", { src: "/assets/icon.svg", alt: "", width: 40, height: 40 })),
        h("h1", {}, "Sign in to Tidings"),
        h("p", { class: "muted" }, "Your notifications, announcements and preferences in one place."),
        form)));
  email.focus();
}

// Home -------------------------------------------------------------------------------------

export function homeView(main, user, counts) {
  const stat = (key, label) => h("div", { class: "stat" },
    h("span", { class: "stat-value", "data-count": key }, counts ? String(counts[key]) : "–"),
    h("span", { class: "stat-label" }, label));
  replace(main,
    h("div", { class: "page" },
      h("h1", {}, `Hello, ${user.name || user.email}`),
      h("p", { class: "lead" }, "Open the bell at the top right to read your notifications. New ones arrive live, in every tab you have open."),
      h("section", { class: "stats", "aria-label": "Your inbox" },
        stat("unread", "Unread"), stat("unseen", "Not yet seen"), stat("total", "In your inbox")),
      h("section", { class: "card tips" },
        h("h2", {}, "What you can do"),
        h("ul", { class: "tip-list" },
          h("li", {}, icon("bell", 18), h("span", {}, "Click a notification to mark it read; archive or delete it with the buttons beside it.")),
          h("li", {}, icon("checks", 18), h("span", {}, "“Mark all read” clears the badge; “Unread only” filters the list.")),
          h("li", {}, icon("lock", 18), h("span", {}, h("a", { href: "#/preferences" }, "Preferences"), " choose which notifications reach you by email, in the app and as push."))))));
}

export function updateHomeCounts(main, counts) {
  for (const el of main.querySelectorAll("[data-count]")) el.textContent = String(counts[el.dataset.count]);
}

// Preferences ------------------------------------------------------------------------------

export async function preferencesView(main) {
  const status = h("p", { class: "save-status", role: "status", "aria-live": "polite" });
  const table = h("table", { class: "prefs" });
  const disableEmail = h("button", { type: "button", class: "btn btn-secondary", id: "disable-email" }, "Disable all email");
  replace(main,
    h("div", { class: "page" },
      h("div", { class: "page-head" },
        h("div", {},
          h("h1", {}, "Notification preferences"),
          h("p", { class: "lead" }, "Choose how each kind of notification reaches you. Changes are saved at once.")),
        disableEmail),
      h("div", { class: "card table-card" }, table),
      status));
  let types, prefs;
  try {
    [{ types }, prefs] = await Promise.all([query("notifications.types"), query("notifications.getPreferences")]);
  } catch (error) {
    toast(error.message, "error");
    return;
  }
  const visible = types.filter((t) => t.required || CHANNELS.some(([c]) => t.channels.includes(c)));
  const columns = CHANNELS.filter(([c]) => visible.some((t) => t.channels.includes(c)));

  const switches = [];
  const row = (t) => {
    const label = h("th", { scope: "row" },
      h("span", { class: "type-name" }, t.description || t.key),
      h("span", { class: "type-key" }, t.key),
      t.required ? h("span", { class: "pill pill-locked" }, icon("lock", 12), "Required") : null);
    const cells = columns.map(([channel, channelLabel]) => {
      if (!t.channels.includes(channel)) return h("td", { class: "na" }, h("span", { "aria-hidden": "true" }, "—"), h("span", { class: "sr-only" }, "Not available"));
      const required = t.required;
      const on = required ? true : Boolean(prefs[channel]?.[t.key]);
      const sw = h("button", {
        type: "button", role: "switch", class: "toggle", "aria-checked": String(on),
        "aria-label": `${channelLabel}: ${t.description || t.key}${required ? " (required)" : ""}`,
        "aria-disabled": required ? "true" : null, "data-channel": channel, "data-type": t.key,
      }, h("span", { class: "toggle-knob", "aria-hidden": "true" }));
      if (required) sw.title = "Required: cannot be turned off";
      else {
        switches.push(sw);
        sw.addEventListener("click", () => toggle(sw, channel, t));
      }
      return h("td", {}, sw);
    });
    return h("tr", { class: t.required ? "locked" : "" }, label, cells);
  };
  replace(table,
    h("caption", { class: "sr-only" }, "Notification types by channel"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Notification"), columns.map(([, l]) => h("th", { scope: "col" }, l)))),
    h("tbody", {}, visible.map(row)));

  async function toggle(sw, channel, t) {
    const enabled = sw.getAttribute("aria-checked") !== "true";
    sw.setAttribute("aria-checked", String(enabled));
    status.textContent = "Saving…";
    try {
      await mutate("notifications.updatePreferences", { channel, type: t.key, enabled });
      status.textContent = `Saved: ${t.description || t.key} by ${channel === "inApp" ? "in-app" : channel} ${enabled ? "on" : "off"}`;
    } catch (error) {
      sw.setAttribute("aria-checked", String(!enabled));
      status.textContent = "";
      toast(error.message, "error");
    }
  }

  disableEmail.addEventListener("click", async () => {
    busy(disableEmail, true);
    try {
      const result = await mutate("notifications.disableAllEmail", {});
      for (const sw of switches) if (sw.dataset.channel === "email") sw.setAttribute("aria-checked", "false");
      status.textContent = result.message;
    } catch (error) {
      toast(error.message, "error");
    } finally {
      busy(disableEmail, false);
    }
  });
}

// Banner -----------------------------------------------------------------------------------

const BANNER_LOOK = {
  OUTAGE: ["alert", "Outage"],
  MAINTENANCE: ["wrench", "Maintenance"],
  ANNOUNCEMENT: ["megaphone", "Announcement"],
  INFO: ["info", "Info"],
};

/** Shows the banner meant for this user now, or nothing. */
export async function showBanner(slot) {
  let banner;
  try {
    banner = await query("banners.current");
  } catch {
    return;
  }
  if (!banner) {
    replace(slot);
    return;
  }
  if (slot.dataset.bannerId === banner.id && slot.firstChild) return;
  slot.dataset.bannerId = banner.id;
  const [iconName, label] = BANNER_LOOK[banner.type] ?? BANNER_LOOK.INFO;
  const urgent = banner.type === "OUTAGE";
  const el = h("section", {
    class: `banner banner-${banner.type.toLowerCase()}`, id: "banner",
    role: urgent ? "alert" : "region", "aria-label": `${label}: ${banner.title}`,
  },
    h("div", { class: "banner-inner" },
      h("span", { class: "banner-icon" }, icon(iconName, 20)),
      h("div", { class: "banner-text" },
        h("span", { class: "banner-kind" }, label),
        h("strong", { class: "banner-title" }, banner.title),
        h("span", { class: "banner-message" }, banner.message),
        banner.link ? h("a", { class: "banner-link", href: banner.link, target: "_blank", rel: "noopener noreferrer" }, banner.linkText || "Details", icon("external", 14)) : null),
      banner.isDismissible ? h("button", { type: "button", class: "banner-close", "aria-label": "Dismiss this announcement", onclick: () => dismiss(banner, slot) }, icon("x", 18)) : null));
  replace(slot, el);
}

async function dismiss(banner, slot) {
  try {
    await mutate("banners.dismiss", { id: banner.id });
    replace(slot);
    delete slot.dataset.bannerId;
    announce("Announcement dismissed");
    document.getElementById("main").focus();
  } catch (error) {
    toast(error.message, "error");
  }
}

// Admin ------------------------------------------------------------------------------------

function toLocalInput(date) {
  const d = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export async function adminView(main, onBannerChange) {
  const bannerList = h("ul", { class: "admin-list", id: "banner-list", "aria-label": "Banners" });
  const bannerForm = buildBannerForm(async () => {
    await refreshBanners();
    onBannerChange();
  });
  const notifyForm = await buildNotifyForm();
  replace(main,
    h("div", { class: "page" },
      h("h1", {}, "Admin"),
      h("p", { class: "lead" }, "Announce something to everyone, or send a notification to people and groups."),
      h("div", { class: "admin-grid" },
        h("section", { class: "card", "aria-labelledby": "banners-title" },
          h("h2", { id: "banners-title" }, "Banners"),
          h("p", { class: "muted" }, "One banner is active at a time: activating one switches off the one before."),
          bannerForm,
          h("h3", {}, "All banners"),
          bannerList),
        h("section", { class: "card", "aria-labelledby": "notify-title" },
          h("h2", { id: "notify-title" }, "Send a notification"),
          notifyForm))));

  async function refreshBanners() {
    let banners;
    try {
      ({ banners } = await query("banners.list", { take: 50 }));
    } catch (error) {
      toast(error.message, "error");
      return;
    }
    if (banners.length === 0) {
      replace(bannerList, h("li", { class: "muted" }, "No banners yet."));
      return;
    }
    replace(bannerList, banners.map((b) => {
      const toggle = h("button", { type: "button", class: "btn btn-secondary btn-small" }, b.isActive ? "Deactivate" : "Activate");
      toggle.setAttribute("aria-label", `${b.isActive ? "Deactivate" : "Activate"} “${b.title}”`);
      toggle.addEventListener("click", async () => {
        busy(toggle, true);
        try {
          await mutate("banners.update", { notificationBannerId: b.id, input: { isActive: !b.isActive } });
          toast(b.isActive ? "Banner deactivated" : "Banner activated");
          await refreshBanners();
          onBannerChange();
        } catch (error) {
          toast(error.message, "error");
          busy(toggle, false);
        }
      });
      const del = h("button", { type: "button", class: "icon-btn danger", "aria-label": `Delete “${b.title}”`, title: "Delete" }, icon("trash", 16));
      del.addEventListener("click", async () => {
        try {
          await mutate("banners.delete", { notificationBannerId: b.id });
          toast("Banner deleted");
          await refreshBanners();
          onBannerChange();
        } catch (error) {
          toast(error.message, "error");
        }
      });
      return h("li", { class: "admin-row" },
        h("div", { class: "admin-row-text" },
          h("span", { class: `pill pill-${b.type.toLowerCase()}` }, b.type),
          b.isActive ? h("span", { class: "pill pill-active" }, "Active") : null,
          h("strong", {}, b.title),
          h("span", { class: "muted small" }, `${formatDate(b.startDate)} – ${formatDate(b.endDate)}`)),
        h("div", { class: "admin-row-actions" }, toggle, del));
    }));
  }
  await refreshBanners();
}

function buildBannerForm(onCreated) {
  const now = new Date();
  const inputs = {
    title: h("input", { id: "b-title", required: true, maxlength: 200 }),
    message: h("textarea", { id: "b-message", required: true, rows: 2 }),
    type: h("select", { id: "b-type" }, ["OUTAGE", "MAINTENANCE", "ANNOUNCEMENT", "INFO"].map((t) => h("option", { value: t }, t[0] + t.slice(1).toLowerCase()))),
    link: h("input", { id: "b-link", type: "url", placeholder: "https://status.example.com" }),
    linkText: h("input", { id: "b-link-text", placeholder: "Status page" }),
    start: h("input", { id: "b-start", type: "datetime-local", value: toLocalInput(now) }),
    end: h("input", { id: "b-end", type: "datetime-local", value: toLocalInput(new Date(now.getTime() + 7 * 86400000)) }),
    to: h("input", { id: "b-to", placeholder: "All organizations" }),
    dismissible: h("input", { id: "b-dismissible", type: "checkbox", checked: true }),
    active: h("input", { id: "b-active", type: "checkbox", checked: true }),
  };
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create banner");
  const form = h("form", { class: "stack", id: "banner-form", novalidate: true },
    field("Title", inputs.title),
    field("Message", inputs.message),
    h("div", { class: "row" }, field("Type", inputs.type), field("Organizations", inputs.to, "Ids separated by commas; empty for everyone.")),
    h("div", { class: "row" }, field("Link", inputs.link), field("Link text", inputs.linkText)),
    h("div", { class: "row" }, field("Starts", inputs.start), field("Ends", inputs.end)),
    h("div", { class: "checks" },
      h("label", { class: "check" }, inputs.dismissible, "Users may dismiss it"),
      h("label", { class: "check" }, inputs.active, "Active now")),
    h("div", {}, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const i = inputs;
    const input = {
      title: i.title.value.trim(),
      message: i.message.value.trim(),
      type: i.type.value,
      isDismissible: i.dismissible.checked,
      isActive: i.active.checked,
      startDate: i.start.value ? new Date(i.start.value).toISOString() : "",
      endDate: i.end.value ? new Date(i.end.value).toISOString() : "",
      notificationTo: i.to.value.split(",").map((s) => s.trim()).filter(Boolean),
    };
    if (i.link.value.trim()) input.link = i.link.value.trim();
    if (i.linkText.value.trim()) input.linkText = i.linkText.value.trim();
    busy(submit, true);
    try {
      await mutate("banners.create", input);
      formError(form, null);
      form.reset();
      i.start.value = toLocalInput(new Date());
      i.end.value = toLocalInput(new Date(Date.now() + 7 * 86400000));
      toast("Banner created");
      await onCreated();
    } catch (error) {
      formError(form, error.message);
    } finally {
      busy(submit, false);
    }
  });
  return form;
}

/** The `{{ name }}` variables of a template. */
function variables(template) {
  return [...template.matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);
}

async function buildNotifyForm() {
  let types = [], groups = [];
  try {
    [{ types }, { groups }] = await Promise.all([query("notificationTypes.list"), query("groups.list", {})]);
  } catch (error) {
    toast(error.message, "error");
  }
  types = types.filter((t) => t.key !== "general");
  const type = h("select", { id: "n-type" }, types.map((t) => h("option", { value: t.key }, `${t.key} — ${t.description}`)));
  const preview = h("p", { class: "template", id: "n-template" });
  const vars = h("div", { class: "row wrap", id: "n-vars" });
  const mode = (value, label, checked) => h("label", { class: "check" }, h("input", { type: "radio", name: "n-mode", value, checked }), label);
  const userIds = h("input", { id: "n-users", placeholder: "user-1, user-2" });
  const groupBox = h("fieldset", { class: "groups", id: "n-groups" },
    h("legend", {}, "Groups"),
    groups.length === 0 ? h("p", { class: "muted small" }, "No groups yet.") : groups.map((g) => h("label", { class: "check" }, h("input", { type: "checkbox", value: g.id }), `${g.name} (${g.memberCount})`)),
    h("div", { class: "inline" }, h("label", { class: "check" }, h("input", { type: "radio", name: "n-op", value: "OR", checked: true }), "In any group"),
      h("label", { class: "check" }, h("input", { type: "radio", name: "n-op", value: "AND" }), "In every group")));
  const excluded = h("input", { id: "n-excluded", placeholder: "none" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Send notification");
  const result = h("p", { class: "save-status", role: "status" });

  const showType = () => {
    const t = types.find((x) => x.key === type.value);
    if (!t) return;
    replace(preview, h("strong", {}, t.titleTemplate), " — ", t.messageTemplate);
    const names = [...new Set([...variables(t.titleTemplate), ...variables(t.messageTemplate)])];
    replace(vars, names.map((name) => field(name, h("input", { id: `n-var-${name}`, "data-var": name, required: true }))));
  };
  type.addEventListener("change", showType);
  showType();

  const form = h("form", { class: "stack", id: "notify-form", novalidate: true },
    field("Type", type), preview, vars,
    h("fieldset", { class: "modes" },
      h("legend", {}, "Recipients"),
      h("div", { class: "inline" }, mode("users", "Users", true), mode("groups", "Groups", false), mode("all", "Everyone", false))),
    field("User ids", userIds, "Ids separated by commas."),
    groupBox,
    field("Except user ids", excluded),
    h("div", {}, submit),
    result);
  const syncMode = () => {
    const m = form.querySelector("input[name=n-mode]:checked").value;
    userIds.closest(".field").hidden = m !== "users";
    groupBox.hidden = m !== "groups";
  };
  form.addEventListener("change", (e) => {
    if (e.target.name === "n-mode") syncMode();
  });
  syncMode();

  const ids = (input) => input.value.split(",").map((s) => s.trim()).filter(Boolean);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const m = form.querySelector("input[name=n-mode]:checked").value;
    const recipients = {};
    if (m === "users") recipients.userIds = ids(userIds);
    if (m === "groups") {
      recipients.userGroups = {
        operator: form.querySelector("input[name=n-op]:checked").value,
        userGroupIds: [...groupBox.querySelectorAll("input[type=checkbox]:checked")].map((c) => c.value),
      };
    }
    if (m === "all") recipients.allUsers = true;
    if (ids(excluded).length) recipients.excludedUserIds = ids(excluded);
    const data = {};
    for (const input of vars.querySelectorAll("[data-var]")) data[input.dataset.var] = input.value;
    busy(submit, true);
    try {
      const answer = await mutate("notifications.notify", { key: type.value, recipients, data });
      formError(form, null);
      const n = answer.usersNotified.count;
      result.textContent = n === 1 ? "Sent to 1 person." : `Sent to ${n} people.`;
    } catch (error) {
      result.textContent = "";
      formError(form, error.message);
    } finally {
      busy(submit, false);
    }
  });
  return form;
}
