"""The staff page's Reports tab in headless Chromium (Playwright driving the system's
chromium): sign in, open Reports, check the figures drawn (CALLS calls; FIRST_MENU the menu
callers give up in most), switch to today (calls per hour), and keep a screenshot.

Usage: reports_browser.py BASE_URL USER PASSWORD CALLS FIRST_MENU SCREENSHOT_PATH
Exits non-zero with a message when a step fails.
"""
import sys
from playwright.sync_api import sync_playwright, expect

base, user, password, calls, first_menu, shot = sys.argv[1:7]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 800, "height": 900})
    errors = []
    # Failed API calls (a browser's own favicon.ico request aside) and script errors.
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/staff")
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.click("button[data-view=reports]")
    calls_card = page.locator(".card.report").first
    expect(calls_card.locator(".status")).to_have_text(calls, timeout=10_000)
    expect(calls_card.locator("svg[aria-label='Calls per day'] rect.bar")).to_have_count(1)
    menus = page.locator(".card.report").nth(2)
    expect(menus.locator(".meta b").first).to_have_text(first_menu)
    expect(page.locator("svg[aria-label=Outcomes] text").first).to_have_text("Self-served in the menus")
    # The greeting's hang-up left no request: its own outcome, counted.
    expect(page.locator("svg[aria-label=Outcomes] text", has_text="To voicemail, left nothing")).to_have_count(1)
    expect(page.locator("svg[aria-label=Outcomes] text", has_text="9 (18.0%)")).to_have_count(2)
    expect(page.locator(".card.surveys h2")).to_have_text("Survey scores")
    page.select_option("select.range", "1")
    expect(calls_card.locator("svg[aria-label='Calls per hour']")).to_be_visible(timeout=10_000)
    page.screenshot(path=shot, full_page=True)
    browser.close()
if errors:
    sys.exit("errors: " + "; ".join(errors))
print("reports tab:", calls, "calls, gave up first in", first_menu)
