// Helpers of the browser journeys: Chromium, TOTP codes on the test clock, the outbox, screenshots, drawing.
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

// axe-core (Deque's accessibility engine, from npm) judges every page the journeys end a step on.
const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/// A required environment variable (the Rust test that starts the script sets it).
export const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};

/// Headless Debian Chromium with a fresh profile; collects page errors and CSP violations as problems. The window is
/// a laptop's 1280 × 900, or a phone's when E2E_VIEWPORT says so (`390x844`: a touch screen at twice the density).
export async function launch(base, locale) {
  const phone = /^(\d+)x(\d+)$/.exec(process.env.E2E_VIEWPORT || "");
  const screen = phone
    ? { viewport: { width: +phone[1], height: +phone[2] }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 }
    : { viewport: { width: 1280, height: 900 } };
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ locale, acceptDownloads: true, ...screen });
  context.setDefaultTimeout(20_000);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    const text = m.text();
    if (m.type() === "error" || m.type() === "warning") console.error(`browser ${m.type()}: ${text}`);
    if (text.includes("Content Security Policy") || text.includes("Content-Security-Policy")) {
      problems.push(`CSP violation: ${text}`);
    }
  });
  return { browser, context, page, problems };
}

/// RFC 6238 codes (SHA-1, 6 digits, 30 s) on the server's test clock.
export const totp = {
  code(secretBase32, unixSeconds) {
    const key = base32(secretBase32);
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
    const mac = crypto.createHmac("sha1", key).update(counter).digest();
    const o = mac[mac.length - 1] & 0x0f;
    const n = ((mac[o] & 0x7f) << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3];
    return String(n % 1_000_000).padStart(6, "0");
  },
  /// The test clock in `file` (an offset in seconds the server adds to the real time).
  clock(file) {
    const offset = () => parseInt(fs.readFileSync(file, "utf8").trim() || "0", 10);
    return {
      offset,
      now: () => Date.now() / 1000 + offset(),
      /// Moves the clock on by `secs`.
      advance(secs) {
        const tmp = `${file}.tmp`;
        fs.writeFileSync(tmp, String(offset() + secs));
        fs.renameSync(tmp, file);
      },
      /// Moves the clock one step on, then gives the code of that step (each step is accepted once).
      fresh(secret) {
        this.advance(30);
        return totp.code(secret, Date.now() / 1000 + offset());
      },
    };
  },
};

function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of s.replace(/=+$/, "").toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) continue;
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/// The server's outbox: one text file per message, starting with "To: <recipient>".
export class Outbox {
  constructor(dir) {
    this.dir = dir;
    this.seen = new Set();
  }

  /// The newest message to `recipient` not returned before (waits up to 10 s for one).
  async latest(recipient) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const files = fs.existsSync(this.dir)
        ? fs.readdirSync(this.dir).filter((f) => f.endsWith(".txt")).sort()
        : [];
      const mine = files
        .filter((f) => !this.seen.has(f))
        .map((f) => [f, fs.readFileSync(path.join(this.dir, f), "utf8")])
        .filter(([, t]) => t.startsWith(`To: ${recipient}\n`));
      if (mine.length) {
        for (const [f] of mine) this.seen.add(f);
        return mine[mine.length - 1][1];
      }
      if (Date.now() > deadline) throw new Error(`no new message to ${recipient} in ${this.dir}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  /// The one-time code in a message: the last run of 6 to 8 digits.
  static code(text) {
    const body = text.split("\n\n").slice(1).join("\n\n") || text;
    const all = body.match(/\b\d{6,8}\b/g);
    if (!all) throw new Error(`no code in: ${text}`);
    return all[all.length - 1];
  }

  /// The link in a message whose path starts with `prefix`, on this server.
  localLink(text, base, prefix) {
    const links = text.match(/https?:\/\/[^\s>"')]+/g) || [];
    for (const l of links) {
      const u = new URL(l);
      if (u.pathname.startsWith(prefix)) return base + u.pathname + u.search;
    }
    throw new Error(`no ${prefix} link in: ${text}`);
  }
}

/// Runs one step; on failure saves a screenshot and the page's text in `work`, and says which step failed.
export async function step(page, work, name, fn) {
  const t = Date.now();
  try {
    await fn();
    console.error(`ok: ${name} (${Date.now() - t} ms)`);
    await checkA11y(page);
    // Every step's last page is measured: none may scroll sideways.
    const w = await pageWidth(page).catch(() => null);
    if (w && w.scrollWidth > w.innerWidth) {
      sideways.push({
        step: name, path: new URL(page.url()).pathname, viewport: w.innerWidth, scrollWidth: w.scrollWidth,
        culprits: w.culprits,
      });
    }
  } catch (e) {
    const file = path.join(work, `failed-${name.replace(/\W+/g, "-")}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    const text = await page.innerText("body").catch(() => "");
    throw new Error(`step "${name}" failed at ${page.url()}: ${e.message}\nscreenshot: ${file}\npage text: ${text.slice(0, 2000)}`);
  }
}

