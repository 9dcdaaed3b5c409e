// End-to-end test of the admin dashboard in a real (headless) Chromium.
//
// Run by a Rust test with `node e2e.mjs` once a gateway is up. Everything comes from the environment:
//   BLASTDOOR_ADMIN_URL      admin listener, e.g. http://127.0.0.1:9090
//   BLASTDOOR_ADMIN_TOKEN    admin bearer token
//   BLASTDOOR_PROXY_URL      proxy listener, e.g. http://127.0.0.1:8080
//   BLASTDOOR_API_KEY        an API key that may call BLASTDOOR_CALL_PATH
//   BLASTDOOR_CALL_PATH      a metered path on the proxy, e.g. /imagegen/v1/images/generations
//   BLASTDOOR_CALL_BODY      JSON body to POST there (empty: GET)
//   BLASTDOOR_SERVICE        the service that path belongs to
//   BLASTDOOR_BUDGET_TARGET  target of a budget the calls spend from
//   BLASTDOOR_SCREENSHOTS    directory for PNGs and the exported CSV
//   BLASTDOOR_CHROMIUM       browser executable (default /usr/bin/chromium)
//   BLASTDOOR_E2E_TIMEOUT_MS bound of each wait (default 20000)
// Prints one line per passed step; exits 1 naming the failed step otherwise.

import { chromium } from 'playwright-core';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

function need(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    console.error(`e2e: environment variable ${name} is required`);
    process.exit(1);
  }
  return v;
}

const ADMIN_URL = need('BLASTDOOR_ADMIN_URL').replace(/\/+$/, '');
const ADMIN_TOKEN = need('BLASTDOOR_ADMIN_TOKEN');
const PROXY_URL = need('BLASTDOOR_PROXY_URL').replace(/\/+$/, '');
const API_KEY = need('BLASTDOOR_API_KEY');
const CALL_PATH = need('BLASTDOOR_CALL_PATH');
const CALL_BODY = process.env.BLASTDOOR_CALL_BODY || '';
const SERVICE = need('BLASTDOOR_SERVICE');
const BUDGET_TARGET = need('BLASTDOOR_BUDGET_TARGET');
const SHOTS = need('BLASTDOOR_SCREENSHOTS');
const CHROMIUM = process.env.BLASTDOOR_CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = Number(process.env.BLASTDOOR_E2E_TIMEOUT_MS || 20000);
const TOTAL_MS = 240000;

class StepError extends Error {}

let currentStep = 'start';
let passed = 0;
let browser = null;
let page = null;
const problems = []; // console errors and uncaught page errors
let allow401 = false; // the wrong-token login is expected to log one 401

// Whatever happens, never hang the Rust test that runs us.
const guard = setTimeout(() => {
  console.error(`FAIL [${currentStep}]: the whole run took longer than ${TOTAL_MS / 1000} s`);
  process.exit(1);
}, TOTAL_MS);
guard.unref();

function fail(message) {
  throw new StepError(message);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a truthy value; fails the step with `what` after WAIT_MS. */
async function until(what, probe, { timeout = WAIT_MS, every = 200 } = {}) {
  const deadline = Date.now() + timeout;
  let last = 'no value yet';
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
      last = `last value: ${JSON.stringify(v)}`;
    } catch (e) {
      last = `last error: ${e.message.split('\n')[0]}`;
    }
    if (Date.now() >= deadline) fail(`${what} (waited ${timeout / 1000} s; ${last})`);
    await sleep(every);
  }
}

function checkNoProblems() {
  if (problems.length) fail(`the page logged errors:\n  ${problems.join('\n  ')}`);
}

async function step(name, fn) {
  currentStep = name;
  await fn();
  checkNoProblems();
  passed += 1;
  console.log(`ok ${passed} - ${name}`);
}

async function shot(file) {
  await page.screenshot({ path: path.join(SHOTS, file), fullPage: true });
}

