"""A deterministic, realistic product catalogue and the known-item queries that test it.

`generate_catalogue(products, seed)` always returns the same categories and products for the
same arguments: about forty categories, each with its own product nouns, materials and
styles, so titles read like a shop's ("Alpenglow Organic Cotton Crew-Neck T-Shirt - Navy
Blue"). `known_item_queries(catalogue, per_kind, seed)` picks products and builds the query a
shopper who knows the item would type, in the variants that search must survive: exact,
one typo, two typos, a half-typed last word, and an accent or case change.

Importable and typed, so a demo seed or a test can reuse it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from rapidfuzz.distance import OSA

_TITLE_WORD = re.compile(r"[^\W_][^\s]*[^\W_]|[^\W_]")
_ACCENTED = str.maketrans("aeiouAEIOU", "áéíóúÁÉÍÓÚ")
_EPOCH = datetime(2023, 1, 1, tzinfo=UTC)


def _split(words: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in words.split("|"))


@dataclass(frozen=True, slots=True)
class _CategorySpec:
    name: str
    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    styles: tuple[str, ...]
    uses: tuple[str, ...]
    colours: bool
    sizes: str | None


BRANDS = _split(
    "Alpenglow|Northwind|Bergström|Élan|Fjordline|Kestrel|Marlowe|Oakridge|Palomar|Quillon|"
    "Redfern|Saltmarsh|Tidewater|Umbra|Vantage|Westbrook|Yarrow|Zephyrine|Brightwater|"
    "Copperfield|Driftwood|Evergreen|Foxglove|Greystone|Hollowell|Ironbark|Juniper|Kingsley|"
    "Larkspur|Montréal|Nightingale|Ostrander|Pemberton|Riverside|Søndergaard|Thistledown|"
    "Whitlock|Ashbury|Bramblewood|Caledonia|Dunmore|Fairhaven|Glenmoor|Harrowgate|Lumière|"
    "Mistral|Norðurljós|Pinecrest|Rosewood|Silverline|Trailhead|Wildcroft|Zürichsee|Café Noir|"
    "Belle Époque|Ondine|Corvus"
)
COLOURS = _split(
    "Navy Blue|Sky Blue|Charcoal Grey|Heather Grey|Forest Green|Olive|Burgundy|Crème|Ivory|"
    "Black|White|Sand|Terracotta|Mustard Yellow|Rosé|Blush Pink|Teal|Mauve|Rust Orange|"
    "Lavender|Chocolate Brown|Sage Green|Cobalt|Coral|Bordeaux|Mint|Plum|Stone|Indigo|Ochre"
)
SIZES = {
    "apparel": _split("XS|S|M|L|XL|XXL"),
    "shoes": tuple(f"EU {n}" for n in range(36, 47)),
    "kitchen": _split("16 cm|20 cm|24 cm|28 cm|1 L|2 L|5 L"),
    "pack": _split("Pack of 2|Pack of 3|Pack of 6|Box of 12|Box of 20"),
}
_MATERIALS = {
    "cloth": "Organic Cotton|Merino Wool|Linen|Bamboo Jersey|Recycled Polyester|Cashmere|"
    "Pima Cotton|Hemp|Fleece|Corduroy|Denim|Silk Blend",
    "kit": "Stainless Steel|Cast Iron|Enamelled|Ceramic|Bamboo|Borosilicate Glass|Copper|"
    "Carbon Steel|Olive Wood|Silicone|Porcelain|Anodised Aluminium",
    "gear": "Ripstop Nylon|Waxed Canvas|Recycled PET|Aluminium|Carbon Fibre|Full-Grain Leather|"
    "Neoprene|Gore-Tex|Cordura|Titanium",
    "home": "Solid Oak|Walnut|Rattan|Velvet|Jute|Marble|Terracotta|Stoneware|Brass|"
    "Recycled Glass|Wool Felt|Linen",
    "food": "Organic|Fair Trade|Single-Origin|Wild|Cold-Pressed|Artisanal|Stone-Ground|"
    "Sun-Dried|Free-Range|Smoked",
    "jewel": "Sapphire Crystal|Sterling Silver|Gold-Plated|Titanium|Stainless Steel",
    "fitness": "Natural Rubber|Cork|TPE|Cast Iron|Neoprene",
    "toy": "Wooden|Recycled Plastic|Organic Cotton|Cardboard",
    "paper": "Recycled Paper|Leather-Bound|Linen-Bound|Kraft",
    "skin": "Aloe Vera|Shea Butter|Rosehip Oil|Hyaluronic|Vitamin C|Argan Oil",
}
_STYLES = {
    "fit": "Slim-Fit|Relaxed|Oversized|Classic|Tapered|Cropped|Lightweight|Heavyweight|Vintage|"
    "Everyday",
    "out": "Waterproof|Insulated|Packable|Ultralight|Breathable|Windproof|Expedition|Trail|Alpine|"
    "All-Season",
    "tech": "Wireless|Bluetooth|Noise-Cancelling|USB-C|Rechargeable|Waterproof|Magnetic|"
    "Solar-Powered|Smart|Compact",
}
# name; nouns; materials; styles (a key of _STYLES, or the styles); uses; colours; sizes
_CATEGORY_ROWS = (
    "Men's T-Shirts; Crew-Neck T-Shirt|V-Neck T-Shirt|Henley|Pocket Tee|Long-Sleeve T-Shirt; "
    "cloth; fit; weekends|the gym|layering; y; apparel",
    "Women's T-Shirts; Boxy T-Shirt|Scoop-Neck Tee|Ringer T-Shirt|Tank Top|Baby Tee; cloth; fit; "
    "summer days|layering|lounging; y; apparel",
    "Shirts; Oxford Shirt|Flannel Shirt|Chambray Shirt|Overshirt|Poplin Shirt; cloth; fit; "
    "the office|weekends|evenings out; y; apparel",
    "Dresses; Maxi Dress|Wrap Dress|Shirt Dress|Sundress|Slip Dress|Pinafore; cloth; fit; "
    "summer evenings|weddings|the office; y; apparel",
    "Knitwear; Cardigan|Crewneck Sweater|Turtleneck|Fisherman Jumper|Knitted Vest; cloth; fit; "
    "cold mornings|layering|the weekend; y; apparel",
    "Jeans & Trousers; Jeans|Chinos|Cargo Trousers|Wide-Leg Trousers|Joggers|Shorts; cloth; fit; "
    "everyday wear|travel|weekends; y; apparel",
    "Jackets & Coats; Parka|Rain Jacket|Bomber Jacket|Trench Coat|Puffer Jacket|Gilet; gear; "
    "out; city commutes|hiking|rainy days; y; apparel",
    "Running Shoes; Running Shoe|Trail Runner|Racing Flat|Daily Trainer|Tempo Shoe; gear; out; "
    "long runs|race day|trail running; y; shoes",
    "Sneakers; Low-Top Sneaker|High-Top Sneaker|Court Shoe|Slip-On Sneaker|Canvas Sneaker; gear; "
    "fit; everyday wear|city walks|weekends; y; shoes",
    "Boots; Chelsea Boot|Hiking Boot|Chukka Boot|Work Boot|Snow Boot|Wellington; gear; out; "
    "muddy trails|winter|the city; y; shoes",
    "Socks & Underwear; Ankle Socks|Hiking Socks|Boxer Briefs|Trunks|Bralette|Briefs; cloth; "
    "fit; every day|long hikes|sport; y; pack",
    "Bags & Backpacks; Backpack|Tote Bag|Duffel Bag|Messenger Bag|Rolltop Backpack|Sling; gear; "
    "out; commuting|travel|weekend trips; y; -",
    "Accessories; Beanie|Scarf|Baseball Cap|Leather Belt|Gloves|Sunglasses|Wallet; cloth; fit; "
    "cold days|gifting|everyday carry; y; -",
    "Watches & Jewellery; Chronograph Watch|Field Watch|Pendant Necklace|Signet Ring|Bracelet; "
    "jewel; Minimalist|Vintage|Classic|Automatic; special occasions|gifting|daily wear; y; -",
    "Kitchen; Chef's Knife|Cutting Board|Colander|Spatula|Whisk|Mixing Bowl|Grater; kit; "
    "Professional|Everyday|Compact|Ergonomic; home cooks|meal prep|baking; y; kitchen",
    "Cookware; Frying Pan|Saucepan|Dutch Oven|Wok|Stockpot|Skillet|Griddle; kit; "
    "Non-Stick|Induction-Ready|Professional|Heavy-Duty; searing|slow cooking|weeknight dinners; "
    "y; kitchen",
    "Tableware; Dinner Plate|Pasta Bowl|Mug|Teapot|Serving Platter|Espresso Cup; home; "
    "Handmade|Speckled|Glazed|Stackable; dinner parties|breakfast|gifting; y; pack",
    "Coffee & Tea Gear; Pour-Over Dripper|French Press|Moka Pot|Milk Frother|Tea Infuser|Grinder; "
    "kit; Barista|Compact|Classic|Insulated; slow mornings|the office|camping; y; -",
    "Home Decor; Table Lamp|Vase|Wall Mirror|Candle Holder|Picture Frame|Planter; home; "
    "Scandinavian|Mid-Century|Minimalist|Rustic; living rooms|gifting|bedrooms; y; -",
    "Bedding; Duvet Cover|Pillowcase|Fitted Sheet|Weighted Blanket|Quilt|Throw; cloth; "
    "Stonewashed|Percale|Sateen|Waffle-Knit; restful sleep|guest rooms|winter; y; -",
    "Bath; Bath Towel|Bath Mat|Bathrobe|Soap Dish|Toothbrush Holder|Shower Curtain; home; "
    "Plush|Quick-Dry|Spa|Hotel; spa days|guest bathrooms|every day; y; -",
    "Furniture; Armchair|Side Table|Bookshelf|Desk|Dining Chair|Ottoman|Sideboard; home; "
    "Scandinavian|Mid-Century|Industrial|Modular; small flats|home offices|dining rooms; y; -",
    "Lighting; Pendant Light|Floor Lamp|Desk Lamp|String Lights|Wall Sconce|Lantern; home; "
    "Dimmable|Industrial|Globe|Adjustable; reading|cosy evenings|home offices; y; -",
    "Garden; Watering Can|Pruning Shears|Raised Bed|Bird Feeder|Hose Reel|Trowel; kit; "
    "Heavy-Duty|Ergonomic|Weatherproof|Compact; balcony gardens|allotments|spring planting; y; -",
    "Tools & DIY; Cordless Drill|Screwdriver Set|Spirit Level|Tape Measure|Toolbox|Hammer; gear; "
    "Professional|Compact|Heavy-Duty|Magnetic; weekend projects|workshops|repairs; y; -",
    "Camping & Hiking; Tent|Sleeping Bag|Trekking Poles|Headlamp|Camping Stove|Hammock; gear; "
    "out; backpacking|festivals|wild camping; y; -",
    "Cycling; Bike Helmet|Cycling Jersey|Bike Light|Saddle Bag|Bike Lock|Bidon; gear; out; "
    "commuting|long rides|gravel riding; y; -",
    "Yoga & Fitness; Yoga Mat|Resistance Bands|Kettlebell|Foam Roller|Dumbbells|Jump Rope; "
    "fitness; Non-Slip|Travel|Extra-Thick|Adjustable; home workouts|the studio|recovery; y; -",
    "Swimwear; Swim Shorts|Swimsuit|Bikini|Rash Guard|Swim Goggles|Beach Towel; cloth; fit; "
    "the beach|pool training|holidays; y; apparel",
    "Headphones & Audio; Headphones|Earbuds|Portable Speaker|Soundbar|Turntable|Microphone; gear; "
    "tech; commuting|home cinema|podcasting; y; -",
    "Phone Accessories; Phone Case|Charging Cable|Power Bank|Car Mount|Screen Protector; gear; "
    "tech; travel|everyday carry|road trips; y; -",
    "Computer Accessories; Mechanical Keyboard|Mouse|Laptop Stand|USB Hub|Webcam|Monitor Arm; "
    "gear; tech; home offices|gaming|travel; y; -",
    "Toys & Games; Board Game|Jigsaw Puzzle|Building Blocks|Plush Toy|Kite|Marble Run; toy; "
    "Educational|Classic|Family|Travel; family evenings|rainy days|birthdays; n; -",
    "Books & Stationery; Notebook|Fountain Pen|Planner|Sketchbook|Pencil Case|Desk Organiser; "
    "paper; Dotted|Pocket|A5|Undated; journaling|the office|sketching; y; -",
    "Beauty & Skincare; Face Cream|Cleanser|Serum|Lip Balm|Sunscreen|Body Lotion|Shampoo; skin; "
    "Fragrance-Free|Vegan|Hydrating|Gentle; sensitive skin|daily routines|travel; n; pack",
    "Coffee & Tea; Espresso Beans|Ground Coffee|Earl Grey Tea|Green Tea|Chai|Matcha|Rooibos; "
    "food; Dark Roast|Medium Roast|Loose-Leaf|Decaf; slow mornings|the office|gifting; n; pack",
    "Pantry; Olive Oil|Pasta|Honey|Peanut Butter|Granola|Hot Sauce|Jalapeño Salsa|"
    "Crème Brûlée Mix; food; Gourmet|Family-Size|Classic|Spicy; "
    "weeknight dinners|breakfast|gifting; n; pack",
    "Fresh Fruit; Blueberries|Strawberries|Raspberries|Apples|Mangoes|Cherries|Peaches; food; "
    "Seasonal|Hand-Picked|Premium|Family; snacking|smoothies|baking; n; pack",
    "Snacks; Dark Chocolate|Crisps|Trail Mix|Rice Cakes|Biscuits|Protein Bars|Pretzels; food; "
    "Sea Salt|Gluten-Free|Vegan|Sharing; lunch boxes|hiking|movie nights; n; pack",
    "Pet Supplies; Dog Bed|Cat Tree|Dog Leash|Pet Bowl|Chew Toy|Cat Scratcher|Dog Harness; gear; "
    "Orthopaedic|Reflective|Durable|Washable; puppies|older dogs|indoor cats; y; -",
)


def _category_spec(row: str) -> _CategorySpec:
    name, nouns, materials, styles, uses, colours, sizes = (part.strip() for part in row.split(";"))
    return _CategorySpec(
        name,
        _split(nouns),
        _split(_MATERIALS[materials]),
        _split(_STYLES.get(styles, styles)),
        _split(uses),
        colours == "y",
        None if sizes == "-" else sizes,
    )


CATEGORY_SPECS = tuple(_category_spec(row) for row in _CATEGORY_ROWS)
DESCRIPTION_TEMPLATES = (
    "A {noun} in {material}, made for {use}.",
    "Our best-selling {noun}, now in more colours.",
    "Thoughtfully designed and built to last, it is ideal for {use}.",
    "Made from responsibly sourced {material}.",
    "Pairs well with a linen shirt and canvas sneakers.",
    "Easy to care for: machine washable or wipe clean.",
    "Backed by our two-year guarantee and free returns.",
    "Loved by customers for {use}.",
    "Packed in plastic-free boxes that you can recycle.",
    "Each {noun} is inspected by hand before it leaves our workshop.",
)


@dataclass(frozen=True, slots=True)
class CatalogueCategory:
    id: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class CatalogueProduct:
    id: str
    title: str
    description: str
    price_cents: int
    category_id: str
    stock: int
    created_at: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class Catalogue:
    categories: tuple[CatalogueCategory, ...]
    products: tuple[CatalogueProduct, ...]

    def category_name(self, category_id: str) -> str:
        return next(c.name for c in self.categories if c.id == category_id)


class QueryKind(StrEnum):
    EXACT = "exact"
    ONE_TYPO = "1 typo"
    TWO_TYPOS = "2 typos"
    PREFIX = "prefix"
    ACCENT_CASE = "accent/case"


@dataclass(frozen=True, slots=True)
class KnownItemQuery:
    kind: QueryKind
    text: str
    product_id: str


def generate_catalogue(products: int, seed: int = 7) -> Catalogue:
    """`products` products over the fixed categories; the same seed gives the same shop."""
    rng = random.Random(seed)
    categories = tuple(
        CatalogueCategory(f"cat-{n:02d}", spec.name, f"{spec.name} for every day.")
        for n, spec in enumerate(CATEGORY_SPECS)
    )
    made = tuple(_product(rng, n, categories) for n in range(products))
    return Catalogue(categories, made)


def _product(
    rng: random.Random, number: int, categories: Sequence[CatalogueCategory]
) -> CatalogueProduct:
    position = rng.randrange(len(CATEGORY_SPECS))
    spec = CATEGORY_SPECS[position]
    noun, material, style = rng.choice(spec.nouns), rng.choice(spec.materials), None
    if spec.styles and rng.random() < 0.7:
        style = rng.choice(spec.styles)
    brand = rng.choice(BRANDS) if rng.random() < 0.85 else None
    words = [w for w in (brand, material, style, noun) if w]
    title = " ".join(words)
    if spec.colours and rng.random() < 0.8:
        title += f" - {rng.choice(COLOURS)}"
    if spec.sizes and rng.random() < 0.3:
        title += f", {rng.choice(SIZES[spec.sizes])}"
    return CatalogueProduct(
        id=f"prod-{number:06d}",
        title=title,
        description=_description(rng, noun, material, spec.uses),
        price_cents=round(rng.lognormvariate(7.8, 0.9)) + 99,
        category_id=categories[position].id,
        stock=0 if rng.random() < 0.15 else rng.randint(1, 400),
        created_at=(_EPOCH + timedelta(minutes=rng.randrange(2 * 365 * 24 * 60))).isoformat(),
    )


def _description(rng: random.Random, noun: str, material: str, uses: Sequence[str]) -> str:
    sentences = rng.sample(DESCRIPTION_TEMPLATES, rng.randint(1, 3))
    return " ".join(
        s.format(noun=noun.lower(), material=material.lower(), use=rng.choice(uses))
        for s in sentences
    )


def known_item_queries(catalogue: Catalogue, per_kind: int, seed: int = 11) -> list[KnownItemQuery]:
    """`per_kind` queries of each kind, each naming one product by the 2 or 3 title words
    that single it out best (the words a shopper remembers). A product whose words do not
    allow a kind's variant (no word long enough for two typos) is skipped for that kind."""
    rng = random.Random(seed)
    holders: dict[str, set[int]] = {}
    for number, product in enumerate(catalogue.products):
        for word in _memorable_words(product.title):
            holders.setdefault(word.lower(), set()).add(number)
    queries: list[KnownItemQuery] = []
    for kind, make in _VARIANTS.items():
        made = 0
        for _ in range(per_kind * 50):
            if made == per_kind:
                break
            product = rng.choice(catalogue.products)
            words = _distinctive_words(product.title, holders)
            text = make(rng, words, product.title) if len(words) >= 2 else None
            if text is not None:
                queries.append(KnownItemQuery(kind, text, product.id))
                made += 1
    return queries


