// The admin's walk: dashboard (its two quick-create modals), categories list and
// form (create, edit), products list, product form (create with and without an
// image URL, empty description; edit). The client has no inventory page.
//
// The admin pages have defects of their own (docs/storefront-compatibility.md,
// "Where the client itself is wrong"). A step that sees one's cause registers it,
// and the problems it explains mark the step CLIENT rather than FAIL.
import { api, clickText, config, goto, waitForPath, waitForText, withResponse } from './lib.mjs';
import { readCards } from './shopper.mjs';

const NO_ID = 'the admin pages key rows by _id; our answers carry id (DESIGN.md)';
const CATEGORY_OPTION = 'the category <option value={cat._id}> has no value, so the form sends the name as category_id';
const PRODUCT_NAME = 'the admin pages read product.name; our answers carry title (DESIGN.md)';
const NO_PUT = "ProductForm's save calls api.put, which the client's api wrapper lacks: no request is sent";

const CATEGORY_SYMPTOMS = [
  /^POST \/api\/products answered 422$/,
  /^created( product)?: undefined\b/,
  /^unexpected 422: POST \S+\/api\/products body=.* -> .*(category_id|UNKNOWN_CATEGORY)/,
  // The client's fallback text, or our answer's detail about the category.
  /^alert: (Failed to (create|save) product|.*category)/i,
];

// Picks the <option> whose text is `label` (its value is whatever the client put there).
async function selectByText(page, selector, label) {
  const value = await page.$eval(selector, (sel, l) => {
    const option = [...sel.options].find((o) => o.textContent.trim() === l);
    return option ? option.value : null;
  }, label);
  if (value === null) throw new Error(`no option "${label}" in ${selector}`);
  await page.select(selector, value);
  return value;
}

// When the option's value is the category's name, the 422 that follows is the client's.
function checkChoice(ctx, chosen, label) {
  if (chosen !== label) return;
  ctx.note(`the category option's value is its name "${chosen}"`);
  ctx.clientDefect(CATEGORY_OPTION, CATEGORY_SYMPTOMS);
}

function lacksId(item) {
  return Boolean(item) && !('_id' in item);
}

async function findProduct(title) {
  const all = (await api('GET', `${config.api.products}/api/products?limit=100&sort=newest`)).json?.products || [];
  return all.find((p) => p.title === title);
}

async function dashboardSteps(walk, page, state) {
  await walk.step('admin login', async (ctx) => {
    await clickText(page, 'nav button', state.shopper.name);
    await clickText(page, 'nav button', 'Logout');
    await goto(page, '/login');
    await page.type('input[name="email"]', config.admin.email);
    await page.type('input[name="password"]', config.admin.password);
    await withResponse(page, 'POST', /^\/api\/auth\/login$/, () => page.click('button[type="submit"]'));
    // Login returns to where the logout left (the orders page), or to '/'.
    await page.waitForFunction(() => window.location.pathname !== '/login');
    const user = await page.evaluate(() => JSON.parse(localStorage.getItem('user') || 'null'));
    if (user?.role !== 'admin') ctx.fail(`stored user ${JSON.stringify(user)}`);
  });
  await walk.step('admin dashboard', async (ctx) => {
    await clickText(page, 'nav button', '👤');
    await clickText(page, 'nav a', 'Admin Panel');
    await waitForText(page, 'Admin Dashboard');
    await ctx.rec.settle();
    const stat = (href) => page.$eval(`a[href="${href}"] p.text-3xl`, (p) => p.textContent.trim());
    const total = (await api('GET', `${config.api.products}/api/products?limit=1`)).json?.total;
    const cats = (await api('GET', `${config.api.categories}/api/categories`)).json?.total;
    if (await stat('/admin/products') !== String(total)) ctx.fail(`Products card shows ${await stat('/admin/products')}, API total ${total}`);
    if (await stat('/admin/categories') !== String(cats)) ctx.fail(`Categories card shows ${await stat('/admin/categories')}, API total ${cats}`);
    ctx.note('the Orders (45) and Users (120) cards are constants in the client');
  });
  state.modalCategory = `Modal Category ${state.runId}`;
  await walk.step('dashboard: Add Category modal', async (ctx) => {
    await clickText(page, 'button', 'Add Category');
    await page.type('input[placeholder="Category name"]', state.modalCategory);
    await page.type('textarea[placeholder="Category description"]', 'Made from the dashboard');
    const res = await withResponse(page, 'POST', /^\/api\/categories$/, () => clickText(page, 'button[type="submit"]', 'Create Category'));
    if (res.status() !== 201) ctx.fail(`POST /api/categories answered ${res.status()}`);
    await ctx.rec.settle();
    state.modalCategoryId = ctx.rec.last('POST', /^\/api\/categories$/)?.json?.id;
  });
  state.modalProduct = `Modal Lamp ${state.runId}`;
  await walk.step('dashboard: Add Product modal (empty description and image URL)', async (ctx) => {
    await clickText(page, 'button', 'Add Product');
    await page.type('input[placeholder="Product title"]', state.modalProduct);
    checkChoice(ctx, await selectByText(page, '.fixed select', state.modalCategory), state.modalCategory);
    await page.type('input[placeholder="0.00"]', '19.99');
    await page.type('.fixed input[placeholder="0"]', '7');
    const res = await withResponse(page, 'POST', /^\/api\/products$/, () => clickText(page, 'button[type="submit"]', 'Create Product'));
    if (res.status() !== 201) ctx.fail(`POST /api/products answered ${res.status()}`);
    await ctx.rec.settle();
    const made = await findProduct(state.modalProduct);
    if (made?.category_id !== state.modalCategoryId) ctx.fail(`created product: ${JSON.stringify(made)}`);
  });
}

