// The machinery of the walk: a recorder of what the page sends to our services,
// the step runner that judges each step, and small page helpers. drive.mjs holds
// the walk itself.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const config = {
  web: process.env.WEB_URL || 'http://127.0.0.1:13000',
  apiPorts: (process.env.API_PORTS || '18001,18002,18003,18004,18005,18006').split(',').map(Number),
  api: {
    auth: process.env.AUTH_URL || 'http://127.0.0.1:18001',
    products: process.env.PRODUCTS_URL || 'http://127.0.0.1:18002',
    categories: process.env.CATEGORIES_URL || 'http://127.0.0.1:18003',
    inventory: process.env.INVENTORY_URL || 'http://127.0.0.1:18004',
    orders: process.env.ORDERS_URL || 'http://127.0.0.1:18005',
    search: process.env.SEARCH_URL || 'http://127.0.0.1:18006',
  },
  shots: process.env.SHOTS_DIR || '/work/storefront-shots',
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  admin: {
    email: process.env.ADMIN_EMAIL || 'boss@shop.test',
    password: process.env.ADMIN_PASSWORD || 'change-me-now-42',
  },
  // Generous: a slow shared machine must not fail a step; nothing waits this long
  // unless something is wrong.
  waitMs: Number(process.env.WAIT_MS || 20000),
};

// What the page shows when something went wrong (the client's own wording).
const VISIBLE_ERRORS = [
  /Failed to [a-z]+( [a-z]+)?/i,
  /\bNaN\b/,
  /\$(undefined|null)\b/,
  /(Login|Registration) failed/i,
  /Something went wrong/i,
];

function isApi(url) {
  try {
    return config.apiPorts.includes(Number(new URL(url).port));
  } catch {
    return false;
  }
}

// Everything the page sends to our ports, with our answer, plus console errors,
// uncaught page errors and alert() texts, collected per step.
export class Recorder {
  constructor(page) {
    this.page = page;
    this.reset();
    page.on('requestfinished', (req) => this.#finished(req));
    page.on('requestfailed', (req) => this.#failed(req));
    page.on('console', (msg) => this.#console(msg));
    page.on('pageerror', (err) => this.pageErrors.push(String(err.message || err)));
    page.on('dialog', async (dialog) => {
      this.dialogs.push(dialog.message());
      await dialog.accept();
    });
  }

  // A resource that failed to load: our API's failures are judged by their request
  // (status, allowed or not); a host outside this machine (the landing page's stock
  // photos) cannot be reached from here, which is only worth a note.
  #console(msg) {
    if (msg.type() !== 'error') return;
    const where = msg.location()?.url || '';
    if (msg.text().startsWith('Failed to load resource')) {
      if (isApi(where)) return;
      if (!where.startsWith(config.web)) {
        this.external.push(`${msg.text()} (${where || 'unknown url'})`);
        return;
      }
    }
    this.consoleErrors.push(where ? `${msg.text()} (${where})` : msg.text());
  }

  reset() {
    this.requests = [];
    this.external = [];
    this.consoleErrors = [];
    this.pageErrors = [];
    this.dialogs = [];
    this.pending = [];
  }

  #finished(req) {
    if (!isApi(req.url()) || req.method() === 'OPTIONS') return;
    const res = req.response();
    const entry = { method: req.method(), url: req.url(), body: req.postData() ?? null,
      status: res ? res.status() : 0, answer: null, json: null };
    this.requests.push(entry);
    if (res) {
      this.pending.push(res.text().then((text) => {
        entry.answer = text.length > 2000 ? `${text.slice(0, 2000)}...` : text;
        try { entry.json = JSON.parse(text); } catch { /* not JSON */ }
      }).catch(() => {}));
    }
  }

  #failed(req) {
    if (!isApi(req.url())) return;
    this.requests.push({ method: req.method(), url: req.url(), body: req.postData() ?? null,
      status: 0, answer: `network failure: ${req.failure()?.errorText}`, json: null });
  }

  async settle() {
    await this.page.waitForNetworkIdle({ idleTime: 400, timeout: config.waitMs }).catch(() => {});
    await Promise.all(this.pending);
  }

  // The last answer to METHOD on a path matching `pathRe`.
  last(method, pathRe) {
    return [...this.requests].reverse()
      .find((r) => r.method === method && pathRe.test(new URL(r.url).pathname + new URL(r.url).search));
  }
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

// Runs the steps one by one; each gets a screenshot and a verdict.
export class Walk {
  constructor(page, recorder) {
    this.page = page;
    this.rec = recorder;
    this.results = [];
  }

  async step(name, fn, { allow = [] } = {}) {
    const number = String(this.results.length + 1).padStart(2, '0');
    const result = { number, name, verdict: 'pass', problems: [], notes: [], requests: [],
      consoleErrors: [], dialogs: [], screenshot: join(config.shots, `${number}-${slug(name)}.png`) };
    this.rec.reset();
    const defects = [];
    const ctx = {
      fail: (msg) => result.problems.push(msg),
      note: (msg) => result.notes.push(msg),
      allow: (pred) => allow.push(pred),
      // Called by a step that has seen the cause of one of the client's own defects
      // (docs/storefront-compatibility.md): the problems matching `symptoms` are that.
      clientDefect: (why, symptoms) => defects.push({ why, symptoms }),
      skip: (why) => { result.skipped = why; },
      rec: this.rec,
    };
    try {
      await fn(ctx);
    } catch (err) {
      result.problems.push(`step aborted: ${err.message.split('\n')[0]}`);
    }
    await this.rec.settle();
    await this.#judge(result, allow);
    // From the top: the navbar is sticky and would otherwise be drawn mid-page.
    await this.page.evaluate(() => window.scrollTo(0, 0)).catch(() => {});
    await this.page.screenshot({ path: result.screenshot, fullPage: true }).catch((err) => {
      result.problems.push(`screenshot failed: ${err.message}`);
    });
    this.#verdict(result, defects);
    this.results.push(result);
    const mark = { pass: 'PASS', fail: 'FAIL', 'client-defect': 'CLIENT', skipped: 'SKIP' }[result.verdict];
    console.log(`${mark.padEnd(6)} ${number} ${name}`);
    for (const p of result.problems) console.log(`         - ${p}`);
    return result;
  }