def broad_queries(catalogue: Catalogue, count: int, seed: int = 13) -> list[str]:
    """What a search box sends while someone types a common word: "s", "sh", "shi", ...,
    "shirt". Such queries match thousands of products and set the latency tail."""
    rng = random.Random(seed)
    queries: list[str] = []
    while len(queries) < count:
        title = rng.choice(catalogue.products).title
        word = rng.choice(_memorable_words(title)).lower()
        queries += [word[:end] for end in range(1, len(word) + 1)]
    return queries[:count]


def _words(title: str) -> list[str]:
    return _TITLE_WORD.findall(title)


def _memorable_words(title: str) -> list[str]:
    """Title words a shopper would type: not sizes ("XS", "42") or other fragments."""
    return [w for w in dict.fromkeys(_words(title)) if len(w) >= 3 and not w.isdigit()]


def _distinctive_words(title: str, holders: dict[str, set[int]]) -> list[str]:
    """Two title words, or three when two still fit other products, chosen greedily so that
    as few other products as possible hold them all; in title order, as people recall."""
    words = _memorable_words(title)
    chosen: list[str] = []
    sharing: set[int] | None = None
    while len(chosen) < min(3, len(words)) and (len(chosen) < 2 or len(sharing or ()) > 1):
        candidates = [
            (holders[w.lower()] & sharing if sharing is not None else holders[w.lower()], w)
            for w in words
            if w not in chosen
        ]
        sharing, best = min(candidates, key=lambda pair: (len(pair[0]), pair[1]))
        chosen.append(best)
    return [w for w in words if w in chosen]