async function categorySteps(walk, page, state) {
  await walk.step('admin categories list', async (ctx) => {
    await goto(page, '/admin');
    await page.click('a[href="/admin/categories"]');
    await waitForText(page, state.modalCategory);
    await ctx.rec.settle();
    const hrefs = await page.$$eval('a[href$="/edit"]', (as) => as.map((a) => a.getAttribute('href')));
    const broken = hrefs.filter((h) => /undefined|null/.test(h));
    if (broken.length) ctx.fail(`${broken.length} of ${hrefs.length} edit links are broken, e.g. ${broken[0]}`);
    if (lacksId(ctx.rec.last('GET', /^\/api\/categories$/)?.json?.categories?.[0])) {
      ctx.clientDefect(NO_ID, [/edit links are broken, e\.g\. \/admin\/categories\/undefined\/edit$/]);
    }
  });
  state.formCategory = `Form Category ${state.runId}`;
  await walk.step('category form: create', async (ctx) => {
    await page.click('a[href="/admin/categories/new"]');
    await page.type('input[name="name"]', state.formCategory);
    await page.type('textarea[name="description"]', 'Made with the category form');
    const res = await withResponse(page, 'POST', /^\/api\/categories$/, () => page.click('button[type="submit"]'));
    if (res.status() !== 201) ctx.fail(`POST /api/categories answered ${res.status()}`);
    await waitForPath(page, '/admin/categories');
    await waitForText(page, state.formCategory);
    await ctx.rec.settle();
    state.formCategoryId = ctx.rec.last('POST', /^\/api\/categories$/)?.json?.id;
  });
  await walk.step('category form: edit', async (ctx) => {
    // Through the row's edit link when it works; else (known defect, reported by the
    // list step) at the category's real address, so the form and PATCH are still tried.
    const expected = `/admin/categories/${state.formCategoryId}/edit`;
    const href = await page.$$eval('tr', (rows, name) => rows.find((r) => r.innerText.includes(name))
      ?.querySelector('a')?.getAttribute('href'), state.formCategory);
    if (href === expected) await page.click(`a[href="${href}"]`);
    else {
      ctx.note(`the row's edit link is ${href}; opening ${expected}`);
      await goto(page, expected);
    }
    await page.waitForSelector('input[name="name"]');
    await ctx.rec.settle();
    const name = await page.$eval('input[name="name"]', (i) => i.value);
    if (name !== state.formCategory) ctx.fail(`the form loaded name "${name}"`);
    await page.$eval('textarea[name="description"]', (t) => { t.focus(); t.setSelectionRange(t.value.length, t.value.length); });
    await page.keyboard.type(' (edited)'); // at the end: focus alone leaves the caret at the start
    const res = await withResponse(page, 'PATCH', /^\/api\/categories\/.+$/, () => page.click('button[type="submit"]'));
    if (res.status() !== 200) ctx.fail(`PATCH answered ${res.status()}`);
    await waitForPath(page, '/admin/categories');
    const saved = (await api('GET', `${config.api.categories}/api/categories/${state.formCategoryId}`)).json;
    if (saved?.description !== 'Made with the category form (edited)') ctx.fail(`saved: ${JSON.stringify(saved)}`);
  });
}

