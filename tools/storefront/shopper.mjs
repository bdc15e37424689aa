// The shopper's walk: landing -> register -> login -> listing (every sort, a
// category, page 2) -> search -> cart -> checkout -> orders.
import {
  api, bodyText, clickText, config, goto, waitForPath, waitForText, withResponse,
} from './lib.mjs';

// name-asc last: it is the page's initial sort, and choosing it again sends nothing.
const SORTS = {
  'name-desc': { key: 'title', dir: -1 },
  'price-asc': { key: 'price', dir: 1 },
  'price-desc': { key: 'price', dir: -1 },
  'name-asc': { key: 'title', dir: 1 },
};

// The product cards as the page shows them, in order.
export async function readCards(page) {
  return page.$$eval('main .grid > div', (cards) => cards.map((card) => ({
    title: card.querySelector('h3')?.textContent.trim() ?? '',
    price: card.querySelector('span.text-xl')?.textContent.trim() ?? '',
    button: card.querySelector('button')?.textContent.trim() ?? '',
  })));
}

function checkCards(ctx, cards, { min = 1 } = {}) {
  if (cards.length < min) ctx.fail(`page shows ${cards.length} product cards, expected at least ${min}`);
  for (const c of cards) {
    if (!c.title) ctx.fail('a product card has no title');
    if (!/^\$\d+\.\d\d$/.test(c.price)) ctx.fail(`card "${c.title}" shows price "${c.price}"`);
  }
}

// A sold-out product's button says so; one with 1..10 left says how many.
async function checkStockBadges(ctx, page, products) {
  const cards = await page.$$eval('main .grid > div', (els) => els.map((el) => ({
    title: el.querySelector('h3')?.textContent.trim(), text: el.innerText })));
  for (const p of products) {
    const card = cards.find((c) => c.title === p.title);
    if (!card) continue;
    if (p.stock === 0 && !card.text.includes('Out of Stock')) ctx.fail(`"${p.title}" (stock 0) is not shown out of stock`);
    if (p.stock > 0 && p.stock <= 10 && !card.text.includes(`Only ${p.stock} left`)) ctx.fail(`"${p.title}" does not show "Only ${p.stock} left"`);
  }
}

function ordered(values, dir, compare) {
  return values.every((v, i) => i === 0 || dir * compare(values[i - 1], v) <= 0);
}

