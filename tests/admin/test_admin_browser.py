"""The admin panel in a real browser (headless Chromium through Selenium) against a served
application: what a person signing in and fixing the catalogue goes through."""

from __future__ import annotations

from servers import Server, call, token

WRITER = token("backend/*")
READER = token("backend/read")


def test_sign_in_with_a_pasted_token(browser):
    browser.open("/admin/")
    assert browser.find("#sign-in").text == "Sign in"
    browser.sign_in(WRITER)
    assert browser.driver.current_url.endswith("/admin/?done=signed-in")
    assert browser.find(".notice").text == "Signed in."
    assert browser.find("#sign-out").is_displayed()
    # The token is in an HttpOnly cookie, out of the page's reach, and never in a URL.
    cookie = browser.driver.get_cookie("restplug_admin")
    assert cookie["value"] == WRITER and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert browser.driver.execute_script("return document.cookie") == ""
    browser.click("#sign-out", "signed-out")
    assert browser.driver.get_cookie("restplug_admin") is None


def test_filter_and_sort_a_list(browser):
    browser.sign_in(WRITER)
    browser.open("/admin/apps")
    browser.click(".filter-box summary", "filters-open")
    browser.find("#f-type option[value=dlc]").click()
    browser.click("#apply", "filtered")
    assert browser.find("#total").text.startswith("3 found")
    assert column(browser, 2) == ["Zeta Expansion", "Mu Expansion", "Alpha Expansion"]
    browser.click("th a.sort[href*='order_by=name']", "sorted-by-name")
    assert column(browser, 2) == ["Alpha Expansion", "Mu Expansion", "Zeta Expansion"]
    browser.click("th a.sort.asc", "sorted-by-name-descending")
    assert column(browser, 2) == ["Zeta Expansion", "Mu Expansion", "Alpha Expansion"]
    assert set(column(browser, 3)) == {"dlc"}
    # The filter came from the form, not typed into a URL; the empty inputs were left out.
    assert "type=dlc" in browser.driver.current_url and "name=" not in browser.driver.current_url


def column(browser, number: int) -> list[str]:
    return [cell.text for cell in browser.finds(f"#items tbody td:nth-child({number})")]


def test_open_an_app_and_edit_its_price(browser, served: Server):
    browser.sign_in(WRITER)
    browser.open("/admin/apps?type=game&order_by=id")
    browser.click("#items a[href='/admin/apps/10']", "app-10")
    assert browser.find("h1").text == "apps 10"
    assert browser.find("#prices tr[data-country=US] td.price").text == "19.99"
    browser.click("#history-US summary", "history-open")
    assert browser.find("#history-US svg.chart polyline").get_attribute("points")
    browser.type_into("#price-form-US-price", "-3")
    browser.click("#price-form-US button", "bad-price")
    message = browser.find("#price-form-US [data-field=price] .field-error")
    assert message.text == "Must be greater than or equal to 0."
    assert browser.find("#price-form-US-price").get_attribute("value") == "-3"
    browser.type_into("#price-form-US-price", "4.99")
    browser.type_into("#price-form-US-discount", "75")
    browser.click("#price-form-US button", "good-price")
    assert browser.find(".notice").text == "The new price is recorded."
    assert browser.find("#prices tr[data-country=US] td.price").text == "4.99"
    # What the API serves to anyone, over plain HTTP.
    status, _, app = call(f"{served.url}/api/v1/apps/10")
    assert status == 200
    latest = app["prices"]["US"]["price_story"][0]
    assert (latest["price"], latest["discount"]) == (4.99, 75)
    status, _, history = call(f"{served.url}/api/v1/apps/10/prices/US")
    assert [entry["price"] for entry in history["items"]] == [4.99, 19.99]


def test_a_change_made_meanwhile_is_not_overwritten(browser, served: Server):
    browser.sign_in(WRITER)
    browser.open("/admin/apps/11")
    browser.click("#edit", "edit-form")
    status, _, _ = call(
        f"{served.url}/api/v1/apps/11", "PATCH", {"name": "Renamed elsewhere"}, WRITER
    )
    assert status == 200
    browser.type_into("#in-name", "My new name")
    browser.click("#save", "saved-too-late")
    assert "changed since you opened it" in browser.find("#error").text
    assert browser.find("#in-name").get_attribute("value") == "My new name"
    assert call(f"{served.url}/api/v1/apps/11")[2]["name"] == "Renamed elsewhere"
    browser.click("#stale a", "current-version")
    assert browser.find("dd[data-key=name]").text == "Renamed elsewhere"


def test_a_read_only_token_sees_no_edit_button(browser):
    browser.sign_in(READER)
    browser.open("/admin/apps/12")
    assert browser.find("h1").text == "apps 12"
    browser.driver.implicitly_wait(0)
    try:
        assert browser.finds("#edit") == [] and browser.finds("#delete") == []
        assert browser.finds(".price-form") == []
    finally:
        browser.driver.implicitly_wait(5)
