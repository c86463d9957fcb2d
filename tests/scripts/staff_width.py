"""The staff page stays phone-width with a very long caller ID and note (no horizontal
scrolling): sign in, open the request's history, measure, keep a screenshot.

Usage: staff_width.py BASE_URL USER PASSWORD SCREENSHOT_PATH
Prints the page's width; exits non-zero when it is wider than the phone's screen.
"""
import sys
from playwright.sync_api import sync_playwright, expect

base, user, password, shot = sys.argv[1:5]
WIDTH = 390
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": WIDTH, "height": 844})
    page.goto(base + "/staff")
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    card = page.locator(".card").first
    expect(card).to_be_visible(timeout=10_000)
    card.locator("details.history summary").click()
    expect(card.locator("details.history li").last).to_contain_text("NOTE", timeout=10_000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    page.screenshot(path=shot, full_page=True)
    browser.close()
print(f"page width {width} px")
if width > WIDTH:
    sys.exit(f"the page is {width} px wide on a {WIDTH} px screen")
