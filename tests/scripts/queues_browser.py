"""The staff page's Queues tab in headless Chromium (Playwright driving the system's
chromium): sign in as a supervisor, open Queues, see the agents, pause one with its button
and unpause it again; a screenshot is kept. With PATH_TEXT: only check that the first
waiting caller shows the menus it came through (PATH_TEXT, e.g. "main › support"), with
on_call also that AGENT's card shows its caller's, and keep a screenshot.

Usage: queues_browser.py BASE_URL USER PASSWORD AGENT SCREENSHOT_PATH [PATH_TEXT [on_call]]
Exits non-zero with a message when a step fails.
"""
import sys
from playwright.sync_api import sync_playwright, expect

base, user, password, agent, shot = sys.argv[1:6]
path_text = sys.argv[6] if len(sys.argv) > 6 else None
on_call = len(sys.argv) > 7 and sys.argv[7] == "on_call"
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone screen
    page.goto(base + "/staff")
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.click("button[data-view=queues]")
    if path_text:
        path = page.locator(".card.queue li .path").first
        expect(path).to_have_text(path_text, timeout=10_000)
        if on_call:
            card = page.locator(f".card.agent[data-agent='{agent}']")
            expect(card.locator(".status")).to_contain_text("On a call")
            expect(card.locator(".path")).to_have_text(path_text)
        page.screenshot(path=shot, full_page=True)
        browser.close()
        print("queues tab: came through", path_text, "(and the agent's caller)" if on_call else "")
        sys.exit(0)
    card = page.locator(f".card.agent[data-agent='{agent}']")
    expect(card).to_be_visible(timeout=10_000)
    expect(card.locator(".status")).to_contain_text("Available")
    card.locator("button[data-act=pause]").click()
    expect(card.locator(".status")).to_contain_text("Paused", timeout=10_000)
    page.screenshot(path=shot, full_page=True)
    card.locator("button[data-act=unpause]").click()
    expect(card.locator(".status")).to_contain_text("Available", timeout=10_000)
    browser.close()
print("queues tab: paused and unpaused", agent)