/// The serious and critical accessibility violations axe-core found (WCAG 2.1 A and AA rules), one entry per page
/// and rule: path, viewport width, rule id, impact, help text and the first offending elements.
export const a11y = [];
/// The pages (path and viewport width) already judged: each is judged once.
const judged = new Set();

/// Runs axe-core on the page as it is now, once per path and viewport width, and records what it finds in `a11y`.
/// axe is evaluated through the DevTools protocol, so the pages' Content-Security-Policy stays as strict as it is.
export async function checkA11y(page) {
  let url;
  try {
    url = new URL(page.url());
  } catch {
    return;
  }
  // Parafa's pages only (not, say, a third-party application's page the OAuth dance ends on).
  if (process.env.PARAFA_BASE && url.origin !== new URL(process.env.PARAFA_BASE).origin) return;
  const width = page.viewportSize()?.width ?? 0;
  const key = `${url.pathname}@${width}`;
  if (judged.has(key)) return;
  judged.add(key);
  const found = await (async () => {
    // The source as a script of its own (not eval() inside the page, which the CSP forbids).
    if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(AXE_SOURCE);
    return page.evaluate(async () => {
      const r = await window.axe.run(document, {
        runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
        resultTypes: ["violations"],
      });
      return r.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
    });
  })().catch((e) => {
    // The page moved on while axe ran (a redirect after a form): judged again where the next step ends.
    if (/context was destroyed|navigat/i.test(String(e))) {
      judged.delete(key);
      return [];
    }
    return [{ id: "axe-failed", impact: "critical", help: String(e), nodes: [] }];
  });
  for (const v of found) a11y.push({ path: url.pathname, viewport: width, ...v });
}

/// How wide the page is laid out against its window: `scrollWidth > innerWidth` means it scrolls sideways.
export async function pageWidth(page) {
  return page.evaluate(() => {
    const innerWidth = window.innerWidth;
    // The outermost elements that reach past the window's right edge: what to look at when a page is too wide.
    const past = [...document.body.querySelectorAll("*")].filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5);
    const culprits = past
      .filter((e) => !past.includes(e.parentElement))
      .slice(0, 5)
      .map((e) => {
        const id = e.id ? `#${e.id}` : "";
        const cls = typeof e.className === "string" && e.className ? `.${e.className.trim().split(/\s+/).join(".")}` : "";
        return `${e.tagName.toLowerCase()}${id}${cls} (${Math.round(e.getBoundingClientRect().right)} px)`;
      });
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth, culprits };
  });
}

/// The pages the steps ended on that scrolled sideways (path, viewport width, scrollWidth), for the report.
export const sideways = [];

