"""Where a table's column headers are on screen, measured in the real browser, for layout tests.

Streamlit's st.dataframe draws its grid (glide-data-grid) on a <canvas>: no header is a DOM box. Two
things the page does give:
* the grid's accessibility table (`[role=columnheader]` inside the canvas) names, in order, the columns
  the grid draws in its visible window (a column scrolled or cut away sideways still counts if a sliver
  of it is drawn);
* the pixels: glide draws a 1 px vertical line between header cells. The header strip of a screenshot
  of the canvas (its bounding box from the DOM) holds those lines, so each drawn column's left and right
  edge is known; a column whose right edge is not a line is cut by the grid's edge.
A column is visible when it is drawn whole and inside the viewport. `assert_columns_visible(page, names)`
checks the first grid that has the first name (or `grid=`): add a page's deciding columns in one line.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass

HEADER_MAX_PX = 48  # the header strip to look at (Streamlit's header row is ~35 px)


@dataclass(frozen=True)
class Header:
    name: str
    left: float  # page x of its left edge
    right: float  # page x of its right edge
    top: float
    bottom: float
    whole: bool  # its right edge is drawn (not cut by the grid's edge)


def grid_headers(page, grid, row_markers: bool = False) -> list[Header]:
    """Every header drawn in `grid` (an stDataFrame locator), left to right, with its page box.
    `row_markers`: the grid has a row-selection column (st.dataframe with on_select)."""
    from PIL import Image

    grid.locator("[role=columnheader]").first.wait_for(state="attached")  # drawn (not a rerun's empty copy)
    grid.scroll_into_view_if_needed()
    page.mouse.move(1, 1)  # no hover: the grid's toolbar shows over its top right while the mouse is on it
    page.wait_for_timeout(300)  # the canvas repaints after a scroll
    canvas = grid.locator("canvas").first
    canvas.wait_for(state="visible")
    box = canvas.bounding_box()
    assert box, "the grid has no canvas"
    names = [t.strip() for t in grid.locator("[role=columnheader]").all_text_contents()]
    # how far the grid is scrolled sideways, and how far it can still scroll right (0: its last column ends
    # at its right edge)
    scrolled, beyond = page.evaluate("g => { const s = g.querySelector('.dvn-scroller'); return s ? "
                                     "[s.scrollLeft, s.scrollWidth - s.clientWidth - s.scrollLeft] : [0, 0]; }",
                                     grid.element_handle())
    png = page.screenshot(clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": HEADER_MAX_PX})
    image = Image.open(io.BytesIO(png)).convert("RGB")
    width, height = image.size
    pixels = image.load()
    background = Counter(pixels[x, 4] for x in range(width)).most_common(1)[0][0]
    # the header's bottom line: the first full-width row that is not the header's background
    # (the right half: a frozen column's shadow shades the left after a sideways scroll)
    bottom = next((y for y in range(10, height) if len({pixels[x, y] for x in range(width // 2, width, 7)}) == 1
                   and pixels[width - 2, y] != background), height)
    rows = range(bottom // 3, bottom - 2)  # the lower part of the header: clear of anything drawn over its top
    lines = [x for x in range(width) if pixels[x, rows[0]] != background
             and len({pixels[x, y] for y in rows}) == 1]
    edges = [0, *lines, width]
    cells = [(a, b, b in lines or (beyond <= 1 and b == width)) for a, b in zip(edges, edges[1:]) if b - a > 3]
    if row_markers:  # the row-selection column (checkboxes) comes first and has no header name
        cells = cells[1:]
    if scrolled > 0 and cells:  # scrolled sideways: the first column is cut on its left (as far as is known)
        cells[0] = (cells[0][0], cells[0][1], False)
    # the accessibility table may name a column or two past the grid's edge (drawn ahead of a scroll)
    assert len(names) >= len(cells), (f"{len(cells)} header cells drawn at {edges} for the headers {names} "
                                      f"(scrolled {scrolled}, {beyond} px more to the right)")
    return [Header(name, box["x"] + a, box["x"] + b, box["y"], box["y"] + bottom, whole)
            for name, (a, b, whole) in zip(names, cells)]


def find_grid(page, first_name: str):
    """The first stDataFrame on the page that draws a header `first_name` (a locator: it finds the grid
    again after Streamlit reruns the page)."""
    grid = page.locator("[data-testid='stDataFrame']").filter(
        has=page.locator(f"[role=columnheader]:text-is({first_name!r})")).first
    grid.wait_for(state="attached")
    return grid


def visible_columns(page, grid, row_markers: bool = False) -> list[str]:
    """The columns of `grid` drawn whole inside the viewport, left to right."""
    view = page.viewport_size
    return [h.name for h in grid_headers(page, grid, row_markers)
            if h.whole and h.left >= 0 and h.right <= view["width"] and h.top >= 0 and h.bottom <= view["height"]]


def assert_columns_visible(page, names: list[str], grid=None, row_markers: bool = False) -> list[str]:
    """Each of `names` is a header drawn whole inside the viewport (no sideways scroll needed); returns
    every visible column of that grid. `row_markers`: the grid has a row-selection column."""
    grid = grid if grid is not None else find_grid(page, names[0])
    shown = visible_columns(page, grid, row_markers)
    missing = [n for n in names if n not in shown]
    assert not missing, f"{missing} not visible at {page.viewport_size}: {grid_headers(page, grid, row_markers)}"
    return shown


def grid_rows(grid) -> list[list[str]]:
    """The text of the rows the grid draws (its accessibility table), cells in column order."""
    return [[c.strip() for c in row.locator("[role=gridcell]").all_text_contents()]
            for row in grid.locator("tbody [role=row]").all()]
