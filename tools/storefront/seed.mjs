// A small catalogue made through the public API, as the admin console would:
// 3 categories, 30 products (3 pages of 12), numbers as JSON numbers. Titles are
// chosen so the walk can check what it sees: distinct nouns (a search finds one
// product), one title in lower case (a name sort must not put it last), one
// product out of stock and one nearly so, tax rates that exercise rounding.
import { api, config } from './lib.mjs';

const CATEGORIES = [
  { name: 'Kitchen', description: 'Pots, pans and everything for the stove' },
  { name: 'Garden', description: 'Tools and seeds' },
  { name: 'Books', description: 'Paper, ink and stories' },
];
const ADJECTIVES = ['Acorn', 'Alpine', 'Brass', 'Cedar', 'Copper', 'Dune', 'Ember', 'Fjord', 'Granite', 'Harbor'];
const NOUNS = [
  ['Saucepan', 'Whisk', 'Colander', 'Skillet', 'Ladle', 'Grater', 'Teapot', 'Trivet', 'Cleaver', 'Mortar'],
  ['Trowel', 'Rake', 'Hosepipe', 'Planter', 'Secateurs', 'Wheelbarrow', 'Birdbath', 'Sprinkler', 'Hoe', 'Lantern'],
  ['Atlas', 'Almanac', 'Novel', 'Cookbook', 'Journal', 'Anthology', 'Memoir', 'Gazetteer', 'Primer', 'Lexicon'],
];
const TAXES = [0, 5.5, 10, 20];

function productsFor(categoryIds) {
  const products = [];
  NOUNS.forEach((nouns, c) => nouns.forEach((noun, i) => {
    const n = c * 10 + i;
    const adjective = ADJECTIVES[(i + c * 3) % ADJECTIVES.length];
    products.push({
      title: n === 17 ? `${adjective.toLowerCase()} ${noun.toLowerCase()}` : `${adjective} ${noun}`,
      description: `A ${noun.toLowerCase()} for everyday use, item ${n + 1}.`,
      price: Math.round((3 + ((n * 37) % 90) + (n % 4) * 0.25) * 100) / 100,
      tax_percent: TAXES[(n + 1) % TAXES.length],
      category_id: categoryIds[c],
      stock: n === 5 ? 0 : n === 6 ? 4 : 50,
    });
  }));
  return products;
}

async function main() {
  const login = await api('POST', `${config.api.auth}/api/auth/login`, { body: config.admin });
  if (login.status !== 200) throw new Error(`admin login: ${login.status} ${login.text}`);
  const token = login.json.access_token;
  const categoryIds = [];
  for (const category of CATEGORIES) {
    const made = await api('POST', `${config.api.categories}/api/categories`, { token, body: category });
    if (made.status !== 201) throw new Error(`category ${category.name}: ${made.status} ${made.text}`);
    categoryIds.push(made.json.id);
  }
  for (const product of productsFor(categoryIds)) {
    const made = await api('POST', `${config.api.products}/api/products`, { token, body: product });
    if (made.status !== 201) throw new Error(`product ${product.title}: ${made.status} ${made.text}`);
  }
  console.log(`seeded ${CATEGORIES.length} categories and ${NOUNS.flat().length} products`);
}

main().catch((err) => {
  console.error(`seed failed: ${err.message}`);
  process.exit(1);
});
