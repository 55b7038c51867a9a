// Drives the web inbox in a real, headless Chromium: sign-in, live badge and panel, read and
// archive and delete, a second tab, infinite scroll, the banner, preferences, the admin page,
// keyboard use and a phone-width layout. Fails on any console error or uncaught exception.
//
// Run through `cargo xtask e2e`, which starts a server on a fresh database and sets:
//   E2E_BASE_URL, E2E_SERVICE_KEY, E2E_USER_EMAIL, E2E_USER_PASSWORD, E2E_USER_ID,
//   E2E_ADMIN_EMAIL, E2E_ADMIN_PASSWORD, E2E_SCREENSHOTS (a directory), E2E_CHROMIUM.

import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env("E2E_BASE_URL");
const KEY = env("E2E_SERVICE_KEY");
const USER = { email: env("E2E_USER_EMAIL"), password: env("E2E_USER_PASSWORD"), id: env("E2E_USER_ID") };
const ADMIN = { email: env("E2E_ADMIN_EMAIL"), password: env("E2E_ADMIN_PASSWORD") };
const SHOTS = env("E2E_SCREENSHOTS");
mkdirSync(SHOTS, { recursive: true });

const problems = [];
let passed = 0;
const figures = [];

let lastMark = Date.now();
/** With E2E_TRACE set, prints how long since the previous mark: for finding slow waits. */
function mark(label) {
  if (process.env.E2E_TRACE) console.log(`     ${label}: +${Date.now() - lastMark} ms`);
  lastMark = Date.now();
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
    passed += 1;
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    console.log(`FAIL ${name}: ${error.message}`);
    throw error;
  }
}

/** A call with the service key, as a product's backend makes it. */
async function service(path, input) {
  const response = await fetch(`${BASE}/api/trpc/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ json: input }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`${path}: ${JSON.stringify(body.error)}`);
  return body.result.data.json;
}

function notify(title) {
  return service("notifications.notify", {
    key: "ticketAssigned",
    recipients: { userIds: [USER.id] },
    data: { ticketNumber: "1234", ticketTitle: title },
  });
}

/** Fails the run on anything the console reports as an error, and on uncaught exceptions. */
function watch(page, label) {
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${label} console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`${label} uncaught: ${e.message}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`${label} HTTP ${r.status()} for ${r.url()}`);
  });
  return page;
}

async function signIn(page, who) {
  await page.goto(BASE + "/");
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#bell[data-unread]").waitFor();
}

const badge = (page) => page.locator("#bell").getAttribute("data-unread");
async function waitBadge(page, n, timeout = 5000) {
  await page.locator(`#bell[data-unread="${n}"]`).waitFor({ timeout });
  check((await page.locator("#badge").isHidden()) === (n === 0), `badge hidden exactly when 0 (${n})`);
}

const browser = await chromium.launch({
  executablePath: process.env.E2E_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});

