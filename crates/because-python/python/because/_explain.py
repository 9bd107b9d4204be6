"""Explanations as Python objects that render in Jupyter."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

KIND_LABEL = {
    "history": "your history",
    "session": "this session",
    "intent": "what you did",
    "item_feature": "shared genre",
    "exemplar": "people like you",
    "user_feature": "people like you",
    "trend": "trending",
    "popularity": "popular",
    "counterfactual": "what it rests on",
    "features": "features",
}


@dataclass
class Contribution:
    """One history item's additive share of the score."""

    item: str
    title: str
    weight: float


@dataclass
class Reason:
    """A typed reason: its kind, what it rests on (`model` or `data`), its
    weight, the evidence and a sentence for people."""

    kind: str
    basis: str
    weight: float
    sentence: str
    evidence: dict[str, Any] = field(default_factory=dict)


class Explanation:
    """Why an item is recommended to a user.

    `score` is the model's score; `contributions` the largest exact
    contributions of history items, `other_contributions` the sum of the
    rest and `bias` the part no history item accounts for: together they
    add up to the score when `exact`. `reasons` are typed, `narrative` is a
    sentence or two for people, and `counterfactual` (when searched for) the
    verified set of history items without which the item leaves the list.
    """

    def __init__(self, user: str | None, rank: int | None, raw: dict[str, Any]):
        self.user = user
        self.rank = rank
        self.raw = raw
        self.item: str = raw["item"]["id"]
        self.title: str = raw["item"]["title"]
        self.score: float = raw["score"]
        self.exact: bool = raw["exact"]
        #: How the contributions were found (`exact`, `occlusion`, `attention`...).
        self.method: str = raw["method"]
        #: The method's deletion test on this model when it was saved: how
        #: many times more rank the items it names cost than random ones
        #: (`None` when not measured).
        self.fidelity: float | None = raw.get("fidelity")
        self.bias: float = raw["bias"]
        self.confidence: float = raw["confidence"]
        self.narrative: str = raw["narrative"]
        self.other_contributions: float = raw["other_contributions"]
        self.contributions = [
            Contribution(c["item"]["id"], c["item"]["title"], c["weight"]) for c in raw["contributions"]
        ]
        self.reasons = [
            Reason(
                r["kind"],
                r["basis"],
                r["weight"],
                r["sentence"],
                {k: v for k, v in r.items() if k not in ("kind", "basis", "weight", "sentence")},
            )
            for r in raw["reasons"]
        ]

    @property
    def counterfactual(self) -> Reason | None:
        return next((r for r in self.reasons if r.kind == "counterfactual"), None)

    def to_dict(self) -> dict[str, Any]:
        """The explanation as plain data (the API's JSON), with user and rank."""
        out = dict(self.raw)
        if self.user is not None:
            out["user"] = self.user
        if self.rank is not None:
            out["rank"] = self.rank
        return out

    def figure(self):
        """The contributions as a bar chart (PNG; shown inline in Jupyter)."""
        from ._figures import bar_chart

        labels = [c.title for c in self.contributions]
        values = [c.weight for c in self.contributions]
        if self.other_contributions:
            labels.append("the rest")
            values.append(self.other_contributions)
        return bar_chart(f"Why {self.title}", labels, values, "history item", "contribution to the score")

    def _method_line(self) -> str:
        if self.exact:
            return f"{self.method}: the contributions add up to the score"
        if self.fidelity is None:
            return f"{self.method}: approximate"
        return f"{self.method}: approximate; the items it names matter {self.fidelity:.1f}x as much as random ones"

    def __repr__(self) -> str:
        who = f" for {self.user}" if self.user is not None else ""
        return f"<Explanation {self.title!r}{who}: {self.narrative}>"

    def _repr_html_(self) -> str:
        e = html.escape
        rows = [(c.title, c.weight) for c in self.contributions]
        if self.other_contributions:
            rows.append(("the rest of the history", self.other_contributions))
        if self.bias:
            rows.append(("baseline", self.bias))
        largest = max([abs(w) for _, w in rows] + [1e-12])
        bars = "".join(
            f'<tr><td style="padding:1px 8px 1px 0">{e(t)}</td>'
            f'<td style="width:240px"><div style="height:10px;width:{100 * abs(w) / largest:.1f}%;'
            f'background:{"#b3402a" if w < 0 else "#2e7d4f"}"></div></td>'
            f'<td style="text-align:right;padding-left:8px">{w:.3f}</td></tr>'
            for t, w in rows
        )
        total = sum(w for _, w in rows)
        chips = " ".join(
            f'<span title="{e(r.sentence)}" style="border:1px solid #ccd;border-radius:10px;'
            f'padding:0 6px;font-size:85%">{e(KIND_LABEL.get(r.kind, r.kind))}</span>'
            for r in self.reasons
            if r.kind != "counterfactual"
        )
        cf = self.counterfactual
        cf_html = (
            f'<p style="border-left:3px solid #2456c7;padding-left:8px">{e(cf.sentence)}</p>' if cf else ""
        )
        rank = f"#{self.rank} " if self.rank else ""
        return (
            '<div style="border:1px solid #d9dde5;border-radius:6px;padding:8px 12px;margin:4px 0;'
            'font-family:system-ui,sans-serif;max-width:720px">'
            f"<div><b>{e(rank)}{e(self.title)}</b> <span style=\"color:#5b6475\">score {self.score:.3f}</span></div>"
            f"<p>{e(self.narrative)}</p>"
            f'<div style="color:#5b6475;font-size:85%">{e(self._method_line())}</div>'
            f"<table>{bars}<tr><td><b>= score</b></td><td></td>"
            f'<td style="text-align:right"><b>{total:.3f}</b></td></tr></table>'
            f"<div>{chips}</div>{cf_html}</div>"
        )


class Explanations(list):
    """A list of explanations that shows as cards in Jupyter."""

    def _repr_html_(self) -> str:
        return "".join(x._repr_html_() for x in self)

    def to_frame(self):
        """One row per explanation: user, rank, item, title, score, narrative."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "user": x.user,
                    "rank": x.rank,
                    "item": x.item,
                    "title": x.title,
                    "score": x.score,
                    "narrative": x.narrative,
                    "exact": x.exact,
                }
                for x in self
            ]
        )
