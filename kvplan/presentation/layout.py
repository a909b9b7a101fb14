"""Width policy for everything kvplan prints on stdout: a name or a number is never cut.

rich, left alone, renders at 80 columns when stdout is not a terminal and shortens table
cells with "…" when a table is wider than the console: `kvplan models | grep Qwen` would
show `Qwen/Qw…`. The rules here instead:

* Piped (stdout not a terminal) and no COLUMNS: the width is what the content needs (at
  least 80), so every table row stays one line that grep/awk can read whole.
* A terminal, or COLUMNS set (honoured, terminal or not): a table whose natural width
  exceeds the width switches to a narrow layout, one record per row: the first cell on
  its own line, then `header: value` pairs packed into lines. Nothing is abbreviated.
* Text wraps at spaces only; a word longer than the line (a path, a repo id) is printed
  whole and left to overflow, never folded or cropped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from copy import copy
from dataclasses import replace
from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.containers import Lines
from rich.measure import Measurement
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.table import Column, Table
from rich.text import Text

PIPE_MIN_WIDTH = 80  # rich's own default for a non-terminal; the floor, not a ceiling
_UNBOUNDED = 1 << 20


def natural_width(console: Console, renderable: RenderableType) -> int:
    """Columns the renderable needs with nothing wrapped (a table: every column at its
    widest cell; text: its longest line)."""
    if isinstance(renderable, Group):
        return max((natural_width(console, r) for r in renderable.renderables), default=0)
    if isinstance(renderable, Table) and renderable.width is None:
        return _measure_table(console, renderable)[0]
    options = console.options.update_width(_UNBOUNDED)
    return Measurement.get(console, options, renderable).maximum


def _measure_table(console: Console, table: Table) -> tuple[int, list[int | None]]:
    """`Measurement.get(table).maximum` at unbounded width, and each column's width
    (padding included) where it is plain text (None where rich must measure it).

    rich's Table.__rich_measure__ measures every column twice (once to lay the columns out
    at the given width, once at the sum of those widths), wrapping each cell in a Padding;
    at an unbounded width both passes give each column its widest cell, so one pass gives
    the same number. A cell that is a string or a Text is measured as rich measures it
    (`render_str`, then `Text.__rich_measure__`) plus the column's padding; a column with
    any other renderable in it goes through rich (`_measure_column`). Private rich API
    (`_measure_column`, `_extra_width`, `_get_padding_width`), the rich versions pyproject
    allows; tests/test_output_width.py compares the result with rich's own measurement."""
    options = console.options.update_width(_UNBOUNDED)
    plain = [_text_column_width(console, options, table, c) for c in table.columns]
    total = sum(
        w if w is not None else table._measure_column(console, options, c).maximum
        for w, c in zip(plain, table.columns, strict=True)
    )
    total += table._extra_width
    if table.min_width is not None:
        total = max(total, table.min_width)
    return max(total, 0), plain


def _text_column_width(
    console: Console, options: ConsoleOptions, table: Table, column: Column
) -> int | None:
    """The `maximum` of rich's `_measure_column` at unbounded width when every cell of the
    column is a string or a Text (see `_measure_table`); None otherwise."""
    if table.collapse_padding:  # rich pads such cells unevenly: let it measure them
        return None
    padding = table._get_padding_width(column._index)
    if column.width is not None:
        return column.width + padding
    cells: list[Any] = [column.header] if table.show_header else []
    cells += column._cells
    if table.show_footer:
        cells.append(column.footer)
    if not cells:
        return None
    widest = 0
    for cell in cells:
        if isinstance(cell, str):
            cell = console.render_str(cell, markup=options.markup, highlight=False)
        elif not isinstance(cell, Text):
            return None
        low, high = cell.__rich_measure__(console, options)
        widest = max(widest, low, high)
    widest += padding
    if column.min_width is not None:
        widest = max(widest, column.min_width + padding)
    if column.max_width is not None:
        widest = min(widest, column.max_width + padding)
    return widest


def _pinned(table: Table, widths: list[int | None]) -> Table:
    """A copy of `table` whose plain-text columns are fixed at their natural widths and do
    not wrap; drawn where the table fits (width >= its natural width), it prints exactly as
    `table` does: rich would give each column its widest cell and no cell would wrap.
    Spares rich measuring every cell again and word-wrapping every cell while drawing."""
    if table.expand:
        return table
    columns = []
    for width, column in zip(widths, table.columns, strict=True):
        if (
            width is None
            or column.width is not None
            or column.min_width is not None
            or column.max_width is not None
            or column.ratio is not None
        ):
            columns.append(column)
        else:
            padding = table._get_padding_width(column._index)
            columns.append(replace(column, width=width - padding, no_wrap=True))
    pinned = copy(table)
    pinned.columns = columns
    if type(table) is Table:  # a subclass keeps its own drawing
        pinned.__class__ = _PinnedTable
    return pinned