  async #judge(result, allow) {
    const { rec } = this;
    result.requests = rec.requests.map(({ json, ...rest }) => rest);
    result.consoleErrors = [...rec.consoleErrors];
    result.dialogs = [...rec.dialogs];
    for (const r of rec.requests) {
      if ((r.status === 0 || r.status >= 400) && !allow.some((pred) => pred(r))) {
        result.problems.push(`unexpected ${r.status || 'network failure'}: ${r.method} ${r.url}`
          + `${r.body ? ` body=${r.body}` : ''} -> ${r.answer}`);
      }
    }
    for (const text of rec.consoleErrors) result.problems.push(`console error: ${text}`);
    for (const text of new Set(rec.external)) result.notes.push(`outside resource not loaded: ${text}`);
    for (const text of rec.pageErrors) result.problems.push(`page error: ${text}`);
    // The client's alerts either report success ("... successfully!") or show an
    // error: its own fallback text or our answer's `detail`.
    for (const text of rec.dialogs) {
      if (!/successfully/i.test(text)) result.problems.push(`alert: ${text}`);
    }
    const visible = await this.page.evaluate(() => document.body?.innerText || '').catch(() => '');
    for (const re of VISIBLE_ERRORS) {
      const hit = visible.match(re);
      if (hit) result.problems.push(`page shows "${hit[0]}"`);
    }
  }

  // A step fails on any problem, unless every problem is a symptom of a client
  // defect whose cause the step saw (a symptom no answer of ours within DESIGN.md's
  // shapes can change). A step skipped for want of what an earlier one should have
  // made is marked so.
  #verdict(result, defects) {
    if (result.problems.length === 0) {
      if (result.skipped) {
        result.verdict = 'skipped';
        result.notes.push(`skipped: ${result.skipped}`);
      }
      return;
    }
    const explain = (p) => defects.find((d) => d.symptoms.some((re) => re.test(p)));
    if (defects.length && result.problems.every(explain)) {
      result.verdict = 'client-defect';
      for (const why of new Set(result.problems.map((p) => explain(p).why))) result.notes.push(`client defect: ${why}`);
      return;
    }
    result.verdict = 'fail';
  }

  async writeReport() {
    await writeFile(join(config.shots, 'report.json'), JSON.stringify(this.results, null, 2));
    const lines = ['# Storefront acceptance run', '', `Client: ${config.web}`, ''];
    for (const r of this.results) {
      lines.push(`## ${r.number} ${r.name}: ${r.verdict.toUpperCase()}`, '', `Screenshot: ${r.screenshot}`, '');
      for (const p of r.problems) lines.push(`- problem: ${p}`);
      for (const n of r.notes) lines.push(`- note: ${n}`);
      for (const q of r.requests) lines.push(`- ${q.status} ${q.method} ${q.url}${q.body ? ` ${q.body}` : ''}`);
      lines.push('');
    }
    await writeFile(join(config.shots, 'report.md'), lines.join('\n'));
  }
}

// ---- page helpers ----

export async function goto(page, path) {
  await page.goto(`${config.web}${path}`, { waitUntil: 'networkidle2', timeout: config.waitMs });
}

// Clicks the first visible element matching `selector` whose text contains `text`
// (or equals it, with `exact`).
export async function clickText(page, selector, text, { exact = false } = {}) {
  const handles = await page.$$(selector);
  for (const handle of handles) {
    const ok = await handle.evaluate((el, t, whole) => {
      const style = getComputedStyle(el);
      const shown = el.offsetParent !== null && style.visibility !== 'hidden';
      const own = el.textContent.replace(/\s+/g, ' ').trim();
      return shown && (whole ? own === t : own.includes(t));
    }, text, exact);
    if (ok) {
      await handle.click();
      return;
    }
  }
  throw new Error(`no visible ${selector} with text "${text}"`);
}

// Runs `action` and waits for our answer to METHOD on a path matching `pathRe`.
export async function withResponse(page, method, pathRe, action) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === method && isApi(r.url())
      && pathRe.test(new URL(r.url()).pathname), { timeout: config.waitMs }),
    action(),
  ]);
  return response;
}

export async function waitForPath(page, path) {
  await page.waitForFunction((p) => window.location.pathname === p, { timeout: config.waitMs }, path);
}

export async function waitForText(page, text) {
  await page.waitForFunction((t) => document.body.innerText.includes(t), { timeout: config.waitMs }, text);
}

export async function bodyText(page) {
  return page.evaluate(() => document.body.innerText);
}

// Direct calls to our API from the driver (setup and cross-checks, never the walk itself).
export async function api(method, url, { token, body } = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}
