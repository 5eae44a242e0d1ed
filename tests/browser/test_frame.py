"""The frame every page shares, in a real browser: the phone menu, no sideways scrolling on the
console's own pages at three widths in light and dark, the error pages, the keyboard shortcuts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

WIDTHS = (1400, 1280, 390)
SCHEMES = ("light", "dark")
# The pages of the frame's owner: the security app's and the error pages.
PAGES = (
    "/security/",
    "/audit/",
    "/users/",
    "/account/tokens/",
    "/account/password/",
    "/no-such-page/",
    "/logout/",  # GET: the 405 page
)

# What would scroll sideways: the document, or a visible box whose content spills out of it
# without being a scroll container of its own (those show their own scrollbar inside the card).
OVERFLOW = """() => {
  const spills = [];
  for (const element of document.body.querySelectorAll('*')) {
    if (['INPUT', 'SELECT', 'TEXTAREA', 'SVG'].includes(element.tagName)) continue;
    if (element.scrollWidth <= element.clientWidth + 1) continue;
    const box = element.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;  // a visually hidden heading row
    const style = getComputedStyle(element);
    if (style.display === 'none' || style.visibility === 'hidden') continue;
    if (['auto', 'scroll', 'hidden', 'clip'].includes(style.overflowX)) continue;
    spills.push(`${element.tagName.toLowerCase()}.${[...element.classList].join('.')} `
      + `${element.scrollWidth}>${element.clientWidth}`);
  }
  return {document: document.documentElement.scrollWidth, window: innerWidth, spills};
}"""


@pytest.fixture
def sized(browser, signed_in_state):
    """sized(width, scheme) -> a signed-in page of that width and colour scheme."""
    contexts = []

    def open_page(width: int, scheme: str = "light", signed_in: bool = True):
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme=scheme,
            storage_state=signed_in_state if signed_in else None,
        )
        contexts.append(context)
        return context.new_page()

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", WIDTHS)
def test_it_never_scrolls_sideways_on_the_consoles_own_pages(live_console, sized, width, scheme):
    page = sized(width, scheme)
    for path in PAGES:
        page.goto(f"{live_console.url}{path}")
        expect(page.locator("footer.footer")).to_be_visible()
        measured = page.evaluate(OVERFLOW)
        assert measured["document"] <= measured["window"], (path, measured)
        assert measured["spills"] == [], (path, measured)
        name = path.strip("/").replace("/", "-")
        screenshot(page, f"frame-{name}-{width}-{scheme}")
    anonymous = sized(width, scheme, signed_in=False)
    anonymous.goto(f"{live_console.url}/login/")
    measured = anonymous.evaluate(OVERFLOW)
    assert measured["document"] <= measured["window"], ("/login/", measured)
    assert measured["spills"] == [], ("/login/", measured)


def test_it_folds_the_top_bar_into_a_menu_on_a_phone(live_console, sized):
    page = sized(390)
    page.goto(f"{live_console.url}/security/")
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    security = page.get_by_role("link", name="Security", exact=True)
    expect(security).to_be_hidden()
    menu.click()
    expect(security).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator(".user-menu summary")).to_have_text("admin — admin (administrator)")
    screenshot(page, "frame-phone-menu-open")
    page.keyboard.press("Escape")
    expect(security).to_be_hidden()
    # The keyboard alone opens it too.
    menu.focus()
    page.keyboard.press("Enter")
    expect(security).to_be_visible()
    security.click()
    page.wait_for_url("**/security/")


def test_it_shows_the_whole_bar_on_a_wide_screen(live_console, sized):
    page = sized(1280)
    page.goto(f"{live_console.url}/security/")
    expect(page.get_by_role("button", name="Menu")).to_be_hidden()
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Ports", "Free port", "Projects", "Health", "API", "Security", "Audit"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Security", exact=True)).to_have_attribute(
        "aria-current", "page"
    )
    summary = page.locator(".user-menu summary")
    expect(summary).to_have_text("admin — admin (administrator)")
    summary.click()
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("link", name="Users")).to_be_hidden()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_it_shows_the_404_page_in_the_frame_and_in_the_scheme(live_console, sized, scheme):
    page = sized(1280, scheme)
    response = page.goto(f"{live_console.url}/no-such-page/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    dark = background == "rgb(15, 18, 22)"
    assert dark is (scheme == "dark"), background
    page.get_by_role("link", name="Back to Ports").click()
    page.wait_for_url("**/ports/")


def test_it_serves_a_favicon(live_console, sized):
    page = sized(1280)
    response = page.goto(f"{live_console.url}/favicon.ico")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"] == "image/svg+xml"


def test_it_goes_to_the_search_with_a_slash_and_lists_shortcuts_with_a_question_mark(
    live_console, sized
):
    page = sized(1400)
    page.goto(f"{live_console.url}/audit/")
    search = page.locator("input[type=search]")
    page.locator("h1").click()  # nothing focused that takes text
    page.keyboard.press("/")
    expect(search).to_be_focused()
    expect(search).to_have_value("")  # the slash went to the shortcut, not into the box

    page.locator("h1").click()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Go to the page's search box")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    # The footer's button opens the same list.
    page.get_by_role("button", name=re.compile("Keyboard shortcuts")).click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()


def test_it_leaves_the_keys_alone_while_a_person_types(live_console, sized):
    page = sized(1400)
    page.goto(f"{live_console.url}/audit/")
    user = page.get_by_placeholder("User")
    user.click()
    page.keyboard.type("a/b?")
    expect(user).to_have_value("a/b?")
    expect(user).to_be_focused()
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()


def test_it_closes_a_confirmation_with_escape_through_its_cancel(live_console, sized):
    page = sized(1400)
    page.goto(f"{live_console.url}/account/password/")
    # A confirmation as the pages write them: [data-confirm] with a [data-cancel] inside.
    page.evaluate(
        """() => {
          const card = document.createElement('section');
          card.className = 'card';
          card.dataset.confirm = '';
          card.innerHTML = '<p>Really?</p><button type="button" data-cancel>Cancel</button>';
          card.querySelector('[data-cancel]').addEventListener('click', () => {
            card.remove();
            document.body.dataset.cancelled = 'yes';
          });
          document.querySelector('main').prepend(card);
        }"""
    )
    expect(page.locator("[data-confirm]")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("[data-confirm]")).to_have_count(0)
    expect(page.locator("body")).to_have_attribute("data-cancelled", "yes")
