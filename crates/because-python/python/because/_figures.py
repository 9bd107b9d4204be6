"""Figures as PNG that notebooks show inline."""

from __future__ import annotations

from . import _because


class Figure:
    """A PNG image: shown inline in Jupyter, saved with `save(path)`."""

    def __init__(self, png: bytes):
        self.png = png

    def _repr_png_(self) -> bytes:
        return self.png

    def save(self, path) -> None:
        with open(path, "wb") as f:
            f.write(self.png)


def bar_chart(title: str, labels, values, x_label: str = "", y_label: str = "") -> Figure:
    """A bar chart drawn by the same plotting code as the command line's figures."""
    return Figure(
        _because.bar_chart_png(title, [str(x) for x in labels], [float(v) for v in values], x_label, y_label)
    )
