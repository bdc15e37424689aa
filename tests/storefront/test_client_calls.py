"""Every API call of the RetailHub storefront and admin console (frontend/src of the
original repository), replayed as the client sends it: the same paths, query strings in
axios' order, JSON bodies with their nulls and extra fields, and the stored token on every
request. Each test asserts the status and the fields the page reads.
docs/storefront-compatibility.md lists the calls and names the test of each."""

from __future__ import annotations

from typing import Any

import pytest

from tests.storefront.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Browser, Json, System
from tests.support import assert_error

SHOPPER_EMAIL, SHOPPER_PASSWORD = "shopper@retailhub.test", "shopper-pass-123"


async def signed_in_admin(system: System) -> Browser:
    admin = system.browser()
    body = await admin.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    assert body["user"]["role"] == "admin"  # AuthContext: isAdmin = user.role === 'admin'
    return admin


async def dashboard_product(admin: Browser, category_id: str, **fields: Any) -> Json:
    """AdminDashboard.handleCreateProduct: the form's strings parsed, blanks sent as null."""
    body = {
        "title": "Classic Burger",
        "description": None,
        "price": 9.99,
        "tax_percent": 8,
        "stock": 50,
        "category_id": category_id,
        "image_url": None,
        **fields,
    }
    response = await admin.send("products", "POST", "/api/products", body)
    assert response.status_code == 201, response.text
    made: Json = response.json()
    return made


