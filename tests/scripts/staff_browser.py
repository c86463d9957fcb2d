"""The staff page in headless Chromium (Playwright driving the system's chromium):
sign in, play a message, resolve it with a note; a screenshot is kept.

Usage: staff_browser.py BASE_URL USER PASSWORD SCREENSHOT_PATH
Exits non-zero with a message when a step fails.
"""
import sys
from playwright.sync_api import sync_playwright, expect

base, user, password, shot = sys.argv[1:5]
with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
    )
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone screen
    page.goto(base + "/staff")
    # A wrong password is refused, then the right one signs in.
    page.fill("#user", user)
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    expect(page.get_by_role("alert")).to_contain_text("Wrong user or password")
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    card = page.locator(".card").first
    expect(card).to_be_visible(timeout=10_000)
    expect(card.locator(".number a")).to_have_attribute("href", "tel:+33612345678")
    # Play the message: the browser fetches it (with Range requests) and time advances.
    page.evaluate("document.querySelector('.card audio').play()")
    page.wait_for_function(
        # A function, not a string: the page's CSP forbids eval.
        "() => document.querySelector('.card audio').currentTime > 0.5", timeout=10_000
    )
    duration = page.evaluate("document.querySelector('.card audio').duration")
    if not 2.5 < duration < 3.5:
        sys.exit(f"the message lasts {duration} s in the browser, expected about 3 s")
    page.evaluate("document.querySelector('.card audio').pause()")
    page.screenshot(path=shot, full_page=True)
    # Resolve it with a note: it leaves the "New" list.
    card.locator("input").fill("Called back, appointment booked")
    card.locator("button[data-status=resolved]").click()
    expect(page.locator(".card")).to_have_count(0, timeout=10_000)
    page.click("button[data-view=all]")
    expect(page.locator(".card .status").first).to_contain_text("Resolved")
    # Its history shows who did what, with the note.
    page.locator(".card details.history summary").first.click()
    history = page.locator(".card details.history li")
    expect(history.last).to_contain_text("Called back, appointment booked")
    expect(history.first).to_contain_text("caller: created")
    page.screenshot(path=shot.replace(".png", "-history.png"), full_page=True)
    browser.close()
print("staff page: signed in, played 3 s, resolved")