class _PinnedTable(Table):
    """A pinned copy of a plain rich Table (`_pinned`): its cells are `_TextCell`s."""

    def _get_cells(self, console: Console, column_index: int, column: Column) -> Iterable[Any]:
        for cell in super()._get_cells(console, column_index, column):
            pad = cell.renderable
            if type(pad) is Padding:
                edges = (pad.top, pad.right, pad.bottom, pad.left)
                pad = _TextCell(pad.renderable, edges, style=pad.style, expand=pad.expand)
                cell = cell._replace(renderable=pad)
            yield cell


_NEWLINE = Text("\n")
_LINE = Segment.line()


class _TextCell(Padding):
    """A table cell (rich puts each in a Padding) holding one line of text that fits its
    column: drawn with the steps rich takes for it (`Text.wrap` -> `Lines.justify`, join,
    `Text.render`, `Segment.split_and_crop_lines`, the padding either side), called
    directly instead of through rich's generic render -> render_lines -> wrap pipeline,
    which costs ~4x as much a cell (roofline draws ~190 cells). Any other cell (several
    lines, a tab, too wide, a styled padding, a nested renderable) is drawn by Padding
    itself. tests/test_output_width.py compares the segments with Padding's."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Any:
        segments = self._one_line(console, options)
        return super().__rich_console__(console, options) if segments is None else segments

    def _one_line(self, console: Console, options: ConsoleOptions) -> list[Segment] | None:
        style = console.get_style(self.style)
        width = options.max_width - self.left - self.right
        if style or self.top or self.bottom or not self.expand or width < 1:
            return None
        if options.height is not None:
            return None
        text = self.renderable
        if isinstance(text, str):
            text = console.render_str(text, highlight=options.highlight, markup=options.markup)
        elif not isinstance(text, Text):
            return None
        plain = text.plain
        if "\n" in plain or "\t" in plain or len(plain) > width or cell_len(plain) > width:
            return None  # rich would wrap, fold or crop it
        overflow = text.overflow or options.overflow or "fold"
        if overflow == "ignore" or text.end not in ("\n", ""):
            return None
        justify = text.justify or options.justify or "default"
        if text.style or text._spans:
            line = text.copy()  # what Text.wrap makes of a line that fits (no break, no crop)
            Lines([line]).justify(console, width, justify=justify, overflow=overflow)
            rendered = _NEWLINE.join([line]).render(console, end=text.end)
            lines = Segment.split_and_crop_lines(
                rendered, width, style=style, pad=True, include_new_lines=False
            )
        else:  # the same steps for unstyled text: one segment, padded to the width
            body = _justified(plain, width, justify)
            short = width - cell_len(body)
            lines = [[Segment(body), Segment(" " * short, style)] if short else [Segment(body)]]
        left = [Segment(" " * self.left, style)] if self.left else []
        right = [Segment(" " * self.right, style)] if self.right else []
        out: list[Segment] = []
        for segs in lines:
            out += left
            out += segs
            out += right
            out.append(Segment.line())
        return out


def _cell_text(console: Console, cell: Any) -> Text | None:
    if isinstance(cell, Text):
        return cell
    if isinstance(cell, str):
        return console.render_str(cell)
    return None  # a nested renderable: leave the table as it is


def narrow_table(console: Console, table: Table, width: int) -> RenderableType:
    """The table as one record per row (see the module docstring); the table itself when a
    cell is not plain text."""
    columns = table.columns
    cells = [list(col.cells) for col in columns]
    headers = [_cell_text(console, col.header) or Text(str(col.header)) for col in columns]
    parts: list[RenderableType] = []
    if table.title:
        title = _cell_text(console, table.title)
        if title is None:
            return table
        parts.append(Text.assemble(title, style="bold"))
    n_rows = len(table.rows)
    for i in range(n_rows):
        texts = [
            _cell_text(console, cells[c][i]) if i < len(cells[c]) else Text("")
            for c in range(len(columns))
        ]
        if any(t is None for t in texts):
            return table
        row_style = table.rows[i].style or ""
        first = texts[0]
        assert first is not None
        named = table.show_header and headers[0].plain
        head = Text.assemble(headers[0].plain, ": ", first) if named else first
        parts.append(Text.assemble(head, style=f"bold {row_style}"))
        line = Text("  ", no_wrap=True, overflow="ignore")
        for header, value in zip(headers[1:], texts[1:], strict=True):
            assert value is not None
            if not value.plain.strip():
                continue
            pair = Text.assemble(Text(header.plain, style="dim"), ": ", value)
            if len(line) > 2 and len(line) + 2 + len(pair) > width:
                parts.append(line)
                line = Text("  ", no_wrap=True, overflow="ignore")
            if len(line) > 2:
                line.append("  ")
            line.append_text(pair)
        if len(line) > 2:
            parts.append(line)
    if table.caption:
        caption = _cell_text(console, table.caption)
        if caption is not None:
            parts.append(caption)
    return Group(*parts)


def _break_offsets(line: str, width: int) -> list[int]:
    """Greedy word wrap: where to break `line` so each piece is at most `width` columns,
    breaking only at spaces (a longer word is its own piece, whole)."""
    offsets: list[int] = []
    start = 0
    last_space = -1
    for i, ch in enumerate(line):
        if ch == " ":
            last_space = i
        if i - start >= width and last_space > start:
            offsets.append(last_space + 1)
            start = last_space + 1
            last_space = -1
    return offsets


def wrap_words(text: Text, width: int) -> Text:
    """`text` wrapped at spaces to `width`; words are never split or cut."""
    pieces: list[Text] = []
    for line in text.split(allow_blank=True):
        for piece in line.divide(_break_offsets(line.plain, width)):
            piece.rstrip()
            pieces.append(piece)
    out = Text("\n", style=text.style).join(pieces)
    out.no_wrap, out.overflow, out.justify = True, "ignore", text.justify
    return out


def _pin_tables(console: Console, renderable: Any) -> tuple[int, Any]:
    """The renderable's natural width, and the renderable with every table in it (also
    inside groups) pinned to its natural column widths (`_pinned`); the pinned one prints
    as the original at any width >= that natural width."""
    if isinstance(renderable, Group):
        pinned = [_pin_tables(console, r) for r in renderable.renderables]
        group = Group(*(r for _, r in pinned), fit=renderable.fit)
        return max((w for w, _ in pinned), default=0), group
    if isinstance(renderable, Table) and renderable.width is None:
        natural, widths = _measure_table(console, renderable)
        return natural, _pinned(renderable, widths)
    return natural_width(console, renderable), renderable


def fit_to_width(console: Console, renderable: Any, width: int) -> Any:
    """Replace every table (also inside groups) wider than `width` by its narrow layout,
    and wrap text at spaces only."""
    if isinstance(renderable, Text):
        return wrap_words(renderable, width)
    if isinstance(renderable, Table):
        natural, pinned = _pin_tables(console, renderable)
        if natural > width:
            return fit_to_width(console, narrow_table(console, renderable, width), width)
        return pinned
    if isinstance(renderable, Group):
        return Group(*(fit_to_width(console, r, width) for r in renderable.renderables))
    return renderable


class FittingConsole(Console):
    """A rich Console whose `print` follows the width policy of this module."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        columns = os.environ.get("COLUMNS", "")
        self._size_to_content = not self.is_terminal and not columns.strip().isdigit()

    def on_broken_pipe(self) -> None:
        """rich exits 1 on a broken pipe; kvplan's main() handles it once (quietly, 141)."""
        self.quiet = True
        raise BrokenPipeError

    def print(self, *objects: Any, **kwargs: Any) -> None:
        kwargs.setdefault("crop", False)
        if self._size_to_content:
            measured = [_pin_tables(self, o) for o in objects]
            self.width = max(PIPE_MIN_WIDTH, max((w for w, _ in measured), default=0))
            objects = tuple(o for _, o in measured)
        else:
            objects = tuple(fit_to_width(self, o, self.width) for o in objects)
        super().print(*objects, **kwargs)

    def render_lines(
        self,
        renderable: RenderableType,
        options: ConsoleOptions | None = None,
        *,
        style: Style | None = None,
        pad: bool = True,
        new_lines: bool = False,
    ) -> list[list[Segment]]:
        """rich's Table draws each cell with `render_lines`: for a `_TextCell` whose one line
        fills the width (what `_one_line` yields) this is what `Console.render_lines` does
        with it (the cell's style added to each segment, the line split off its newline),
        without the render -> apply_style -> split_and_crop_lines generators; anything else
        goes to rich. tests/test_output_width.py compares the two."""
        if type(renderable) is _TextCell and options is not None and pad and not new_lines:
            width = options.max_width
            segments = None if options.height is not None else renderable._one_line(self, options)
            if segments and segments[-1] == _LINE:
                line = segments[:-1]
                if style:
                    line = [Segment(text, style + seg_style) for text, seg_style, _ in line]
                if Segment.get_line_length(line) == width and _LINE not in line:
                    return [line]
        return super().render_lines(renderable, options, style=style, pad=pad, new_lines=new_lines)


def _justified(plain: str, width: int, justify: str) -> str:
    """`Lines.justify` of one unstyled line that fits `width` (rstrip, then pad)."""
    if justify == "left":
        return plain + " " * (width - cell_len(plain))
    if justify == "right":
        plain = plain.rstrip()
        return " " * (width - cell_len(plain)) + plain
    if justify == "center":
        plain = plain.rstrip()
        plain = " " * ((width - cell_len(plain)) // 2) + plain
        return plain + " " * (width - cell_len(plain))
    return plain  # "default", and "full" (which leaves a last line alone)