def _exact(rng: random.Random, words: list[str], title: str) -> str | None:
    return " ".join(words)


def _one_typo(rng: random.Random, words: list[str], title: str) -> str | None:
    return _with_typos(rng, words, min_length=5, edits=1)


def _two_typos(rng: random.Random, words: list[str], title: str) -> str | None:
    long_words = [w for w in _words(title) if len(w) >= 9 and w.isalpha()]
    if long_words and not any(w in long_words for w in words):
        # Keep two remembered words and add a long one, in title order.
        kept = {*words[:2], rng.choice(long_words)}
        words = [w for w in dict.fromkeys(_words(title)) if w in kept]
    return _with_typos(rng, words, min_length=9, edits=2)


def _with_typos(rng: random.Random, words: list[str], min_length: int, edits: int) -> str | None:
    candidates = [i for i, w in enumerate(words) if len(w) >= min_length and w.isalpha()]
    if not candidates:
        return None
    position = rng.choice(candidates)
    changed = list(words)
    for _ in range(20):  # two random edits can cancel out; retry until exactly `edits`
        changed[position] = words[position]
        for _ in range(edits):
            changed[position] = _one_edit(rng, changed[position])
        # A deletion can shorten the word below the length that allows its typos; such a
        # query is unanswerable by the rules (as in Meilisearch), so it is not generated.
        typed = changed[position]
        if (
            len(typed) >= min_length
            and OSA.distance(typed.lower(), words[position].lower()) == edits
        ):
            return " ".join(changed)
    return None


