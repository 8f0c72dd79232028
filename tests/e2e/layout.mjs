// No page scrolls sideways (started by tests/browser.rs): the public pages, then a holder's pages once logged in,
// each at 1280 × 900 and at a phone's 390 × 844, measured as `document.documentElement.scrollWidth <=
// window.innerWidth` once loaded. Wide content (tables, registry results) must scroll inside its own container.
//
// Environment: PARAFA_BASE, PARAFA_CLOCK_FILE, E2E_WORK (as journey.mjs), E2E_HOLDER_EMAIL, E2E_HOLDER_PASSWORD,
// E2E_HOLDER_TOTP, E2E_REGISTRY_Q (a registry search that finds the holder). Prints one JSON line at the end:
// `measured` (every page and width seen) and `sideways` (the offenders: path, viewport, scrollWidth, and the
// outermost elements reaching past the window's edge), and `a11y`: what axe-core judged a serious or critical
// accessibility violation on each page and width.
import { env, launch, totp, step, logIn, throughConsents, pageWidth, checkA11y, a11y } from "./lib.mjs";

const BASE = env("PARAFA_BASE");
const WORK = env("E2E_WORK");
const clock = totp.clock(env("PARAFA_CLOCK_FILE"));
const VIEWPORTS = [
  { width: 1280, height: 900 },
  { width: 390, height: 844 },
];
const PUBLIC = [
  "/",
  "/verify",
  `/registry?q=${encodeURIComponent(env("E2E_REGISTRY_Q"))}`,
  "/packages",
  "/legal",
  "/privacy",
  "/login",
  "/enrol",
  "/contact",
  "/no-such-page",
];
const HOLDER = ["/", "/sign", "/signatures", "/certificates", "/orders", "/packages", "/settings"];
const report = { measured: [], sideways: [] };

/// Visits every path at every viewport and records its width.
async function measure(page, paths, who) {
  for (const viewport of VIEWPORTS) {
    await page.setViewportSize(viewport);
    for (const path of paths) {
      await page.goto(`${BASE}${path}`);
      await page.waitForLoadState("load");
      await checkA11y(page);
      const w = await pageWidth(page);
      const seen = { who, path, viewport: viewport.width, scrollWidth: w.scrollWidth, at: new URL(page.url()).pathname };
      report.measured.push(seen);
      if (w.scrollWidth > w.innerWidth) report.sideways.push({ ...seen, culprits: w.culprits });
    }
  }
}

const { browser, page, problems } = await launch(BASE, "en-US");
try {
  await step(page, WORK, "the public pages", () => measure(page, PUBLIC, "visitor"));
  await step(page, WORK, "login", async () => {
    await page.setViewportSize(VIEWPORTS[0]);
    await logIn(page, BASE, env("E2E_HOLDER_EMAIL"), env("E2E_HOLDER_PASSWORD"), () => clock.fresh(env("E2E_HOLDER_TOTP")));
    await throughConsents(page, /^\/(sign)?$/);
  });
  await step(page, WORK, "a holder's pages", () => measure(page, HOLDER, "holder"));
  report.problems = problems;
  report.a11y = a11y;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
