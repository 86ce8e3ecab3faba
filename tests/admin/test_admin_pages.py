"""The admin's pages as HTML, on a test client of the whole application: escaping, forms built
from a schema declared only here, CSRF, the sign-in cookie, and what a read-only token sees."""

from __future__ import annotations

import re
from html import unescape

import pytest
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from servers import SECRET, token

from restplug import Resource, Scope, hookimpl

APP = {
    "id": 10,
    "name": "<script>alert('pwned')</script>",
    "type": "game",
    "developers": ["Studio <b>Bold</b>"],
    "prices": {
        "US": {
            "currency": "USD",
            "is_available": True,
            "price_story": [
                {
                    "price": 9.99,
                    "initial_price": 19.99,
                    "discount": 50,
                    "timestamp": "2026-01-02T00:00:00+00:00",
                },
                {
                    "price": 19.99,
                    "initial_price": 19.99,
                    "discount": 0,
                    "timestamp": "2025-01-02T00:00:00+00:00",
                },
            ],
        }
    },
}
WRITER = token("backend/*")
READER = token("backend/read")


class DimensionsSchema(Schema):
    width = fields.Float(required=True, validate=validate.Range(min=0))
    height = fields.Float(required=True)


class GadgetSchema(Schema):
    id = fields.Integer(required=True, strict=True)
    label = fields.String(required=True, validate=validate.Length(min=1, max=40))
    colour = fields.String(validate=validate.OneOf(("red", "green", "blue")))
    in_stock = fields.Boolean(load_default=False)
    tags = fields.List(fields.String(), load_default=list)
    size = fields.Nested(DimensionsSchema)
    extras = fields.Dict(keys=fields.String(), values=fields.Integer())
    made_on = fields.Date(allow_none=True)
    serial = fields.String(dump_only=True)

    @validates_schema
    def not_reserved(self, data: dict, **_: object) -> None:
        if data.get("label") == "reserved":
            raise ValidationError("this label is taken by the system")


class Gadgets:
    """A resource the admin has never heard of, declared by this test only."""

    @hookimpl
    def register_resources(self) -> list[Resource]:
        return [
            Resource(
                "gadgets",
                GadgetSchema,
                filters={"label": (), "colour": ("in",)},
                sorts=("label",),
                requirements={
                    "create": Scope("backend/create"),
                    "update": Scope("backend/update"),
                    "delete": Scope("backend/delete"),
                },
            )
        ]


@pytest.fixture
async def client(restplug_client):
    client = await restplug_client(env={"RESTPLUG_AUTH_JWT_SECRET": SECRET}, plugins=[Gadgets()])
    created = await client.post("/api/v1/apps", json=APP, headers=bearer(WRITER))
    assert created.status == 201, await created.text()
    return client


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name} in the page"
    return unescape(found.group(1))


async def sprocket_form(client) -> dict[str, str]:
    """The edit form's hidden fields for a gadget stored through the API."""
    await client.post(
        "/api/v1/gadgets",
        json={"id": 1, "label": "Sprocket", "size": {"width": 2, "height": 3}},
        headers=bearer(WRITER),
    )
    html = await page(client, "/admin/gadgets/1/edit")
    return {"csrf": hidden(html, "csrf"), "etag": hidden(html, "etag")}


async def page(client, path: str, credential: str = WRITER, status: int = 200) -> str:
    response = await client.get(path, headers=bearer(credential) if credential else {})
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "text/html"
    return text


async def test_a_name_holding_a_script_is_shown_as_text_on_every_page(client):
    for path in ("/admin/apps", "/admin/apps/10", "/admin/apps/10/edit"):
        html = await page(client, path)
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html, path
        assert "<b>Bold</b>" not in html


async def test_the_pages_forbid_inline_scripts_and_framing(client):
    response = await client.get("/admin/apps/10")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Cache-Control"] == "no-store"