async function callProxy(n) {
  const url = PROXY_URL + CALL_PATH;
  for (let i = 0; i < n; i += 1) {
    let resp;
    try {
      resp = await fetch(url, {
        method: CALL_BODY ? 'POST' : 'GET',
        headers: {
          Authorization: `Bearer ${API_KEY}`,
          ...(CALL_BODY ? { 'Content-Type': 'application/json' } : {}),
        },
        body: CALL_BODY || undefined,
        signal: AbortSignal.timeout(WAIT_MS),
      });
    } catch (e) {
      fail(`call ${i + 1}/${n} to ${url} failed: ${e.message}`);
    }
    const body = await resp.text();
    if (!resp.ok) fail(`call ${i + 1}/${n} to ${url} answered ${resp.status}: ${body.slice(0, 300)}`);
  }
}

async function textOf(selector) {
  return (await page.locator(selector).first().textContent({ timeout: 1000 })) || '';
}

async function totalRequests() {
  const text = (await textOf('#total-requests')).replace(/[,\s\u00a0]/g, '');
  if (!/^\d+$/.test(text)) throw new Error(`#total-requests holds ${JSON.stringify(text)}, not a number`);
  return Number(text);
}

async function usedPercent() {
  const sel = `.budget[data-target="${cssString(BUDGET_TARGET)}"]`;
  const v = await page.locator(sel).first().getAttribute('data-used-percent', { timeout: 1000 });
  const n = Number(v);
  if (v === null || !Number.isFinite(n)) throw new Error(`${sel} has data-used-percent=${JSON.stringify(v)}`);
  return n;
}