/// Saves a screenshot of the page as <name>.png when E2E_SCREENSHOTS names a directory.
export async function shoot(page, name) {
  const dir = process.env.E2E_SCREENSHOTS;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

/// Draws a rectangle with the mouse on the canvas of the preview `selector`, at fractions of its size (from the top
/// left); returns where it should land in PDF user space, assuming the preview shows page `data-page` (default 0)
/// of an unrotated page whose size the preview gives in `data-page-width`/`data-page-height` points (A4 if absent).
export async function drawRectangle(page, selector, frac) {
  const canvas = await page.waitForSelector(`${selector} canvas`);
  const box = await canvas.boundingBox();
  const x1 = box.x + box.width * frac.x;
  const y1 = box.y + box.height * frac.y;
  const x2 = x1 + box.width * frac.w;
  const y2 = y1 + box.height * frac.h;
  await page.mouse.move(x1, y1);
  await page.mouse.down();
  await page.mouse.move((x1 + x2) / 2, (y1 + y2) / 2, { steps: 4 });
  await page.mouse.move(x2, y2, { steps: 4 });
  await page.mouse.up();
  const info = await page.$eval(selector, (el) => ({
    page: parseInt(el.dataset.page || "1", 10),
    w: parseFloat(el.dataset.pageWidth || "595"),
    h: parseFloat(el.dataset.pageHeight || "842"),
  }));
  const px = (f) => f * info.w;
  const py = (f) => info.h - f * info.h;
  return {
    // 0-based, as pyHanko's report gives it (the preview's data-page counts from 1).
    page: info.page - 1,
    rect: [px(frac.x), py(frac.y + frac.h), px(frac.x + frac.w), py(frac.y)],
  };
}

/// Fills the order form (`/orders/new`): the three acknowledgements, an invoice to the person, an address in Cluj.
export async function fillOrderForm(page) {
  for (const ack of ["#ack-1", "#ack-2", "#ack-3"]) await page.check(ack);
  await page.check("#invoice-person");
  for (const [id, v] of [
    ["county", "Cluj"], ["locality", "Cluj-Napoca"], ["street", "Memorandumului"], ["number", "28"],
    ["building", "-"], ["entrance", "-"], ["apartment", "-"], ["postal-code", "400114"],
  ]) {
    await page.fill(`#invoice-${id}`, v);
  }
  await page.check("#invoice-confirm-person");
}

/// Scrolls an element to its end (what a reader does before a scroll-gated checkbox is enabled).
export async function scrollToEnd(page, selector) {
  await page.$eval(selector, (e) => {
    e.scrollTop = e.scrollHeight;
    e.dispatchEvent(new Event("scroll"));
  });
}

/// The login form: e-mail and password; then, when `code` is given (a function giving a fresh TOTP code), the
/// authenticator code the form asks for. `shot` names the screenshots of the two steps.
export async function logIn(page, base, email, password, code, shot) {
  await page.goto(`${base}/login`);
  await page.fill("#email", email);
  await page.fill("#password", password);
  if (shot) await shoot(page, shot);
  await page.click("#login button[type=submit]");
  if (!code) return;
  await page.waitForSelector("#totp-box:not(.hidden)");
  await page.fill("#totp", code());
  if (shot) await shoot(page, `${shot}-code`);
  await page.click("#login button[type=submit]");
}

/// Answers the consent screens a holder meets after login until the page's path matches `target`.
export async function throughConsents(page, target) {
  for (let i = 0; i < 4; i++) {
    await page.waitForURL((u) => target.test(u.pathname) || u.pathname.startsWith("/consent"));
    if (target.test(new URL(page.url()).pathname)) return;
    const moved = page.waitForNavigation();
    if (await page.$("#consent-allow")) {
      await shoot(page, "consent");
      await page.click("#consent-allow");
    } else {
      await scrollToEnd(page, "#privacy-notice");
      await page.check("#privacy-ack");
      await shoot(page, "privacy-notice");
      await page.click("#privacy-accept");
    }
    await moved;
  }
  throw new Error(`never reached ${target}`);
}
