"""The staff page's survey comments in headless Chromium (Playwright driving the system's
chromium): sign in, open Reports, find the comment KEY in the Survey comments card, load
its audio through the page (within the page's Content-Security-Policy) and keep a
screenshot.

Usage: comments_browser.py BASE_URL USER PASSWORD KEY SCREENSHOT_PATH
Exits non-zero with a message when a step fails.
"""
import sys
from playwright.sync_api import sync_playwright, expect

base, user, password, key, shot = sys.argv[1:6]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 800, "height": 900})
    errors = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Console errors: a CSP refusal shows only here (failed loads are seen as responses,
    # the browser's own favicon.ico request among them).
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.goto(base + "/staff")
    page.fill("#user", user)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.click("button[data-view=reports]")
    card = page.locator(".card.report.comments")
    audio = card.locator(f"audio[src='/api/comments/{key}']")
    expect(audio).to_have_count(1, timeout=10_000)
    expect(card.locator(".status")).to_have_text("1")
    # The player loads the WAV (media-src 'self'): its length is known once loaded.
    duration = page.evaluate(
        """(key) => new Promise((ok, fail) => {
            const a = document.querySelector(`.comments audio[src='/api/comments/${key}']`);
            a.addEventListener("loadedmetadata", () => ok(a.duration));
            a.addEventListener("error", () => fail("the audio did not load"));
            a.preload = "metadata"; a.load();
        })""",
        key,
    )
    page.screenshot(path=shot, full_page=True)
    browser.close()
if errors:
    sys.exit("errors: " + "; ".join(errors))
print(f"comment {key} in the Reports tab, {duration:.2f} s of audio loaded by the page")