async def category(admin: Browser, name: str) -> str:
    """AdminDashboard.handleCreateCategory / CategoryForm: `{name, description}`."""
    body = {"name": name, "description": ""}
    response = await admin.send("categories", "POST", "/api/categories", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def catalogue(system: System) -> tuple[Browser, str, list[Json]]:
    admin = await signed_in_admin(system)
    burgers = await category(admin, "Burgers")
    made = [
        await dashboard_product(admin, burgers),
        await dashboard_product(admin, burgers, title="Veggie Burger", price=10.99, stock=3),
        await dashboard_product(
            admin, burgers, title="Apple Pie", price=2.5, image_url="https://cdn.test/pie.jpg"
        ),
    ]
    await system.settle_stock()
    return admin, burgers, made


def assert_cards(products: list[Json]) -> None:
    """ProductCard: id, title, price and tax_percent as numbers (it adds them), image_url,
    stock (compared with numbers)."""
    for product in products:
        assert isinstance(product["id"], str)
        assert isinstance(product["title"], str)
        assert isinstance(product["price"], int | float)
        assert isinstance(product["tax_percent"], int | float)
        assert isinstance(product["stock"], int)
        assert "image_url" in product


# ---- shopping -----------------------------------------------------------------------------


async def test_home_lists_categories_and_products(system: System) -> None:
    _admin, burgers, made = await catalogue(system)
    shopper = system.browser()
    categories = await shopper.send("categories", "GET", "/api/categories")
    assert categories.status_code == 200
    assert [(c["id"], c["name"]) for c in categories.json()["categories"]] == [(burgers, "Burgers")]
    home = await shopper.send("products", "GET", "/api/products?page=1&limit=8")
    assert home.status_code == 200, home.text
    assert_cards(home.json()["products"])
    assert len(home.json()["products"]) == 3
    chosen = await shopper.send(
        "products", "GET", f"/api/products?page=1&limit=8&category_id={burgers}"
    )
    assert chosen.json()["total"] == 3
    section = await shopper.send("products", "GET", f"/api/products?category_id={burgers}&limit=4")
    assert section.status_code == 200
    assert {p["id"] for p in section.json()["products"]} == {p["id"] for p in made}
    assert {p["stock"] for p in section.json()["products"]} == {50, 3}


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        ("name", "asc", ["Apple Pie", "Classic Burger", "Veggie Burger"]),
        ("name", "desc", ["Veggie Burger", "Classic Burger", "Apple Pie"]),
        ("price", "asc", ["Apple Pie", "Classic Burger", "Veggie Burger"]),
        ("price", "desc", ["Veggie Burger", "Classic Burger", "Apple Pie"]),
    ],
)
async def test_product_listing_sorts_as_its_select_asks(
    system: System, sort: str, order: str, expected: list[str]
) -> None:
    _admin, burgers, _made = await catalogue(system)
    shopper = system.browser()
    query = f"page=1&limit=12&sort={sort}&order={order}"
    for extra in (
        "",
        f"&category_id={burgers}",
        "&search=burger",
        f"&category_id={burgers}&search=x",
    ):
        response = await shopper.send("products", "GET", f"/api/products?{query}{extra}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert [p["title"] for p in body["products"]] == expected, extra
        assert (body["total"], body["total_pages"]) == (3, 1)
    second = await shopper.send(
        "products", "GET", f"/api/products?page=2&limit=12&sort={sort}&order={order}"
    )
    assert second.json()["products"] == []


async def test_a_shopper_registers_signs_in_fills_the_cart_and_orders(system: System) -> None:
    _admin, _burgers, (burger, veggie, _pie) = await catalogue(system)
    shopper = system.browser()
    register = {"name": "Sam", "email": SHOPPER_EMAIL, "password": SHOPPER_PASSWORD}
    registered = await shopper.send("auth", "POST", "/api/auth/register", register)
    assert registered.status_code == 201, registered.text
    body = await shopper.login(SHOPPER_EMAIL, SHOPPER_PASSWORD)
    assert body["user"]["email"] == SHOPPER_EMAIL
    assert isinstance(body["refresh_token"], str)

    cart = await cart_call(shopper, "GET", "/api/auth/me/cart")
    assert (cart["items"], cart["total_items"], cart["total"]) == ([], 0, 0)
    cart = await cart_call(
        shopper, "POST", "/api/auth/me/cart", {"product_id": burger["id"], "quantity": 1}
    )
    cart = await cart_call(
        shopper, "POST", "/api/auth/me/cart", {"product_id": veggie["id"], "quantity": 1}
    )
    cart = await cart_call(shopper, "PATCH", f"/api/auth/me/cart/{burger['id']}", {"quantity": 2})
    cart = await cart_call(shopper, "PATCH", f"/api/auth/me/cart/{veggie['id']}", {"quantity": 3})
    cart = await cart_call(shopper, "DELETE", f"/api/auth/me/cart/{veggie['id']}")
    assert [(i["product_id"], i["name"], i["quantity"]) for i in cart["items"]] == [
        (burger["id"], "Classic Burger", 2)
    ]
    assert (cart["total_items"], cart["subtotal"], cart["tax"]) == (2, 19.98, 1.6)

    order = {
        "items": [
            {"product_id": i["product_id"], "quantity": i["quantity"]} for i in cart["items"]
        ],
        "shipping_address": "221B Baker Street, London",
    }
    placed = await shopper.send("orders", "POST", "/api/orders", order)
    assert placed.status_code == 201, placed.text
    assert isinstance(placed.json()["id"], str)
    assert placed.json()["total"] == cart["total"]  # Cart.jsx: orderSuccess.total.toFixed(2)
    cleared = await cart_call(shopper, "DELETE", "/api/auth/me/cart")  # Cart.jsx: clearCart()
    assert (cleared["items"], cleared["total"]) == ([], 0)

    orders = await shopper.send("orders", "GET", "/api/orders?page=1&limit=10")
    assert orders.status_code == 200, orders.text
    [listed] = orders.json()["orders"]
    assert orders.json()["total_pages"] == 1
    assert_order_card(listed)
    assert listed["shipping_address"] == "221B Baker Street, London"


async def cart_call(browser: Browser, method: str, path: str, body: object = None) -> Json:
    """CartContext: every call answers the whole cart, which the page shows as it is."""
    response = await browser.send("auth", method, path, body)
    assert response.status_code == 200, response.text
    cart: Json = response.json()
    for item in cart["items"]:
        assert {"product_id", "name", "price", "tax_percent", "quantity", "image_url"} <= set(item)
    for total in ("subtotal", "tax", "total"):
        assert isinstance(cart[total], int | float)  # Cart.jsx: cart.total.toFixed(2)
    assert isinstance(cart["total_items"], int)
    return cart


def assert_order_card(order: Json) -> None:
    """Orders.jsx: id, created_at, status (capitalised), items' title/quantity/price/
    tax_percent, subtotal, tax_total and total as numbers, shipping_address."""
    assert isinstance(order["id"], str)
    assert isinstance(order["created_at"], str)
    assert order["status"] == "confirmed"
    for item in order["items"]:
        assert isinstance(item["title"], str)
        assert isinstance(item["quantity"], int)
        assert isinstance(item["price"], int | float)
        assert isinstance(item["tax_percent"], int | float)
    for total in ("subtotal", "tax_total", "total"):
        assert isinstance(order[total], int | float)


async def test_adding_past_the_stock_is_refused_in_the_error_format(system: System) -> None:
    _admin, _burgers, (_burger, veggie, _pie) = await catalogue(system)
    shopper = system.browser()
    register = {"name": "Sam", "email": SHOPPER_EMAIL, "password": SHOPPER_PASSWORD}
    await shopper.send("auth", "POST", "/api/auth/register", register)
    await shopper.login(SHOPPER_EMAIL, SHOPPER_PASSWORD)
    body = {"product_id": veggie["id"], "quantity": 4}
    refused = await shopper.send("auth", "POST", "/api/auth/me/cart", body)
    # CartContext shows error.response.data.detail to the shopper: ours says why.
    assert_error(refused, 409, "INSUFFICIENT_STOCK")
    assert "stock" in refused.json()["detail"].lower()


async def test_a_failed_sign_in_is_a_401_that_the_client_turns_into_a_redirect(
    system: System,
) -> None:
    shopper = system.browser()
    wrong = {"email": SHOPPER_EMAIL, "password": "not-the-password"}
    response = await shopper.send("auth", "POST", "/api/auth/login", wrong)
    assert_error(response, 401, "INVALID_CREDENTIALS")


async def test_a_stale_token_does_not_sign_the_shopper_out_while_browsing(
    system: System,
) -> None:
    """axios' 401 interceptor signs out and reloads /login: public reads must not answer
    401 to a token that no longer verifies."""
    _admin, _burgers, made = await catalogue(system)
    shopper = system.browser()
    shopper.token = "expired.or.foreign"
    for service, path in [
        ("categories", "/api/categories"),
        ("products", "/api/products?page=1&limit=12&sort=name&order=asc"),
        ("products", f"/api/products/{made[0]['id']}"),  # the product page
    ]:
        response = await shopper.send(service, "GET", path)
        assert response.status_code == 200, (path, response.text)


# ---- the admin console --------------------------------------------------------------------


async def test_dashboard_counts_and_creates(system: System) -> None:
    admin, burgers, _made = await catalogue(system)
    stats = await admin.send("products", "GET", "/api/products?limit=1")
    assert stats.json()["total"] == 3  # AdminDashboard: products.data.total
    categories = await admin.send("categories", "GET", "/api/categories")
    assert len(categories.json()["categories"]) == 1
    made = await dashboard_product(admin, burgers, title="Fries", description="Crisp")
    assert (made["description"], made["image_url"], made["is_active"]) == ("Crisp", None, True)
    pie = await admin.send("products", "GET", "/api/products?page=1&limit=12&sort=name&order=asc")
    assert pie.json()["products"][0]["image_url"] == "https://cdn.test/pie.jpg"


async def test_admin_products_page_and_product_form(system: System) -> None:
    admin, burgers, made = await catalogue(system)
    listed = await admin.send("products", "GET", "/api/products?page=1&limit=10")
    assert listed.status_code == 200
    assert listed.json()["total_pages"] == 1
    one = await admin.send("products", "GET", f"/api/products/{made[0]['id']}")
    assert (one.json()["title"], one.json()["is_active"]) == ("Classic Burger", True)
    # ProductForm.handleSubmit (create): its state spread, numbers parsed. It names the title
    # `name` and sends is_combo and is_active.
    form = {
        "name": "Pepperoni Pizza",
        "description": "",
        "price": 14.99,
        "tax_percent": 8,
        "stock": 8,
        "category_id": burgers,
        "image_url": "",
        "is_combo": False,
        "is_active": False,
    }
    created = await admin.send("products", "POST", "/api/products", form)
    assert created.status_code == 201, created.text
    pizza = created.json()
    assert (pizza["title"], pizza["image_url"], pizza["is_active"]) == (
        "Pepperoni Pizza",
        None,
        False,
    )
    # Unchecked "Active (visible to customers)": the shop does not show it.
    shopper = system.browser()
    assert_error(await shopper.send("products", "GET", f"/api/products/{pizza['id']}"), 404)
    shop_list = await shopper.send("products", "GET", "/api/products?page=1&limit=12")
    assert pizza["id"] not in [p["id"] for p in shop_list.json()["products"]]


async def test_the_product_forms_category_is_the_options_text(system: System) -> None:
    """The console's <option value={cat._id}>: no category has `_id`, so the browser submits
    the option's text, the category's name. The original backend stored that name as the
    id; we refuse it rather than file a product under a category that does not exist."""
    admin, _burgers, _made = await catalogue(system)
    body = {"title": "Cola", "description": None, "price": 2.99, "tax_percent": 8}
    refused = await admin.send(
        "products", "POST", "/api/products", {**body, "stock": 100, "category_id": "Burgers"}
    )
    assert_error(refused, 422, "UNKNOWN_CATEGORY")


async def test_category_form_and_page(system: System) -> None:
    admin, burgers, _made = await catalogue(system)
    loaded = await admin.send("categories", "GET", f"/api/categories/{burgers}")
    assert (loaded.json()["name"], loaded.json()["description"]) == ("Burgers", "")
    edited = await admin.send(
        "categories",
        "PATCH",
        f"/api/categories/{burgers}",
        {"name": "Burgers & Wraps", "description": "Hand-made"},
    )
    assert edited.status_code == 200, edited.text
    listed = await admin.send("categories", "GET", "/api/categories")
    assert [c["name"] for c in listed.json()["categories"]] == ["Burgers & Wraps"]


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        # AdminProducts / AdminCategories delete by `_id`, which nothing sends: "undefined".
        ("products", "DELETE", "/api/products/undefined"),
        ("categories", "DELETE", "/api/categories/undefined"),
        # AuthContext.fetchUser: `/users/me` matches no prefix and goes to products.
        ("products", "GET", "/api/users/me"),
        # ForgotPassword: no backend ever had this route.
        ("auth", "POST", "/api/auth/forgot-password"),
    ],
)
async def test_the_clients_own_mistakes_get_clean_404s(
    system: System, service: str, method: str, path: str
) -> None:
    admin = await signed_in_admin(system)
    body = {"email": ADMIN_EMAIL} if method == "POST" else None
    assert_error(await admin.send(service, method, path, body), 404)