def _one_edit(rng: random.Random, word: str) -> str:
    """Substitute, delete, insert or transpose one letter, never the first (people rarely
    miss the first letter, and the word must stay recognisable)."""
    at = rng.randrange(1, len(word) - 1)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    edit = rng.choice(("substitute", "delete", "insert", "transpose"))
    if edit == "substitute":
        return word[:at] + letter + word[at + 1 :]
    if edit == "delete":
        return word[:at] + word[at + 1 :]
    if edit == "insert":
        return word[:at] + letter + word[at:]
    return word[:at] + word[at + 1] + word[at] + word[at + 2 :]


def _prefix(rng: random.Random, words: list[str], title: str) -> str | None:
    last = words[-1]
    if len(last) < 4:
        return None
    return " ".join([*words[:-1], last[: rng.randint(2, len(last) - 1)]])


def _accent_or_case(rng: random.Random, words: list[str], title: str) -> str | None:
    text = " ".join(words)
    stripped = text.translate(str.maketrans("áàâäéèêëíîïóôöúûüçñøÁÉÖÜ", "aaaaeeeeiiiooouuucnoAEOU"))
    if stripped != text:
        return stripped  # typed without the accents the title has
    vowels = [i for i, letter in enumerate(text) if letter in "aeiouAEIOU"]
    if rng.random() < 0.5 or not vowels:
        return text.upper()
    at = rng.choice(vowels)
    return text[:at] + text[at].translate(_ACCENTED) + text[at + 1 :]


_VARIANTS: dict[QueryKind, Callable[[random.Random, list[str], str], str | None]] = {
    QueryKind.EXACT: _exact,
    QueryKind.ONE_TYPO: _one_typo,
    QueryKind.TWO_TYPOS: _two_typos,
    QueryKind.PREFIX: _prefix,
    QueryKind.ACCENT_CASE: _accent_or_case,
}
