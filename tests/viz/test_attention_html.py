"""The HTML head view: self-contained, and in a real browser it draws exactly the given weights."""

from __future__ import annotations

import re

import numpy as np
import pytest
from viz_browser import choose, drawn_matrix
from viz_synthetic import pair_tokens, random_attention

from bertkit.errors import BertkitError
from bertkit.viz import attention_html, head_view_html


def test_page_is_self_contained():
    tokens, type_ids = pair_tokens(3, 2)
    page = head_view_html(tokens, random_attention(2, 2, len(tokens)), type_ids=type_ids)
    assert "<script src" not in page and "<link" not in page
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)  # nothing to fetch
    assert page.count("<script") == 2  # the data blob and the inline script


def test_tokens_cannot_break_out_of_the_page(browser, tmp_path):
    tokens = ["[CLS]", "</script><b>x</b>", "a&b", "[SEP]"]
    path = attention_html(tokens, random_attention(1, 1, 4), tmp_path / "odd.html", title="<i>t</i>")
    browser.get(path.resolve().as_uri())
    assert browser.execute_script("return window.bertkitHeadView.tokens") == tokens
    assert browser.execute_script("return document.querySelectorAll('b, i').length") == 0


def test_switching_layer_and_head_draws_the_model_weights(browser, tmp_path):
    tokens, type_ids = pair_tokens(9, 6)
    n = len(tokens)
    att = random_attention(3, 4, n, seed=5)
    path = attention_html(tokens, att, tmp_path / "view.html", type_ids=type_ids)
    browser.get(path.resolve().as_uri())
    shown, _ = drawn_matrix(browser, n)
    np.testing.assert_array_equal(shown, att[0, 0])  # opens on layer 0, head 0
    for layer, head in [(2, 3), (1, 0), (0, 2)]:
        choose(browser, layer, head)
        assert browser.execute_script("return window.bertkitHeadView.state()") == {"layer": layer, "head": head}
        shown, _ = drawn_matrix(browser, n)
        # float32 in, float32 drawn: exactly the same numbers, not approximately
        np.testing.assert_array_equal(shown, att[layer, head].astype(np.float64))
        js = np.array(browser.execute_script("return window.bertkitHeadView.weights()"))
        np.testing.assert_array_equal(js, shown)


def test_hover_focuses_one_token_and_segments_are_coloured(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    tokens, type_ids = pair_tokens(4, 3)
    n = len(tokens)
    att = random_attention(2, 2, n, seed=6)
    path = attention_html(tokens, att, tmp_path / "hover.html", type_ids=type_ids)
    browser.get(path.resolve().as_uri())
    values = "return Array.from(document.querySelectorAll('text.value')).map(v => v.textContent)"
    assert set(browser.execute_script(values)) == {""}  # no numbers until a token is focused
    left = browser.find_element(By.CSS_SELECTOR, "text[data-side='left'][data-index='3']")
    ActionChains(browser).move_to_element(left).perform()
    _, rows = drawn_matrix(browser, n)
    assert {(i, j) for i, j, _, _, visible in rows if visible} == {(3, j) for j in range(n)}
    shown = browser.execute_script(values)  # left column's values first, then the right column's
    assert shown[:n] == [""] * n
    assert np.abs(np.array([float(v) for v in shown[n:]]) - att[0, 0, 3]).max() <= 0.005 + 1e-7
    right = browser.find_element(By.CSS_SELECTOR, "text[data-side='right'][data-index='5']")
    ActionChains(browser).move_to_element(right).perform()
    _, rows = drawn_matrix(browser, n)
    assert {(i, j) for i, j, _, _, visible in rows if visible} == {(i, 5) for i in range(n)}
    ActionChains(browser).move_by_offset(0, 400).perform()  # away from every token
    _, rows = drawn_matrix(browser, n)
    assert all(visible for *_, visible in rows)

    colour = "return getComputedStyle(document.querySelector(\"text[data-side='left'][data-index='%d']\")).fill"
    first_a, first_b = 1, type_ids.index(1)
    assert browser.execute_script(colour % first_a) != browser.execute_script(colour % first_b)


def test_bad_input_is_a_clear_error(tmp_path):
    tokens, type_ids = pair_tokens(2, 2)
    att = random_attention(2, 3, len(tokens))
    with pytest.raises(BertkitError, match="head 3 is out of range"):
        attention_html(tokens, att, tmp_path / "x.html", head=3)
    with pytest.raises(BertkitError, match="type ids"):
        attention_html(tokens, att, tmp_path / "x.html", type_ids=type_ids[:-1])
    assert not (tmp_path / "x.html").exists()
