// A new user, from enrolment to SignedFiles.zip, in headless Chromium (started by tests/browser.rs).
//
// Environment: PARAFA_BASE (the server), PARAFA_OUTBOX (where it "sends" e-mails and SMS), PARAFA_CLOCK_FILE (the
// test clock's offset: moved one TOTP step before each code, as if the holder waited for the next code), E2E_WORK
// (downloads, failure screenshots), E2E_PDF / E2E_XFA / E2E_TXT (the files to sign), E2E_OPERATOR_* (an operator
// made by the CLI), E2E_LOCALE (the browser's language, en-US by default), E2E_SCREENSHOTS (optional: where the
// main pages' screenshots go).
// Prints one JSON line at the end: {"zip": path, "rect": {"page": i, "rect": [x1, y1, x2, y2]}, "xfa_message": …,
// "sideways": the pages a step ended on that scrolled sideways at 1280 px, "a11y": the serious or critical
// accessibility violations axe-core found on them}.
import path from "node:path";
import {
  env, launch, totp, Outbox, step, shoot, drawRectangle, fillOrderForm, scrollToEnd, logIn, throughConsents, sideways,
  a11y,
} from "./lib.mjs";

const BASE = env("PARAFA_BASE");
const WORK = env("E2E_WORK");
const outbox = new Outbox(env("PARAFA_OUTBOX"));
const clock = totp.clock(env("PARAFA_CLOCK_FILE"));

const person = {
  given: "Ioana",
  surname: "Dumitrescu",
  email: "ioana.dumitrescu@example.com",
  phone: "+40723456789",
  password: "Frunze galbene pe Dâmbovița 2026!",
  cnp: "2900101221142",
};

const LOCALE = process.env.E2E_LOCALE || "en-US";
const { browser, page, problems } = await launch(BASE, LOCALE);
const report = { langs: [] };
// The language of every page the holder saw (the pages follow the browser's language).
page.on("load", async () => {
  const lang = await page.getAttribute("html", "lang").catch(() => null);
  if (lang && !report.langs.includes(lang)) report.langs.push(lang);
});