async def test_an_edit_form_is_built_from_a_schema_the_admin_does_not_know(client):
    created = await client.post(
        "/api/v1/gadgets",
        json={"id": 1, "label": "Sprocket", "colour": "red", "size": {"width": 2, "height": 3}},
        headers=bearer(WRITER),
    )
    assert created.status == 201, await created.text()
    html = await page(client, "/admin/gadgets/1/edit")
    assert re.search(r'<input id="in-label" name="label" value="Sprocket">', html)
    colour = re.search(r'<select id="in-colour" name="colour">(.*?)</select>', html, re.S)
    assert colour and re.findall(r'value="(\w*)"', colour.group(1)) == ["", "red", "green", "blue"]
    assert '<option value="red" selected>' in colour.group(1)
    assert 'type="checkbox" id="in-in_stock" name="in_stock"' in html
    assert '<textarea id="in-tags" name="tags"' in html  # one per line
    assert re.search(r'<details class="group"[^>]*>\s*<summary>size</summary>', html)
    assert 'name="size.width" value="2.0"' in html
    assert '<textarea id="in-extras" name="extras"' in html  # a map: JSON
    assert 'name="made_on"' in html
    assert 'name="serial"' not in html and 'name="id"' not in html


async def test_saving_the_form_changes_what_the_api_serves(client):
    form = await sprocket_form(client)
    form.update(
        {
            "label": "Cog",
            "colour": "blue",
            "in_stock": "true",
            "tags": "small\n\nmetal\n",
            "size.width": "2.5",
            "size.height": "3",
            "extras": '{"teeth": 12}',
            "made_on": "",
        }
    )
    response = await client.post(
        "/admin/gadgets/1/edit", data=form, headers=bearer(WRITER), allow_redirects=False
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/admin/gadgets/1?done=saved"
    served = await (await client.get("/api/v1/gadgets/1")).json()
    assert served == {
        "id": 1,
        "label": "Cog",
        "colour": "blue",
        "in_stock": True,
        "tags": ["small", "metal"],
        "size": {"width": 2.5, "height": 3.0},
        "extras": {"teeth": 12},
    }


async def test_a_field_the_form_does_not_send_is_left_as_it_is(client):
    html = await page(client, "/admin/apps/10/edit")
    # What a browser sends for an unticked box: only the hidden "false" before it.
    assert re.search(
        r'<input type="hidden" name="is_free" value="false">\s*<input type="checkbox"', html
    )
    response = await client.post(
        "/admin/apps/10/edit",
        data=[
            ("csrf", hidden(html, "csrf")),
            ("etag", hidden(html, "etag")),
            ("is_free", "false"),
            ("is_free", "true"),
        ],
        headers=bearer(WRITER),
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    served = await (await client.get("/api/v1/apps/10")).json()
    assert served["is_free"] is True
    assert served["name"] == APP["name"] and served["developers"] == APP["developers"]


async def test_an_empty_choice_removes_an_optional_value(client):
    await client.post(
        "/api/v1/gadgets", json={"id": 2, "label": "Nut", "colour": "red"}, headers=bearer(WRITER)
    )
    html = await page(client, "/admin/gadgets/2/edit")
    response = await client.post(
        "/admin/gadgets/2/edit",
        data={"csrf": hidden(html, "csrf"), "etag": hidden(html, "etag"), "colour": ""},
        headers=bearer(WRITER),
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    served = await (await client.get("/api/v1/gadgets/2")).json()
    assert "colour" not in served and served["label"] == "Nut"


async def test_the_apis_field_messages_are_shown_next_to_their_fields(client):
    form = await sprocket_form(client)
    form.update(
        {
            "label": "",
            "size.width": "wide",
            "size.height": "3",
            "extras": "{not json",
        }
    )
    # JSON that does not parse is refused before the API is asked.
    refused = await client.post("/admin/gadgets/1/edit", data=form, headers=bearer(WRITER))
    text = await refused.text()
    assert refused.status == 422
    assert re.search(r'data-field="extras">.*?not valid JSON', text, re.S)
    form["extras"] = "{}"
    refused = await client.post("/admin/gadgets/1/edit", data=form, headers=bearer(WRITER))
    text = await refused.text()
    assert refused.status == 422
    label = re.search(r'data-field="label">(.*?)</div>', text, re.S)
    assert label and "Length must be between 1 and 40." in label.group(1)
    width = re.search(r'data-field="size.width">(.*?)</div>', text, re.S)
    assert width and "Not a valid number." in width.group(1)
    assert 'value="wide"' in width.group(1)  # what was typed stays
    assert (await (await client.get("/api/v1/gadgets/1")).json())["label"] == "Sprocket"


async def test_a_message_about_no_field_of_the_form_is_shown_above_it(client):
    await client.post("/api/v1/gadgets", json={"id": 3, "label": "Bolt"}, headers=bearer(WRITER))
    html = await page(client, "/admin/gadgets/3/edit")
    response = await client.post(
        "/admin/gadgets/3/edit",
        data={"csrf": hidden(html, "csrf"), "etag": hidden(html, "etag"), "label": "reserved"},
        headers=bearer(WRITER),
    )
    text = await response.text()
    assert response.status == 422
    others = re.search(r'<ul class="error" id="other-errors">(.*?)</ul>', text, re.S)
    assert others and "_schema: this label is taken by the system" in others.group(1)


async def test_a_form_without_its_csrf_token_is_refused(client):
    html = await page(client, "/admin/apps/10/edit")
    etag = hidden(html, "etag")
    for csrf in ("", "0" * 64, hidden(await page(client, "/admin/apps/10", READER), "csrf")):
        response = await client.post(
            "/admin/apps/10/edit",
            data={"csrf": csrf, "etag": etag, "name": "Changed", "type": "game"},
            headers=bearer(WRITER),
        )
        assert response.status == 403
        assert response.content_type == "application/problem+json"
        assert "CSRF" in (await response.json())["detail"]
    served = await (await client.get("/api/v1/apps/10")).json()
    assert served["name"] == APP["name"]


async def test_a_form_sent_from_another_site_is_refused(client):
    html = await page(client, "/admin/apps/10/edit")
    response = await client.post(
        "/admin/apps/10/edit",
        data={"csrf": hidden(html, "csrf"), "etag": hidden(html, "etag"), "name": "x"},
        headers={**bearer(WRITER), "Origin": "https://evil.example"},
    )
    assert response.status == 403
    assert "another site" in (await response.json())["detail"]


async def test_signing_in_sets_a_strict_http_only_cookie_that_stands_for_the_token(client):
    response = await client.post("/admin/sign-in", data={"token": WRITER}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].startswith("/admin/")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"restplug_admin={WRITER};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    # The test client talks to 127.0.0.1 over plain HTTP: loopback, so not Secure.
    assert "Secure" not in cookie
    assert WRITER not in response.headers["Location"]
    html = await page(client, "/admin/apps/10", credential="")
    assert 'id="edit"' in html and 'id="sign-out"' in html


async def test_the_cookie_is_secure_when_the_browser_is_not_on_this_machine(client):
    response = await client.post(
        "/admin/sign-in",
        data={"token": WRITER},
        headers={"Host": "admin.example.com"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert "Secure" in response.headers["Set-Cookie"]


async def test_a_token_the_api_refuses_does_not_sign_in(client):
    response = await client.post("/admin/sign-in", data={"token": "not-a-token"})
    assert response.status == 401
    assert "Set-Cookie" not in response.headers
    assert "the API refused this token: the token is malformed" in await response.text()


async def test_a_cookie_holding_a_bad_token_leads_back_to_the_sign_in_form(client):
    client.session.cookie_jar.update_cookies({"restplug_admin": "expired-or-forged"})
    response = await client.get("/admin/apps")
    text = await response.text()
    assert response.status == 401 and 'action="/admin/sign-in"' in text
    assert "restplug_admin=" in response.headers["Set-Cookie"]  # removed


async def test_signing_out_removes_the_cookie(client):
    await client.post("/admin/sign-in", data={"token": WRITER})
    html = await page(client, "/admin/", credential="")
    response = await client.post(
        "/admin/sign-out", data={"csrf": hidden(html, "csrf")}, allow_redirects=False
    )
    assert response.status == 303
    assert 'restplug_admin=""' in response.headers["Set-Cookie"]
    assert 'id="sign-in"' in await page(client, "/admin/", credential="")


async def test_a_read_only_token_sees_no_edit_button_and_gets_the_apis_403(client):
    html = await page(client, "/admin/apps/10", READER)
    assert 'id="edit"' not in html and 'id="delete"' not in html
    assert 'class="price-form"' not in html
    assert 'id="create"' not in await page(client, "/admin/apps", READER)
    writer_html = await page(client, "/admin/apps/10/edit")
    response = await client.post(
        "/admin/apps/10/edit",
        data={
            "csrf": hidden(html, "csrf"),
            "etag": hidden(writer_html, "etag"),
            "name": "Taken over",
            "type": "game",
        },
        headers=bearer(READER),
    )
    text = await response.text()
    assert response.status == 403
    assert "scope backend/update is required" in text
    served = await (await client.get("/api/v1/apps/10")).json()
    assert served["name"] == APP["name"]


async def test_without_a_token_changes_are_refused_before_the_api_is_asked(client):
    response = await client.post("/admin/apps/10/delete", data={"csrf": "x"})
    assert response.status == 401
    assert (await client.get("/api/v1/apps/10")).status == 200


async def test_a_price_keeps_its_history_and_a_bad_one_is_named(client):
    html = await page(client, "/admin/apps/10")
    assert re.search(r'<svg class="chart"[^>]*>.*?<polyline points="[\d., ]+"', html, re.S)
    assert re.search(r'<td class="price">9.99</td>', html)
    form = {
        "csrf": hidden(html, "csrf"),
        "etag": hidden(html, "etag"),
        "country": "US",
        "currency": "USD",
        "is_available": "true",
        "initial_price": "19.99",
    }
    bad = await client.post(
        "/admin/apps/10/prices",
        data={**form, "price": "-1", "discount": "0"},
        headers=bearer(WRITER),
    )
    text = await bad.text()
    assert bad.status == 422
    price = re.search(r'id="price-form-US".*?data-field="price">(.*?)</div>', text, re.S)
    assert price and "Must be greater than or equal to 0." in price.group(1)
    assert 'value="-1"' in price.group(1)
    good = await client.post(
        "/admin/apps/10/prices",
        data={**form, "price": "4.99", "discount": "75"},
        headers=bearer(WRITER),
        allow_redirects=False,
    )
    assert good.status == 303, await good.text()
    history = await (await client.get("/api/v1/apps/10/prices/US")).json()
    assert [entry["price"] for entry in history["items"]] == [4.99, 9.99, 19.99]
    assert history["items"][0]["discount"] == 75


async def test_prices_in_a_new_country_start_its_history(client):
    html = await page(client, "/admin/apps/10")
    form = {
        "csrf": hidden(html, "csrf"),
        "etag": hidden(html, "etag"),
        "new": "1",
        "currency": "EUR",
        "price": "8.99",
        "initial_price": "8.99",
        "discount": "0",
    }
    bad = await client.post(
        "/admin/apps/10/prices", data={**form, "country": "Germany"}, headers=bearer(WRITER)
    )
    text = await bad.text()
    assert bad.status == 422
    country = re.search(r'id="price-form-new".*?data-field="country">(.*?)</div>', text, re.S)
    assert country and "must be an ISO 3166 alpha-2 code such as US" in country.group(1)
    good = await client.post(
        "/admin/apps/10/prices",
        data={**form, "country": "DE"},
        headers=bearer(WRITER),
        allow_redirects=False,
    )
    assert good.status == 303, await good.text()
    app = await (await client.get("/api/v1/apps/10")).json()
    assert app["prices"]["DE"]["currency"] == "EUR" and not app["prices"]["DE"]["is_available"]
    assert app["prices"]["DE"]["price_story"][0]["price"] == 8.99
    assert [e["price"] for e in app["prices"]["US"]["price_story"]] == [9.99]


async def test_a_change_made_since_the_form_was_opened_is_not_overwritten(client):
    html = await page(client, "/admin/apps/10/edit")
    changed = await client.patch(
        "/api/v1/apps/10", json={"name": "Changed elsewhere"}, headers=bearer(WRITER)
    )
    assert changed.status == 200
    response = await client.post(
        "/admin/apps/10/edit",
        data={
            "csrf": hidden(html, "csrf"),
            "etag": hidden(html, "etag"),
            "name": "Mine",
            "type": "game",
        },
        headers=bearer(WRITER),
    )
    text = await response.text()
    assert response.status == 412
    assert "changed since you opened it" in text and 'value="Mine"' in text
    served = await (await client.get("/api/v1/apps/10")).json()
    assert served["name"] == "Changed elsewhere"


async def test_delete_asks_first_then_deletes(client):
    html = await page(client, "/admin/apps/10/delete")
    assert "This cannot be undone" in html
    assert (await client.get("/api/v1/apps/10")).status == 200
    response = await client.post(
        "/admin/apps/10/delete",
        data={"csrf": hidden(html, "csrf"), "etag": hidden(html, "etag")},
        headers=bearer(WRITER),
        allow_redirects=False,
    )
    assert response.status == 303
    assert (await client.get("/api/v1/apps/10")).status == 404


async def test_the_list_forwards_filters_and_sorts_and_names_a_bad_one(client):
    for id, name in ((11, "Alpha"), (12, "Beta")):
        await client.post(
            "/api/v1/apps", json={"id": id, "name": name, "type": "dlc"}, headers=bearer(WRITER)
        )
    html = await page(client, "/admin/apps?type=dlc&order_by=-name&fields=name")
    ids = re.findall(r'<td><a href="/admin/apps/(\d+)">', html)
    assert ids == ["12", "11"]
    assert '<p class="total" id="total">2 found' in html
    # Method filters come from the OpenAPI document, as any plugin's would.
    assert 'name="is_available_in_countries"' in html and 'name="search"' in html
    # So do sort methods, in the order choice.
    assert '<option value="-discount">-discount</option>' in html
    assert '<option value="-name" selected>-name</option>' in html
    bad = await client.get("/admin/apps?total_recommendations__gte=many")
    assert bad.status == 400
    assert "total_recommendations__gte" in await bad.text()


async def test_tasks_need_a_token_and_one_is_registered_from_a_form(client):
    anonymous = await client.get("/admin/tasks")
    assert anonymous.status == 401 and "Sign in" in await anonymous.text()
    html = await page(client, "/admin/tasks/-/new")
    assert 'name="type"' in html and 'name="payload"' in html and 'name="status"' not in html
    response = await client.post(
        "/admin/tasks/-/new",
        data={"csrf": hidden(html, "csrf"), "type": "scrape_prices", "payload": '{"app_id": 10}'},
        headers=bearer(WRITER),
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    listed = await page(client, "/admin/tasks")
    assert "scrape_prices" in listed and "pending" in listed


async def test_the_status_page_shows_plugins_and_readiness(client):
    html = await page(client, "/admin/status", credential="")
    assert re.search(r"<td>admin</td><td>restplug-admin</td>", html)
    assert re.search(r'<td>store</td><td class="ok">ok</td>', html)


async def test_the_admin_is_not_part_of_the_api_document(client):
    document = await (await client.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/admin")]


async def test_assets_are_served_from_the_package(client):
    css = await client.get("/admin/static/admin.css")
    assert css.status == 200 and css.content_type == "text/css"
    assert (await client.get("/admin/static/..%2Fpages.py")).status == 404
    assert (await client.get("/admin/static/nothing.js")).status == 404


async def test_a_deployer_turns_the_admin_off_by_disabling_the_plugin(restplug_client):
    client = await restplug_client(env={"RESTPLUG_DISABLE_PLUGINS": "admin"})
    assert (await client.get("/admin/")).status == 404
    assert (await client.get("/admin/apps")).status == 404
    assert (await client.get("/api/v1/apps")).status == 200