function checkSorted(ctx, products, { key, dir }) {
  const values = products.map((p) => p[key]);
  const ok = key === 'price'
    ? ordered(values.map(Number), dir, (a, b) => a - b)
    : ordered(values, dir, (a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' }));
  if (!ok) ctx.fail(`answer not sorted by ${key} ${dir > 0 ? 'asc' : 'desc'}: ${JSON.stringify(values)}`);
}

async function listingSteps(walk, page, state) {
  await walk.step('product listing', async (ctx) => {
    await withResponse(page, 'GET', /^\/api\/products$/, () => goto(page, '/products'));
    await page.waitForSelector('main .grid > div');
    await ctx.rec.settle();
    const cards = await readCards(page);
    checkCards(ctx, cards, { min: 12 });
    const answer = ctx.rec.last('GET', /^\/api\/products\?/);
    state.total = answer?.json?.total;
    state.page1 = (answer?.json?.products || []).map((p) => p.id);
    state.allProducts = (await api('GET', `${config.api.products}/api/products?limit=100`)).json?.products || [];
    const shown = (await bodyText(page)).match(/Showing (\d+) of (\d+) products/);
    if (!shown || Number(shown[2]) !== state.total) ctx.fail(`"Showing n of total" is ${shown?.[0]} for total ${state.total}`);
  });
  for (const [value, sort] of Object.entries(SORTS)) {
    await walk.step(`sort ${value}`, async (ctx) => {
      const res = await withResponse(page, 'GET', /^\/api\/products$/, () => page.select('aside select', value));
      await ctx.rec.settle();
      const [field, order] = value.split('-');
      const url = new URL(res.url());
      if (url.searchParams.get('sort') !== field || url.searchParams.get('order') !== order) {
        ctx.fail(`request carried sort=${url.searchParams.get('sort')} order=${url.searchParams.get('order')}`);
      }
      const products = ctx.rec.last('GET', /^\/api\/products\?/)?.json?.products || [];
      checkSorted(ctx, products, sort);
      const cards = await readCards(page);
      checkCards(ctx, cards, { min: 12 });
      const titles = products.map((p) => p.title);
      if (JSON.stringify(cards.map((c) => c.title)) !== JSON.stringify(titles)) {
        ctx.fail('the cards are not in the order of the answer');
      }
    });
  }
  await walk.step('category filter', async (ctx) => {
    await goto(page, '/products');
    const categories = (await api('GET', `${config.api.categories}/api/categories`)).json?.categories || [];
    // The category of a sold-out product, if there is one: its card must say so.
    const soldOut = state.allProducts.find((p) => p.stock === 0);
    const category = categories.find((c) => c.id === soldOut?.category_id)
      || categories.find((c) => state.allProducts.some((p) => p.category_id === c.id));
    if (!category) throw new Error('no category with products');
    const res = await withResponse(page, 'GET', /^\/api\/products$/, () => clickText(page, 'aside button', category.name));
    await ctx.rec.settle();
    if (new URL(res.url()).searchParams.get('category_id') !== category.id) ctx.fail(`request: ${res.url()}`);
    const products = ctx.rec.last('GET', /^\/api\/products\?/)?.json?.products || [];
    const expected = state.allProducts.filter((p) => p.category_id === category.id).length;
    if (products.some((p) => p.category_id !== category.id)) ctx.fail('answer holds products of other categories');
    const cards = await readCards(page);
    checkCards(ctx, cards, { min: Math.min(expected, 12) });
    await checkStockBadges(ctx, page, products);
    ctx.note(`category "${category.name}": ${products.length} products shown of ${expected}`);
    const crumb = await page.$$eval('nav span, nav a', (els) => els.map((e) => e.textContent.trim()));
    if (!crumb.includes(category.name)) ctx.fail(`the breadcrumb does not name the category: ${JSON.stringify(crumb)}`);
  });
  await walk.step('pagination: page 2', async (ctx) => {
    await goto(page, '/products');
    const res = await withResponse(page, 'GET', /^\/api\/products$/, () => clickText(page, 'main button', '2', { exact: true }));
    await ctx.rec.settle();
    if (new URL(res.url()).searchParams.get('page') !== '2') ctx.fail(`request: ${res.url()}`);
    const answer = ctx.rec.last('GET', /^\/api\/products\?/)?.json;
    const ids = (answer?.products || []).map((p) => p.id);
    if (answer?.page !== 2) ctx.fail(`answer page is ${answer?.page}`);
    if (ids.some((id) => state.page1.includes(id))) ctx.fail('page 2 repeats products of page 1');
    checkCards(ctx, await readCards(page), { min: Math.min(12, (state.total || 0) - 12) });
  });
}

async function searchSteps(walk, page, state) {
  // The client sends `search=` to /api/products and then filters the page it got
  // by title/description itself: a product only on a later page is found only if
  // the API honours `search`.
  const searchFor = async (ctx, term) => {
    await goto(page, '/products');
    const input = await page.$('aside form input');
    await input.type(term);
    const res = await withResponse(page, 'GET', /^\/api\/products$/, () => input.press('Enter'));
    await ctx.rec.settle();
    if (new URL(res.url()).searchParams.get('search') !== term) ctx.fail(`request: ${res.url()}`);
    return readCards(page);
  };
  await walk.step('search (a product on page 1)', async (ctx) => {
    const first = state.allProducts.find((p) => state.page1.includes(p.id));
    const term = first.title.split(/\s+/).find((w) => w.length > 3) || first.title;
    const cards = await searchFor(ctx, term);
    checkCards(ctx, cards);
    if (!cards.some((c) => c.title === first.title)) ctx.fail(`"${first.title}" not found by "${term}"`);
  });
  await walk.step('search (a product beyond page 1)', async (ctx) => {
    const words = (p) => p.title.toLowerCase().split(/\s+/).filter((w) => w.length > 3);
    const onPage1 = state.allProducts.filter((p) => state.page1.includes(p.id));
    const target = state.allProducts.find((p) => !state.page1.includes(p.id)
      && words(p).some((w) => !onPage1.some((q) => `${q.title} ${q.description || ''}`.toLowerCase().includes(w))));
    if (!target) throw new Error('every later product shares its words with page 1');
    const term = words(target).find((w) => !onPage1.some((q) => `${q.title} ${q.description || ''}`.toLowerCase().includes(w)));
    const cards = await searchFor(ctx, term);
    if (!cards.some((c) => c.title === target.title)) {
      const answer = ctx.rec.last('GET', /^\/api\/products\?/);
      const titles = (answer?.json?.products || []).map((p) => p.title);
      ctx.fail(`"${target.title}" (not on page 1) not found by "${term}": GET ${answer?.url} answered `
        + `${answer?.json?.total} products, first ${JSON.stringify(titles.slice(0, 3))}; the client filters only the page it gets`);
      if (answer?.json?.total === state.total) {
        ctx.clientDefect('ProductListing filters the one page it fetched; GET /api/products ignores search= '
          + '(as the original backend did)', [/\(not on page 1\) not found by/]);
      }
    }
  });
}

async function accountSteps(walk, page, state) {
  await walk.step('landing page', async (ctx) => {
    await goto(page, '/');
    await waitForText(page, 'RetailHub');
    if (!(await page.$('a[href="/register"]'))) ctx.fail('no link to register');
  });
  state.shopper = { name: 'Ada Shopper', email: `ada.${state.runId}@shop.test`, password: 'secret-pass-1' };
  await walk.step('register', async (ctx) => {
    await page.click('a[href="/register"]');
    await waitForPath(page, '/register');
    await page.type('input[name="name"]', state.shopper.name);
    await page.type('input[name="email"]', state.shopper.email);
    await page.type('input[name="password"]', state.shopper.password);
    await page.type('input[name="confirmPassword"]', state.shopper.password);
    const res = await withResponse(page, 'POST', /^\/api\/auth\/register$/, () => page.click('button[type="submit"]'));
    if (res.status() !== 201) ctx.fail(`register answered ${res.status()}`);
    await waitForPath(page, '/login');
  });
  await walk.step('login', async (ctx) => {
    await page.type('input[name="email"]', state.shopper.email);
    await page.type('input[name="password"]', state.shopper.password);
    await withResponse(page, 'POST', /^\/api\/auth\/login$/, () => page.click('button[type="submit"]'));
    await waitForPath(page, '/');
    await waitForText(page, state.shopper.name);
    const user = await page.evaluate(() => JSON.parse(localStorage.getItem('user') || 'null'));
    if (user?.email !== state.shopper.email || user?.role !== 'customer') ctx.fail(`stored user ${JSON.stringify(user)}`);
  });
}

async function cartSteps(walk, page, state) {
  await walk.step('add two products to the cart', async (ctx) => {
    await goto(page, '/products');
    await page.waitForSelector('main .grid > div');
    for (const n of [0, 1]) {
      const buttons = await page.$$('main .grid > div button');
      await withResponse(page, 'POST', /^\/api\/auth\/me\/cart$/, () => buttons[n].click());
      await ctx.rec.settle();
    }
    const cards = await readCards(page);
    state.inCart = cards.slice(0, 2).map((c) => c.title);
    if (!cards.slice(0, 2).every((c) => c.button.includes('Added to Cart'))) ctx.fail('cards do not show "Added to Cart"');
    const badge = await page.$eval('nav a[href="/cart"]', (a) => a.innerText.replace(/\D/g, ''));
    if (badge !== '2') ctx.fail(`cart badge shows "${badge}"`);
  });
  await walk.step('cart page (+1 on the first line)', async (ctx) => {
    await page.click('nav a[href="/cart"]');
    await waitForText(page, 'Shopping Cart');
    const text = await bodyText(page);
    for (const title of state.inCart) if (!text.includes(title)) ctx.fail(`cart does not show "${title}"`);
    await withResponse(page, 'PATCH', /^\/api\/auth\/me\/cart\/.+$/, () => clickText(page, 'main button', '+', { exact: true }));
    await ctx.rec.settle();
    const cart = ctx.rec.last('PATCH', /^\/api\/auth\/me\/cart\//)?.json;
    if (cart?.items?.[0]?.quantity !== 2) ctx.fail(`after +, first line quantity is ${cart?.items?.[0]?.quantity}`);
    state.cartTotal = cart?.total;
    if (!(await bodyText(page)).includes(`$${Number(cart?.total).toFixed(2)}`)) ctx.fail(`page does not show the total ${cart?.total}`);
  });
  await walk.step('checkout: place the order', async (ctx) => {
    await clickText(page, 'main button', 'Proceed to Checkout');
    await page.type('textarea', '1 Test Street, Springfield');
    const res = await withResponse(page, 'POST', /^\/api\/orders$/, () => clickText(page, 'main button', 'Confirm Order'));
    if (res.status() !== 201) ctx.fail(`POST /api/orders answered ${res.status()}`);
    await waitForText(page, 'Order Confirmed!');
    await ctx.rec.settle();
    const order = ctx.rec.last('POST', /^\/api\/orders$/)?.json;
    state.orderId = order?.id;
    if (order?.total !== state.cartTotal) ctx.fail(`order total ${order?.total} differs from the cart total ${state.cartTotal}`);
    if (!(await bodyText(page)).includes(`Order ID: ${order?.id}`)) ctx.fail('page does not show the order id');
  });
  await walk.step('orders page', async (ctx) => {
    await withResponse(page, 'GET', /^\/api\/orders$/, () => clickText(page, 'main a', 'View Orders'));
    await waitForText(page, 'My Orders');
    const text = await bodyText(page);
    if (!text.includes(state.orderId)) ctx.fail(`orders page does not show order ${state.orderId}`);
    for (const title of state.inCart) if (!text.includes(title)) ctx.fail(`orders page does not show "${title}"`);
    if (!/Confirmed|Pending/.test(text)) ctx.fail('orders page shows no status');
  });
}

export async function shopperSteps(walk, page, state) {
  await accountSteps(walk, page, state);
  await listingSteps(walk, page, state);
  await searchSteps(walk, page, state);
  await cartSteps(walk, page, state);
}