try {
  await step(page, WORK, "enrolment", async () => {
    await page.goto(`${BASE}/enrol`);
    await page.fill("#enrol-given-name", person.given);
    await page.fill("#enrol-surname", person.surname);
    await page.fill("#enrol-email", person.email);
    await page.fill("#enrol-phone", person.phone);
    await scrollToEnd(page, "#enrol-privacy-notice");
    await page.check("#enrol-privacy");
    await shoot(page, "enrolment");
    await page.click("#enrol-submit");
    await page.waitForSelector("#enrol-sent:not(.hidden)");
  });

  await step(page, WORK, "activation", async () => {
    const mail = await outbox.latest(person.email);
    await page.goto(outbox.localLink(mail, BASE, "/invitations/"));
    await page.fill("#invitation-phone-input", person.phone);
    await page.click("#invitation-phone-submit");
    const sms = await outbox.latest(person.phone);
    await page.fill("#invitation-code-input", Outbox.code(sms));
    await shoot(page, "activation-code");
    await page.click("#invitation-code-submit");
    await page.fill("#invitation-password-input", person.password);
    await page.fill("#invitation-password-confirm", person.password);
    await shoot(page, "activation-password");
    await page.click("#invitation-password-submit");
    await page.waitForSelector("#invitation-done:not(.hidden)");
  });

  await step(page, WORK, "login and pairing", async () => {
    await logIn(page, BASE, person.email, person.password, undefined, "login");
    // The one-time consent screen and the privacy notice (read to its end), then 2FA is due: set it up now.
    await throughConsents(page, /\/2fa/);
    await shoot(page, "two-factor");
    await page.click("#setup-2fa");
    await page.waitForURL(/\/pairing/);
    await page.click("#pairing-start-button");
    await page.check("#pairing-app-installed");
    const sms = await outbox.latest(person.phone);
    await page.fill("#pairing-sms-code", Outbox.code(sms));
    await page.click("#pairing-sms-submit");
    await page.waitForSelector("#totp-secret:not(:empty)");
    person.secret = (await page.textContent("#totp-secret")).replace(/\s+/g, "");
    await shoot(page, "pairing-qr");
    await page.fill("#pairing-code", clock.fresh(person.secret));
    await page.click("#pairing-activate-submit");
    await page.waitForSelector("#pairing-done:not(.hidden)");
    // The secret was shown once: a reload does not show it again.
    await page.reload();
    const again = await page.textContent("body");
    if (again.includes(person.secret)) throw new Error("the TOTP secret is shown again after a reload");
  });

  await step(page, WORK, "login with the authenticator code", async () => {
    // Turning 2FA on ended every session: log in again, now with a code.
    await logIn(page, BASE, person.email, person.password, () => clock.fresh(person.secret), "login");
    await throughConsents(page, /^\/$/);
    await shoot(page, "home");
  });

  let orderId;
  await step(page, WORK, "order and payment", async () => {
    await page.goto(`${BASE}/packages`);
    await shoot(page, "packages");
    await page.click("[id^='order-package-']");
    await page.waitForSelector("#order-form");
    await fillOrderForm(page);
    await shoot(page, "order-form");
    await page.click("#order-submit");
    await page.waitForSelector("#pay-button");
    orderId = page.url().match(/orders\/([^/?#]+)/)[1];
    await shoot(page, "payment");
    await page.click("#pay-button");
    await page.waitForURL(new RegExp(`/orders/${orderId}(?:[?#].*)?$`));
  });

  await step(page, WORK, "identification", async () => {
    await page.click(`#identify-${orderId}`);
    await page.waitForSelector("#identity-form");
    await page.selectOption("#doc-type", { index: 0 });
    await page.fill("#doc-given-name", person.given);
    await page.fill("#doc-surname", person.surname);
    await page.fill("#doc-personal-number", person.cnp);
    await fillIfPresent(page, "#doc-series", "RX");
    await page.fill("#doc-number", "123456");
    await fillIfPresent(page, "#doc-issuer", "SPCLEP București");
    await fillDate(page, "#doc-issued-on", -365 * 2);
    await fillDate(page, "#doc-expires-on", 365 * 5);
    for (const c of ["#consent-privacy", "#consent-biometric", "#consent-captures", "#consent-recording"]) {
      await page.check(c);
    }
    await shoot(page, "identification");
    await page.click("#identity-submit");
    await page.waitForSelector("#identity-done:not(.hidden)");
  });

  await step(page, WORK, "the operator accepts", async () => {
    const op = await browser.newContext({ locale: "ro-RO", acceptDownloads: true });
    const opPage = await op.newPage();
    opPage.on("pageerror", (e) => problems.push(`operator page error: ${e.message}`));
    const secret = env("E2E_OPERATOR_TOTP");
    await logIn(opPage, BASE, env("E2E_OPERATOR_EMAIL"), env("E2E_OPERATOR_PASSWORD"), () => clock.fresh(secret));
    await opPage.waitForURL(/\/operator/);
    const row = await opPage.waitForSelector("[id^='identity-']:has([id^='accept-'])");
    const id = (await row.getAttribute("id")).slice("identity-".length);
    await shoot(opPage, "operator-console");
    await opPage.click(`#accept-${id}`);
    await opPage.waitForFunction((sel) => !document.querySelector(sel), `#accept-${id}`);
    await op.close();
  });

  await step(page, WORK, "certificate issuance", async () => {
    await page.goto(`${BASE}/orders`);
    await page.click(`#issue-${orderId}`);
    await page.waitForSelector("#issue-form");
    await scrollToEnd(page, "#issue-terms-text");
    await page.check("#issue-terms");
    await page.fill("#issue-totp", clock.fresh(person.secret));
    await shoot(page, "certificate-issuance");
    await page.click("#issue-submit");
    await page.waitForURL(/\/certificates/);
    await shoot(page, "certificates");
  });

  await step(page, WORK, "an XFA form is refused on upload", async () => {
    await page.goto(`${BASE}/sign`);
    await page.setInputFiles("#sign-files", env("E2E_XFA"));
    await page.click("#sign-upload");
    const error = await page.waitForSelector("[id^='sign-file-error-']:not(:empty), #sign-error:not(:empty)");
    report.xfa_message = (await error.textContent()).trim();
  });

  await step(page, WORK, "signing", async () => {
    await page.goto(`${BASE}/sign`);
    await page.setInputFiles("#sign-files", [env("E2E_PDF"), env("E2E_TXT")]);
    await page.waitForSelector(".preview[data-file-index='0'] canvas");
    report.rect = await drawRectangle(page, ".preview[data-file-index='0']", { x: 0.45, y: 0.78, w: 0.4, h: 0.1 });
    await shoot(page, "sign-upload");
    await page.click("#sign-upload");
    await page.waitForSelector("#sign-totp:visible");
    await page.fill("#sign-totp", clock.fresh(person.secret));
    const download = page.waitForEvent("download", { timeout: 60_000 });
    await page.click("#sign-submit");
    const zip = await download;
    report.zip = path.join(WORK, "SignedFiles.zip");
    await zip.saveAs(report.zip);
    await page.waitForSelector("#sign-zip");
    await shoot(page, "signed");
    // The signed PDF alone, then checked on the public verification page.
    const one = page.waitForEvent("download");
    await page.click("#sign-file-0");
    report.signed_pdf = path.join(WORK, "signed-alone.pdf");
    await (await one).saveAs(report.signed_pdf);
    await page.goto(`${BASE}/verify`);
    await page.setInputFiles("#verify-file", report.signed_pdf);
    await page.click("#verify-submit");
    await page.waitForSelector("#verify-result:not(.hidden) #verify-signatures :first-child");
    report.verified = (await page.innerText("#verify-result")).trim();
    await shoot(page, "verify");
    await page.goto(`${BASE}/signatures`);
    await shoot(page, "history");
  });

  await step(page, WORK, "re-pairing from the login prompt", async () => {
    // Another browser, logged out, a day later: the phone with the app is lost (and the SMS cool-down is over).
    clock.advance(24 * 3600);
    const ctx = await browser.newContext({ locale: LOCALE });
    const p = await ctx.newPage();
    p.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    await logIn(p, BASE, person.email, person.password);
    await p.waitForSelector("#totp-box:not(.hidden)");
    await p.click("#lost-app");
    await p.waitForURL(/\/pairing\/lost/);
    await p.fill("#lost-email", person.email);
    await p.fill("#lost-password", person.password);
    await p.click("#pairing-start-button");
    const sms = await outbox.latest(person.phone);
    await p.fill("#pairing-sms-code", Outbox.code(sms));
    await p.check("#pairing-app-installed");
    await p.click("#pairing-sms-submit");
    await p.waitForSelector("#totp-secret:not(:empty)");
    const fresh = (await p.textContent("#totp-secret")).replace(/\s+/g, "");
    if (fresh === person.secret) throw new Error("the re-pairing showed the old secret");
    await shoot(p, "pairing-lost");
    await p.fill("#pairing-code", clock.fresh(fresh));
    await p.click("#pairing-activate-submit");
    await p.waitForSelector("#pairing-done:not(.hidden)");
    // The new app logs in.
    await logIn(p, BASE, person.email, person.password, () => clock.fresh(fresh));
    await throughConsents(p, /^\/$/);
    report.repaired = true;
    await ctx.close();
  });
} finally {
  await browser.close();
}

report.sideways = sideways;
report.a11y = a11y;
if (problems.length) {
  console.error("browser problems:\n" + problems.join("\n"));
  process.exitCode = 1;
}
console.log(JSON.stringify(report));

async function fillIfPresent(p, selector, value) {
  if (await p.$(selector)) await p.fill(selector, value);
}

async function fillDate(p, selector, days) {
  const d = new Date(Date.now() + (clock.offset() + days * 86400) * 1000);
  await p.fill(selector, d.toISOString().slice(0, 10));
}

