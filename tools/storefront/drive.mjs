// The walk: the original storefront, driven in chromium against our services, from
// the landing page to a placed order (as a shopper) and the admin's forms. Each
// step takes a screenshot, records every request to our ports with our answer, and
// fails on an unexpected 4xx/5xx, a console error or an error the page shows.
// Run through run.sh (it builds and serves the client and starts the services).
import puppeteer from 'puppeteer-core';
import { mkdir } from 'node:fs/promises';
import { shopperSteps } from './shopper.mjs';
import { adminSteps } from './admin.mjs';
import { config, Recorder, Walk } from './lib.mjs';

async function main() {
  await mkdir(config.shots, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: config.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  let walk;
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1366, height: 900 });
    page.setDefaultTimeout(config.waitMs);
    walk = new Walk(page, new Recorder(page));
    const state = { runId: Date.now().toString(36) };
    await shopperSteps(walk, page, state);
    await adminSteps(walk, page, state);
  } finally {
    await browser.close();
  }
  await walk.writeReport();
  const count = (v) => walk.results.filter((r) => r.verdict === v).length;
  console.log(`\n${count('pass')} passed, ${count('fail')} failed, `
    + `${count('client-defect')} client-defect, ${count('skipped')} skipped (report: ${config.shots}/report.md)`);
  return count('fail') === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (err) => {
  console.error(err);
  process.exit(2);
});