try {
  const desktop = { viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1, reducedMotion: "reduce" };
  const ctx = await browser.newContext(desktop);
  const page = watch(await ctx.newPage(), "tab 1");

  await step("the page is served with a strict CSP and its assets with ETags", async () => {
    const response = await page.goto(BASE + "/");
    const csp = response.headers()["content-security-policy"] ?? "";
    check(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"), `CSP: ${csp}`);
    check(response.headers()["etag"], "index has an ETag");
    const css = await fetch(BASE + "/assets/app.css");
    check(css.headers.get("content-type").startsWith("text/css"), "CSS content type");
    const again = await fetch(BASE + "/assets/app.css", { headers: { "if-none-match": css.headers.get("etag") } });
    check(again.status === 304, `revalidation gives 304, got ${again.status}`);
    await page.getByRole("heading", { name: "Sign in to Tidings" }).waitFor();
    await page.screenshot({ path: join(SHOTS, "signin.png") });
  });

  await step("sign in", async () => {
    await signIn(page, USER);
    await waitBadge(page, 0);
    await page.getByRole("heading", { name: /Hello, / }).waitFor();
  });

  await step("a notification sent by a service reaches the open page's badge within a second", async () => {
    const started = Date.now();
    await notify("Login fails");
    await waitBadge(page, 1, 1000);
    const ms = Date.now() - started;
    figures.push(`notify → badge updated: ${ms} ms`);
    check(ms < 1000, `badge within 1 s, took ${ms} ms`);
  });

  const tab2 = watch(await ctx.newPage(), "tab 2");
  await step("a second tab shows the same badge", async () => {
    await tab2.goto(BASE + "/");
    await waitBadge(tab2, 1);
    // A background tab gets no animation frames, which Playwright's clicks wait for.
    await page.bringToFront();
  });

  await step("the panel lists the inbox and new items arrive in it live", async () => {
    await page.locator("#bell").click();
    const panel = page.getByRole("dialog", { name: "Notifications" });
    await panel.waitFor();
    check((await page.locator("#bell").getAttribute("aria-expanded")) === "true", "bell expanded");
    await panel.locator(".item.unread").first().waitFor();
    check((await panel.locator(".item").count()) === 1, "one item");
    const started = Date.now();
    await notify("Checkout is slow");
    await panel.locator(".item", { hasText: "Checkout is slow" }).waitFor({ timeout: 1000 });
    figures.push(`notify → item in the open panel: ${Date.now() - started} ms`);
    await waitBadge(page, 2);
    await waitBadge(tab2, 2);
    check((await panel.locator(".item.unread").count()) === 2, "two unread items");
    check((await panel.locator("time").first().textContent()) === "just now", "relative time");
    const counts = await tab2.evaluate(() => fetch("/api/trpc/notifications.counts").then((r) => r.json()));
    check(counts.result.data.json.unseen === 0, `opening the panel marks all seen: ${JSON.stringify(counts)}`);
    await page.screenshot({ path: join(SHOTS, "inbox.png") });
  });

  await step("clicking an item marks it read; the other tab's badge follows", async () => {
    const panel = page.locator("#panel");
    await panel.locator(".item", { hasText: "Checkout is slow" }).locator(".item-main").click();
    await panel.locator(".item:not(.unread)", { hasText: "Checkout is slow" }).waitFor();
    await waitBadge(page, 1);
    await waitBadge(tab2, 1);
  });

  await step("unread only, mark all read, archive, delete, empty state", async () => {
    const panel = page.locator("#panel");
    await panel.getByText("Unread only").click();
    await panel.locator(".item").first().waitFor();
    check((await panel.locator(".item").count()) === 1, "one unread item");
    await panel.getByRole("button", { name: "Mark all read" }).click();
    await waitBadge(page, 0);
    await waitBadge(tab2, 0);
    check((await panel.locator(".item.unread").count()) === 0, "no unread item left");
    await panel.getByText("Unread only").click();
    await panel.locator(".item").nth(1).waitFor();
    await panel.getByRole("button", { name: "Archive “Ticket Assigned”" }).first().click();
    await page.waitForFunction(() => document.querySelectorAll("#panel .item").length === 1);
    await panel.getByRole("button", { name: "Delete “Ticket Assigned”" }).click();
    await panel.getByText("You're all caught up").waitFor();
    const archived = await page.evaluate(() =>
      fetch(`/api/trpc/notifications.list?input=${encodeURIComponent(JSON.stringify({ json: { status: "archived" } }))}`).then((r) => r.json()));
    check(archived.result.data.json.notifications.length === 1, "one archived item");
    await page.screenshot({ path: join(SHOTS, "inbox-empty.png") });
  });

  await step("keyboard: Escape closes the panel and gives focus back to the bell", async () => {
    await page.keyboard.press("Escape");
    await page.locator("#panel").waitFor({ state: "hidden" });
    check(await page.evaluate(() => document.activeElement?.id === "bell"), "focus on the bell");
    await page.keyboard.press("Enter");
    await page.locator("#panel").waitFor();
    check(await page.evaluate(() => document.activeElement?.id === "panel"), "focus in the panel");
    await page.keyboard.press("Escape");
  });

  await step("infinite scroll walks the cursor to the end", async () => {
    const records = Array.from({ length: 45 }, (_, i) => ({
      recipient: USER.id, subject: `Digest ${String(i + 1).padStart(2, "0")}`, message: `Item ${i + 1} of 45`,
    }));
    await service("notifications.create", records);
    await waitBadge(page, 45);
    await page.locator("#bell").click();
    const panel = page.locator("#panel");
    await panel.locator(".item").nth(19).waitFor();
    for (let i = 0; i < 50 && (await panel.locator(".item").count()) < 45; i++) {
      await panel.locator(".panel-body").evaluate((el) => el.scrollTo(0, el.scrollHeight));
      await page.waitForTimeout(150);
    }
    check((await panel.locator(".item").count()) === 45, `45 items, got ${await panel.locator(".item").count()}`);
    check((await panel.locator(".item").last().textContent()).includes("Digest 01"), "oldest last");
    await page.keyboard.press("Escape");
  });

  await step("the banner shows, dismisses, and stays dismissed after a reload", async () => {
    const now = Date.now();
    await service("banners.create", {
      title: "Partial outage", message: "Sign-ins are failing for some users; we are on it.",
      link: "https://status.example.com/incidents/42", linkText: "Status page",
      type: "OUTAGE", isDismissible: true,
      startDate: new Date(now - 60_000).toISOString(), endDate: new Date(now + 3_600_000).toISOString(), notificationTo: [],
    });
    await page.reload();
    const banner = page.locator("#banner");
    await banner.waitFor();
    check((await banner.getAttribute("class")).includes("banner-outage"), "outage styling");
    check((await banner.getAttribute("role")) === "alert", "an outage is an alert");
    check((await banner.getByRole("link", { name: "Status page" }).getAttribute("href")) === "https://status.example.com/incidents/42", "link");
    await page.screenshot({ path: join(SHOTS, "banner.png") });
    await banner.getByRole("button", { name: "Dismiss this announcement" }).click();
    await banner.waitFor({ state: "detached" });
    const current = page.waitForResponse((r) => r.url().includes("banners.current"));
    await page.reload();
    const answer = await (await current).json();
    check(answer.result.data.json === null, "banners.current is null after dismissal");
    await page.locator("#bell[data-unread]").waitFor();
    check((await page.locator("#banner").count()) === 0, "no banner after reload");
  });

  await step("preferences: a toggle saves at once and survives a reload", async () => {
    await page.goto(BASE + "/#/preferences");
    const toggle = page.getByRole("switch", { name: "Email: Ticket assigned to you" });
    await toggle.waitFor();
    check((await toggle.getAttribute("aria-checked")) === "true", "on by default");
    await toggle.click();
    await page.getByText("Saved: Ticket assigned to you by email off").waitFor();
    const locked = page.getByRole("switch", { name: /\(required\)/ }).first();
    check((await locked.getAttribute("aria-disabled")) === "true", "required type locked");
    await page.reload();
    await toggle.waitFor();
    check((await toggle.getAttribute("aria-checked")) === "false", "still off after reload");
    const push = page.getByRole("switch", { name: "Push: Ticket assigned to you" });
    check((await push.getAttribute("aria-checked")) === "true", "push untouched");
    await page.screenshot({ path: join(SHOTS, "preferences.png") });
    await page.getByRole("button", { name: "Disable all email" }).click();
    await page.getByText("All email notifications disabled").waitFor();
    await page.reload();
    await toggle.waitFor();
    const emailOn = await page.locator('.toggle[data-channel="email"][aria-checked="true"]').count();
    check(emailOn === 0, `no email switch on after disable all, ${emailOn} on`);
  });

  await tab2.close();

  const adminCtx = await browser.newContext(desktop);
  const admin = watch(await adminCtx.newPage(), "admin");
  await step("an admin creates a banner that the user sees, and sends a notification", async () => {
    await signIn(admin, ADMIN);
    await admin.getByRole("link", { name: "Admin" }).click();
    const form = admin.locator("#banner-form");
    await form.getByLabel("Title").fill("Scheduled maintenance tonight");
    await form.getByLabel("Message").fill("The service is read-only from 22:00 to 23:00 UTC.");
    await form.getByLabel("Type").selectOption("MAINTENANCE");
    await form.getByLabel("Link", { exact: true }).fill("https://status.example.com/maintenance");
    await form.getByLabel("Link text").fill("Details");
    await form.getByRole("button", { name: "Create banner" }).click();
    await admin.locator("#banner-list li", { hasText: "Scheduled maintenance tonight" }).waitFor();
    await admin.locator("#banner.banner-maintenance").waitFor();

    const send = admin.locator("#notify-form");
    await send.getByLabel("Type").selectOption("ticketAssigned");
    await send.getByLabel("ticketNumber").fill("777");
    await send.getByLabel("ticketTitle").fill("Sent from the admin page");
    await send.getByLabel("User ids", { exact: true }).fill(USER.id);
    // A tall window rather than a full-page capture, which would repeat the sticky header.
    await admin.setViewportSize({ width: 1280, height: 1300 });
    await admin.evaluate(() => window.scrollTo(0, 0));
    await admin.screenshot({ path: join(SHOTS, "admin.png") });
    const before = Number(await badge(page));
    await send.getByRole("button", { name: "Send notification" }).click();
    await send.getByText("Sent to 1 person.").waitFor();
    await waitBadge(page, before + 1);

    await page.reload();
    const banner = page.locator("#banner.banner-maintenance");
    await banner.waitFor();
    check((await banner.textContent()).includes("Scheduled maintenance tonight"), "user sees the admin's banner");
  });

  await step("an admin deactivates the banner", async () => {
    await admin.getByRole("button", { name: "Deactivate “Scheduled maintenance tonight”" }).click();
    await admin.getByRole("button", { name: "Activate “Scheduled maintenance tonight”" }).waitFor();
    await admin.locator("#banner").waitFor({ state: "detached" });
  });
  await adminCtx.close();

  await step("phone width (375 px): no horizontal scroll, the panel fits", async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, reducedMotion: "reduce" });
    const mobile = watch(await phone.newPage(), "phone");
    await signIn(mobile, USER);
    const wide = await mobile.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 375, `page is ${wide} px wide`);
    await mobile.locator("#bell").click();
    await mobile.locator("#panel .item").first().waitFor();
    const box = await mobile.locator("#panel").boundingBox();
    check(box.x >= 0 && box.x + box.width <= 375, `panel inside the screen: ${JSON.stringify(box)}`);
    await mobile.screenshot({ path: join(SHOTS, "inbox-phone.png") });
    await mobile.keyboard.press("Escape");
    await mobile.goto(BASE + "/#/preferences");
    await mobile.getByRole("switch").first().waitFor();
    const tableWidth = await mobile.locator("table.prefs").evaluate((t) => t.getBoundingClientRect().right);
    check(tableWidth <= 375, `the preferences table fits the screen (right edge at ${tableWidth} px)`);
    await mobile.screenshot({ path: join(SHOTS, "preferences-phone.png") });
    await phone.close();
  });

  await step("signing out returns to the form", async () => {
    await page.goto(BASE + "/");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to Tidings" }).waitFor();
    await page.reload();
    await page.getByRole("heading", { name: "Sign in to Tidings" }).waitFor();
  });
  await ctx.close();
} catch (error) {
  problems.push(error.message);
} finally {
  await browser.close();
}

for (const f of figures) console.log(`figure: ${f}`);
for (const p of problems) console.log(`problem: ${p}`);
console.log(`${passed} passed, ${problems.length} problems; screenshots in ${SHOTS}`);
process.exit(problems.length === 0 ? 0 : 1);