async def test_an_inactive_product_cannot_be_bought_but_past_orders_keep_it(
    system: System,
) -> None:
    admin, _burgers, (burger, veggie, _pie) = await catalogue(system)
    shopper = system.browser()
    register = {"name": "Sam", "email": SHOPPER_EMAIL, "password": SHOPPER_PASSWORD}
    await shopper.send("auth", "POST", "/api/auth/register", register)
    await shopper.login(SHOPPER_EMAIL, SHOPPER_PASSWORD)
    await cart_call(
        shopper, "POST", "/api/auth/me/cart", {"product_id": veggie["id"], "quantity": 1}
    )
    items = [{"product_id": burger["id"], "quantity": 1}]
    placed = await shopper.send(
        "orders", "POST", "/api/orders", {"items": items, "shipping_address": "1 Main St"}
    )
    assert placed.status_code == 201, placed.text

    for product in (burger, veggie):
        off = await admin.send(
            "products", "PATCH", f"/api/products/{product['id']}", {"is_active": False}
        )
        assert off.status_code == 200, off.text
    # Orders' catalogue view has the withdrawal once it has read products' feed (within
    # CATALOGUE_MAX_AGE_SECONDS in a running shop): refused from the view, not by products.
    await system.follow("orders", "products")
    again = await shopper.send(
        "orders", "POST", "/api/orders", {"items": items, "shipping_address": "1 Main St"}
    )
    assert_error(again, 422, "UNKNOWN_PRODUCT")
    add = {"product_id": burger["id"], "quantity": 1}
    assert_error(
        await shopper.send("auth", "POST", "/api/auth/me/cart", add), 422, "UNKNOWN_PRODUCT"
    )
    cart = await cart_call(shopper, "GET", "/api/auth/me/cart")
    assert cart["items"] == []
    assert [i["product_id"] for i in cart["unavailable_items"]] == [veggie["id"]]
    orders = await shopper.send("orders", "GET", "/api/orders?page=1&limit=10")
    [kept] = orders.json()["orders"]
    assert (kept["id"], kept["items"][0]["title"]) == (placed.json()["id"], "Classic Burger")
