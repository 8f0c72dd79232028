// A holder whose certificate expires in 40 days re-keys it in the browser (started by tests/browser.rs): the
// banner, the privacy notice, the rekey order and its payment, the document data with a copy of the document (one
// over 3 MB refused in the browser first), the terms signed with a TOTP code; an operator approves it in the console.
//
// Environment: PARAFA_BASE, PARAFA_OUTBOX, PARAFA_CLOCK_FILE, E2E_WORK (as journey.mjs), E2E_HOLDER_EMAIL,
// E2E_HOLDER_PASSWORD, E2E_HOLDER_TOTP, E2E_HOLDER_GIVEN, E2E_HOLDER_SURNAME, E2E_CREDENTIAL, E2E_PHOTO (a small
// PNG), E2E_BIG_PHOTO (over 3 MB), E2E_OPERATOR_EMAIL / _PASSWORD / _TOTP. Prints one JSON line at the end.
import { env, launch, totp, step, shoot, fillOrderForm, scrollToEnd, logIn, throughConsents, a11y } from "./lib.mjs";

const BASE = env("PARAFA_BASE");
const WORK = env("E2E_WORK");
const clock = totp.clock(env("PARAFA_CLOCK_FILE"));
const cred = env("E2E_CREDENTIAL");
const report = {};

const { browser, page, problems } = await launch(BASE, "en-US");
try {
  await step(page, WORK, "login", async () => {
    await logIn(page, BASE, env("E2E_HOLDER_EMAIL"), env("E2E_HOLDER_PASSWORD"), () => clock.fresh(env("E2E_HOLDER_TOTP")));
    // A holder made by the CLI has not given the first-login consents yet.
    await throughConsents(page, /^\/$/);
  });

  await step(page, WORK, "the banner and the privacy notice", async () => {
    await page.goto(`${BASE}/certificates`);
    report.banner = (await page.textContent(`#banner-${cred}`)).trim();
    await shoot(page, "certificates-expiring");
    await page.click(`#rekey-${cred}`);
    await page.waitForSelector("#rekey-notice-form");
    await scrollToEnd(page, "#privacy-text");
    await page.check("#rekey-privacy");
    await page.click("#rekey-order");
    await page.waitForSelector("#order-form");
  });

  let orderId;
  await step(page, WORK, "the rekey order and its payment", async () => {
    await fillOrderForm(page);
    await page.click("#order-submit");
    await page.waitForSelector("#pay-button");
    orderId = page.url().match(/orders\/([^/?#]+)/)[1];
    await page.click("#pay-button");
    await page.waitForURL(new RegExp(`/orders/${orderId}(?:[?#].*)?$`));
    await page.click(`#rekey-${orderId}`);
    await page.waitForSelector("#rekey-start-form");
  });

  await step(page, WORK, "the document data and its copy", async () => {
    await scrollToEnd(page, "#privacy-text");
    await page.check("#rekey-privacy");
    await page.click("#rekey-start");
    await page.waitForSelector("#rekey-identity-form");
    await fillIfEditable(page, "#rekey-given-name", env("E2E_HOLDER_GIVEN"));
    await fillIfEditable(page, "#rekey-surname", env("E2E_HOLDER_SURNAME"));
    await page.fill("#rekey-series", "CJ");
    await page.fill("#rekey-number", "654321");
    await page.fill("#rekey-issued-on", "2020-01-10");
    await page.fill("#rekey-expires-on", "2035-01-10");
    await page.fill("#rekey-issuer", "SPCLEP Cluj-Napoca");
    // Over 3 MB: refused in the browser with the rule's message, before anything is sent.
    await page.setInputFiles("#rekey-photo", env("E2E_BIG_PHOTO"));
    await page.click("#rekey-identity-submit");
    await page.waitForSelector("#rekey-photo-error:not(:empty)");
    report.photo_error = (await page.textContent("#rekey-photo-error")).trim();
    await page.setInputFiles("#rekey-photo", env("E2E_PHOTO"));
    await shoot(page, "rekey-document");
    await page.click("#rekey-identity-submit");
    await page.waitForSelector("#rekey-submit-form");
  });

  await step(page, WORK, "the terms, signed with a code", async () => {
    await scrollToEnd(page, "#rekey-terms-text");
    await page.check("#rekey-terms");
    await page.fill("#rekey-totp", clock.fresh(env("E2E_HOLDER_TOTP")));
    await page.click("#rekey-submit");
    await page.waitForSelector("#rekey-status");
    report.submitted = (await page.textContent("#rekey-status")).trim();
  });

  await step(page, WORK, "the operator approves", async () => {
    const op = await browser.newContext({ locale: "en-US" });
    const p = await op.newPage();
    p.on("pageerror", (e) => problems.push(`operator page error: ${e.message}`));
    await logIn(p, BASE, env("E2E_OPERATOR_EMAIL"), env("E2E_OPERATOR_PASSWORD"), () => clock.fresh(env("E2E_OPERATOR_TOTP")));
    await p.waitForURL(/\/operator/);
    const button = await p.waitForSelector("[id^='approve-rekey-']");
    const id = (await button.getAttribute("id")).slice("approve-rekey-".length);
    await shoot(p, "operator-rekey");
    await button.click();
    await p.waitForFunction((sel) => !document.querySelector(sel), `#approve-rekey-${id}`);
    await op.close();
  });

  await step(page, WORK, "the holder sees the successor's date", async () => {
    await page.goto(`${BASE}/certificates`);
    report.state = (await page.textContent(`#rekey-state-${cred}`)).trim();
    await shoot(page, "certificates-rekey-approved");
  });
} finally {
  await browser.close();
}
report.a11y = a11y;
if (problems.length) {
  console.error("browser problems:\n" + problems.join("\n"));
  process.exitCode = 1;
}
console.log(JSON.stringify(report));

async function fillIfEditable(p, selector, value) {
  const readonly = await p.$eval(selector, (e) => e.readOnly);
  if (!readonly) await p.fill(selector, value);
}