// `repairId`: first give the category's <option> the value a fixed client would
// (its id), so the rest of the form's payload is tried against the API.
async function fillProductForm(page, { name, category, price, stock, imageUrl, repairId }) {
  await page.type('input[name="name"]', name);
  if (repairId) {
    await page.$eval('select[name="category_id"]', (sel, label, id) => {
      [...sel.options].find((o) => o.textContent.trim() === label).value = id;
    }, category, repairId);
  }
  const chosen = await selectByText(page, 'select[name="category_id"]', category);
  await page.type('input[name="price"]', price);
  await page.type('input[name="stock"]', stock);
  if (imageUrl) await page.type('input[name="image_url"]', imageUrl);
  return chosen;
}

async function productListStep(walk, page) {
  await walk.step('admin products list', async (ctx) => {
    await goto(page, '/admin');
    await page.click('a[href="/admin/products"]');
    await page.waitForSelector('tbody tr');
    await ctx.rec.settle();
    const rows = await page.$$eval('tbody tr', (trs) => trs.map((tr) => [
      tr.querySelector('td p.font-medium')?.textContent.trim() ?? '',
      ...[...tr.querySelectorAll('td')].slice(1, 4).map((td) => td.innerText.trim())]));
    const checks = [
      ['show no product name', ([name]) => !name],
      ['show category Unknown', ([, category]) => category === 'Unknown'],
      ['show no $x.xx price', ([, , price]) => !/^\$\d+\.\d\d$/.test(price)],
      ['show no "N units" stock', ([, , , stock]) => !/^\d+ units$/.test(stock)],
    ];
    for (const [what, pred] of checks) {
      const bad = rows.filter(pred);
      if (bad.length) ctx.fail(`${bad.length} of ${rows.length} rows ${what}, e.g. ${JSON.stringify(bad[0])}`);
    }
    const hrefs = await page.$$eval('a[href$="/edit"]', (as) => as.map((a) => a.getAttribute('href')));
    const broken = hrefs.filter((h) => /undefined|null/.test(h));
    if (broken.length) ctx.fail(`${broken.length} of ${hrefs.length} edit links are broken, e.g. ${broken[0]}`);
    const product = ctx.rec.last('GET', /^\/api\/products\?/)?.json?.products?.[0];
    const category = ctx.rec.last('GET', /^\/api\/categories$/)?.json?.categories?.[0];
    if (lacksId(product) && lacksId(category)) {
      ctx.clientDefect(NO_ID, [/rows show category Unknown/, /edit links are broken, e\.g\. \/admin\/products\/undefined\/edit$/]);
    }
    if (product && !('name' in product)) ctx.clientDefect(PRODUCT_NAME, [/rows show no product name/]);
  });
}

// One product made with the admin's product form; checks what the API then holds.
async function createWithForm(page, ctx, state, form) {
  await goto(page, '/admin/products/new');
  const chosen = await fillProductForm(page, { ...form, category: state.formCategory });
  if (!form.repairId) checkChoice(ctx, chosen, state.formCategory);
  const res = await withResponse(page, 'POST', /^\/api\/products$/, () => page.click('button[type="submit"]'));
  if (res.status() !== 201) ctx.fail(`POST /api/products answered ${res.status()}`);
  await ctx.rec.settle();
  const p = await findProduct(form.name);
  const expected = { price: Number(form.price), stock: Number(form.stock), category_id: state.formCategoryId,
    description: '', image_url: form.imageUrl || null, is_active: true };
  const wrong = Object.keys(expected).filter((k) => p?.[k] !== expected[k]);
  if (wrong.length) ctx.fail(`created: ${JSON.stringify(p)} (expected ${JSON.stringify(expected)})`);
  if (p) state.madeByForm.push(p);
}

