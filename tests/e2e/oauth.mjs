// The holder's browser in the OAuth 2.0 dance of a third-party application (tests/python/oauth_app.py, driven by
// tests/api/oauth.rs): opens the authorization URL the application made, logs in (password, then the
// authenticator code), reads the consent page, types the code when the application asks to sign, allows, and
// follows the redirect to the application's loopback address. Prints a JSON report; exits non-zero on failure.
import { launch, totp, step, shoot, a11y } from "./lib.mjs";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const URL_ = env("OAUTH_URL");
const BASE = env("PARAFA_BASE");
const WORK = env("E2E_WORK");
const holder = { email: env("E2E_HOLDER_EMAIL"), password: env("E2E_HOLDER_PASSWORD"), secret: env("E2E_HOLDER_TOTP") };
const clock = totp.clock(env("PARAFA_CLOCK_FILE"));

const { browser, page, problems } = await launch(BASE, "en-GB");
const report = {};
try {
  await step(page, WORK, "authorization URL → login", async () => {
    await page.goto(URL_);
    await page.waitForURL((u) => u.pathname === "/login");
    await page.fill("#email", holder.email);
    await page.fill("#password", holder.password);
    await page.click("#login button[type=submit]");
    await page.waitForSelector("#totp-box:not(.hidden)");
    await page.fill("#totp", clock.fresh(holder.secret));
    await page.click("#login button[type=submit]");
  });
  await step(page, WORK, "consent page", async () => {
    await page.waitForSelector("#oauth-consent");
    report.client = (await page.innerText("#oauth-client")).trim();
    report.signatures = (await page.$("#oauth-signatures")) ? (await page.innerText("#oauth-signatures")).trim() : null;
    report.documents = (await page.$("#oauth-documents")) ? (await page.innerText("#oauth-documents")).trim() : null;
    if (await page.$("#oauth-otp")) {
      await page.fill("#oauth-otp", clock.fresh(holder.secret));
      await shoot(page, "oauth-consent");
    }
    const back = page.waitForURL((u) => u.pathname === "/callback" && !u.href.startsWith(BASE));
    await page.click("#oauth-allow-button");
    await back;
    report.redirected = page.url();
  });
} finally {
  await browser.close();
}
report.a11y = a11y;
if (a11y.length) problems.push(`axe-core found serious or critical accessibility violations: ${JSON.stringify(a11y)}`);
if (problems.length) {
  console.log(JSON.stringify({ ...report, problems }));
  process.exit(1);
}
console.log(JSON.stringify(report));