function cssString(s) {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

async function notReloaded() {
  const marker = await page.evaluate(() => window.__e2eMarker);
  if (marker !== 'still-here') fail('the page was reloaded (live refresh must update in place)');
}

async function openView(nav, view) {
  await page.click(nav);
  await until(`${view} to show after clicking ${nav}`, () => page.locator(view).isVisible());
}

async function main() {
  await mkdir(SHOTS, { recursive: true });

  await step('login: a wrong token is refused, the right one opens the overview', async () => {
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-dev-shm-usage'],
      });
    } catch (e) {
      fail(`could not launch ${CHROMIUM}: ${e.message.split('\n')[0]}`);
    }
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const text = msg.text();
      if (allow401 && /\b401\b/.test(text)) return;
      problems.push(`[${currentStep}] console error: ${text}`);
    });
    page.on('pageerror', (err) => problems.push(`[${currentStep}] uncaught: ${err.message}`));

    const resp = await page.goto(`${ADMIN_URL}/`, { waitUntil: 'load' });
    if (!resp || !resp.ok()) fail(`GET ${ADMIN_URL}/ answered ${resp ? resp.status() : 'nothing'}`);
    await until('the login form (#token) to show', () => page.locator('#token').isVisible());

    allow401 = true;
    await page.fill('#token', `wrong-${Date.now()}`);
    await page.click('#login');
    const err = await until('#login-error to show after a wrong token', async () =>
      (await page.locator('#login-error').isVisible()) && (await textOf('#login-error')).trim());
    if (await page.locator('#view-overview').isVisible()) fail('the overview showed with a wrong token');
    allow401 = false;
    if (!/401|reject|invalid|unauthori/i.test(err)) fail(`#login-error does not explain the refusal: ${JSON.stringify(err)}`);

    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login');
    await until('the overview (#view-overview) to show after the right token', () => page.locator('#view-overview').isVisible());
    await until('#total-requests to hold a number', async () =>
      (await page.locator('#total-requests[data-value]').count()) > 0 && (await totalRequests()) >= 0);
    await until('#updated to say when data last arrived', async () => /updated \d\d:\d\d:\d\d/.test(await textOf('#updated')));
    if (await page.locator('#login-view').isVisible()) fail('the login form is still shown after signing in');
    await page.evaluate(() => { window.__e2eMarker = 'still-here'; });
    await shot('01-overview-before.png');
  });

  await step('overview: 20 proxied calls show up in #total-requests without a reload', async () => {
    const before = await totalRequests();
    await callProxy(20);
    let now = before;
    await until(`#total-requests to grow by 20 from ${before}`, async () => {
      now = await totalRequests();
      return now >= before + 20;
    });
    await notReloaded();
    await sleep(300); // let the charts of the same refresh settle before the picture
    await shot('02-overview-traffic.png');
  });

  await step(`services: the detail of ${SERVICE} shows a healthy upstream`, async () => {
    await openView('#nav-services', '#view-services');
    const link = page.locator(`[data-service="${cssString(SERVICE)}"]`).first();
    await until(`the catalog link [data-service="${SERVICE}"] to show`, () => link.isVisible());
    await link.click();
    await until('#service-detail to show', () => page.locator('#service-detail').isVisible());
    await until(`#service-detail to name ${SERVICE}`, async () => (await textOf('#service-detail')).includes(SERVICE));
    await until('#service-detail to list a healthy upstream', async () => {
      const rows = page.locator('#service-detail .upstream[data-healthy="true"]');
      return (await rows.count()) > 0 && /(^|[^n])healthy/i.test(await rows.first().innerText());
    });
    if (!page.url().includes(`#services/${encodeURIComponent(SERVICE)}`)) fail(`the URL is ${page.url()}, not #services/${SERVICE}`);
    await shot('03-service.png');
  });

  await step(`spend: the budget of ${BUDGET_TARGET} grows with 10 more calls, without a reload`, async () => {
    await openView('#nav-spend', '#view-spend');
    const before = await until(`a .budget with data-target="${BUDGET_TARGET}"`, async () => {
      const v = await usedPercent();
      return { v };
    });
    await callProxy(10);
    let now = before.v;
    await until(`data-used-percent of ${BUDGET_TARGET} to grow from ${before.v}`, async () => {
      now = await usedPercent();
      return now > before.v;
    });
    const fill = await page.locator(`.budget[data-target="${cssString(BUDGET_TARGET)}"] .budget-fill`).first().evaluate((n) => n.style.width);
    if (!/^[\d.]+%$/.test(fill)) fail(`.budget-fill has width ${JSON.stringify(fill)}, not a percentage`);
    await notReloaded();
    await shot('04-spend.png');
  });

  await step('spend: Export CSV by consumer downloads the usage', async () => {
    await page.selectOption('#export-group', 'consumer');
    let download;
    try {
      [download] = await Promise.all([
        page.waitForEvent('download', { timeout: WAIT_MS }),
        page.click('#export-csv'),
      ]);
    } catch (e) {
      const banner = (await page.locator('#error-banner').isVisible()) ? await textOf('#error-text') : '';
      fail(`no download after clicking #export-csv (${e.message.split('\n')[0]})${banner ? `; banner: ${banner}` : ''}`);
    }
    const name = download.suggestedFilename();
    if (!/^blastdoor-usage-consumer-\d{4}-\d{2}-\d{2}\.csv$/.test(name)) fail(`unexpected file name ${JSON.stringify(name)}`);
    const file = path.join(SHOTS, name);
    await download.saveAs(file);
    const lines = (await readFile(file, 'utf8')).split(/\r?\n/).filter((l) => l.trim() !== '');
    if (!lines.length || !lines[0].startsWith('consumer,requests,cost_usd')) fail(`the CSV header is ${JSON.stringify(lines[0])}`);
    if (lines.length < 2) fail('the CSV has a header but no data row');
  });

  await step(`map: an edge into service:${SERVICE} is drawn`, async () => {
    await openView('#nav-map', '#view-map');
    const sel = `path.edge[data-to="service:${cssString(SERVICE)}"]`;
    await until(`${sel} in #map-svg`, async () => (await page.locator(`#map-svg ${sel}`).count()) > 0);
    await notReloaded();
    await shot('05-map.png');
  });
}

let code = 0;
try {
  await main();
  console.log(`e2e: ${passed} passed, 0 failed`);
} catch (e) {
  code = 1;
  const msg = e instanceof StepError ? e.message : e && e.stack ? e.stack : String(e);
  console.error(`FAIL [${currentStep}]: ${msg}`);
  if (page) {
    try {
      await page.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true });
      console.error(`  screenshot of the failure: ${path.join(SHOTS, 'failure.png')}`);
    } catch (_) {
      // the page may be gone
    }
  }
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(code);