async function productFormSteps(walk, page, state) {
  const imageUrl = `${config.web}/logo192.png`;
  const forms = [
    ['empty description, no image URL', { name: `Form Kettle ${state.runId}`, price: '24.50', stock: '12' }],
    ['with an image URL', { name: `Form Teapot ${state.runId}`, price: '31.00', stock: '3', imageUrl }],
  ];
  state.madeByForm = [];
  for (const [what, form] of forms) {
    await walk.step(`product form: create (${what})`, (ctx) => createWithForm(page, ctx, state, form));
  }
  if (state.madeByForm.length === 0) {
    // The client's category select cannot work (CATEGORY_OPTION): try the rest of
    // its payload (name, "" description and image URL, is_combo, is_active) as a
    // fixed client would send it.
    for (const [what, form] of forms) {
      await walk.step(`product form: create, category option repaired (${what})`, (ctx) => createWithForm(
        page, ctx, state, { ...form, name: `${form.name} repaired`, repairId: state.formCategoryId }));
    }
  }
  await walk.step('storefront shows the admin\'s new products', async (ctx) => {
    if (state.madeByForm.length === 0) {
      ctx.skip('the product form made no product');
      return;
    }
    await goto(page, `/products?category=${state.formCategoryId}`);
    await page.waitForSelector('main .grid > div');
    const cards = await readCards(page);
    for (const p of state.madeByForm) if (!cards.some((c) => c.title === p.title)) ctx.fail(`"${p.title}" not listed`);
    const srcs = await page.$$eval('main .grid img', (imgs) => imgs.map((i) => i.src));
    if (state.madeByForm.some((p) => p.image_url) && !srcs.includes(imageUrl)) ctx.fail(`no card shows ${imageUrl}`);
  });
}

async function productEditStep(walk, page, state) {
  await walk.step('product form: edit', async (ctx) => {
    // A product the form made, or (if it could make none) a seeded one.
    const target = state.madeByForm[0]
      || (await api('GET', `${config.api.products}/api/products?limit=1`)).json?.products?.[0];
    ctx.note(`editing ${target.id} "${target.title}"`);
    await goto(page, `/admin/products/${target.id}/edit`);
    await page.waitForSelector('input[name="name"]');
    await ctx.rec.settle();
    const loaded = await page.$eval('input[name="name"]', (i) => i.value);
    if (loaded !== target.title) {
      ctx.fail(`the form loaded name "${loaded}" for "${target.title}"`);
      if (!loaded && !('name' in target)) ctx.clientDefect(PRODUCT_NAME, [/^the form loaded name ""/]);
      if (!loaded) await page.type('input[name="name"]', target.title);
    }
    await page.$eval('input[name="price"]', (i) => i.select());
    await page.type('input[name="price"]', '26.00');
    const before = ctx.rec.requests.length; // what follows is what the save sends
    await page.click('button[type="submit"]');
    await page.waitForFunction(() => !document.body.innerText.includes('Saving...'));
    await ctx.rec.settle();
    if (!ctx.rec.requests.slice(before).some((r) => r.url.includes(target.id) && r.method !== 'GET')) {
      ctx.clientDefect(NO_PUT, [/^alert: Failed to save product$/, /price is [\d.]+, not 26$/]);
    }
    const p = (await api('GET', `${config.api.products}/api/products/${target.id}`)).json;
    if (p?.price !== 26) ctx.fail(`after the edit the product's price is ${p?.price}, not 26`);
  });
}

export async function adminSteps(walk, page, state) {
  await dashboardSteps(walk, page, state);
  await categorySteps(walk, page, state);
  await productListStep(walk, page);
  await productFormSteps(walk, page, state);
  await productEditStep(walk, page, state);
}
