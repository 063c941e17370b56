"""Reading the HTML head view back from the browser, the way a user works it."""

from __future__ import annotations

import numpy as np

DRAWN = """return Array.from(document.querySelectorAll('#lines line')).map(l => [
  Number(l.dataset.from), Number(l.dataset.to), Number(l.dataset.weight),
  Number(l.getAttribute('stroke-opacity')), l.style.display !== 'none'])"""


def drawn_matrix(driver, n: int) -> tuple[np.ndarray, list]:
    """The matrix the page draws, read from the lines' data attributes ([n, n], float64)."""
    rows = driver.execute_script(DRAWN)
    assert len(rows) == n * n
    matrix = np.full((n, n), np.nan)
    for i, j, weight, opacity, _ in rows:
        assert opacity == weight  # a line's opacity is its attention
        matrix[i, j] = weight
    return matrix, rows


def choose(driver, layer: int, head: int) -> None:
    """Switch layer and head the way a user does, through the two <select>s."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "layer")).select_by_visible_text(str(layer))
    Select(driver.find_element(By.ID, "head")).select_by_visible_text(str(head))
