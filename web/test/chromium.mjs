// Debian's Chromium, driven by playwright-core (which never downloads a browser): for the
// browser test and the benchmark. PLAYWRIGHT_CORE names the folder playwright-core is
// installed in (.ci/run caches it outside the clone); CHROMIUM the browser (/usr/bin/chromium).
import { createRequire } from "node:module";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export async function launch() {
  const from = process.env.PLAYWRIGHT_CORE ?? process.cwd();
  const require = createRequire(join(from, "node_modules", "x.js"));
  let playwright;
  try {
    playwright = require("playwright-core");
  } catch {
    throw new Error(
      `playwright-core is not installed under ${from}: npm install --prefix DIR playwright-core, then set PLAYWRIGHT_CORE=DIR`,
    );
  }
  // As root on a closed network: no sandbox, and none of Chromium's own connections.
  const userDataDir = mkdtempSync(join(tmpdir(), "wdiv-chromium-"));
  const context = await playwright.chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1000, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  // Its processes carry this folder on their command lines (the benchmark finds them by it).
  context.userDataDir = userDataDir;
  return context;
}

/** Opens the page at `origin` and waits until its engine has started (its version is shown). */
export async function openPage(page, origin) {
  await page.goto(`${origin}/index.html`);
  await page.waitForFunction(() => /wdiv-checks \d/.test(document.getElementById("engine-version").textContent));
}
