"""The accessibility check the browser tests run (tests/browser.py, axe-core from npm) finds what it should: a page
with an unlabelled image and an unlabelled field fails it, the same page fixed passes it."""

from __future__ import annotations

import pytest

from tests.browser import assert_accessible, launch, require_browser

BROKEN = """<!doctype html><html lang="en"><head><title>t</title></head><body><main>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><input type="text"></main></body></html>"""
FIXED = """<!doctype html><html lang="en"><head><title>t</title></head><body><main>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="A dot"><label>Name <input type="text"></label>
</main></body></html>"""


@pytest.mark.browser
def test_the_check_fails_an_unlabelled_image_and_field_and_passes_them_labelled():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()
        page.set_content(BROKEN)
        with pytest.raises(AssertionError) as failed:
            assert_accessible(page, "a broken page")
        assert "image-alt" in str(failed.value) and "label" in str(failed.value)
        page.set_content(FIXED)
        assert_accessible(page, "the same page fixed")
        browser.close()
