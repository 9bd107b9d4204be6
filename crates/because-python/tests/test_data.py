"""Reading, cleaning reports, pandas, splits and evaluation."""

import numpy as np
import pandas as pd
import pytest

import because


def test_reading_reports_every_dropped_row(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text(
        "user_id,item_id,rating,timestamp\n"
        "1,10,4,1000\n1,11,5,2000\n2,10,3,1500\n"
        "3,,4,1700\n"  # no item: dropped and counted
        "2,12,5,1800\n"
    )
    data = because.read_interactions(f)
    assert (data.n_users, data.n_items, len(data)) == (2, 3, 4)
    r = data.report
    assert r["rows_read"] == 5 and r["rows_kept"] == 4
    assert sum(r["dropped"].values()) == 1
    with pytest.raises(ValueError, match=r"log\.csv:5: column 2"):
        because.read_interactions(f, strict=True)
    with pytest.raises(ValueError, match="column"):
        because.read_interactions(f, user="who")


def test_pandas_round_trip_and_matrix(tmp_path):
    df = pd.DataFrame({
        "u": ["a", "a", "b", "c", "c", "c"],
        "i": [1, 2, 1, 3, 2, 1],
        "w": [1.0, 2.0, 1.0, 1.0, 1.0, 3.0],
        "t": pd.to_datetime([1, 2, 3, 4, 5, 6], unit="D"),
    })
    data = because.from_pandas(df, user="u", item="i", value="w", time="t")
    back = data.to_pandas()
    assert list(back.columns) == ["user", "item", "value", "timestamp"]
    assert len(back) == 6 and set(back["user"]) == {"a", "b", "c"}
    m = data.to_csr()
    assert m.shape == (3, 3) and m.sum() == pytest.approx(9.0)
    with pytest.raises(KeyError, match="no column"):
        because.from_pandas(df, user="nope")
    # Times with a time zone are read as the instants they are.
    aware = df.assign(t=df["t"].dt.tz_localize("Europe/Paris"))
    back = because.from_pandas(aware, user="u", item="i", time="t").to_pandas()
    assert back["timestamp"].min() == pd.Timestamp("1970-01-01 23:00")


def test_splits_and_evaluation(ml100k):
    data = because.read_interactions(ml100k / "ratings.csv")
    train, validation, test = because.split(data, "user_temporal", 0.1, 0.1, seed=1)
    assert len(train) + len(validation) + len(test) == len(data)
    pairs = lambda d: set(map(tuple, d.to_pandas()[["user", "item"]].to_numpy()))
    assert not pairs(train) & pairs(test)
    models = {
        "pop": because.Popularity().fit(train, show_progress=False),
        "ease": because.EASE(regularization=200).fit(train, show_progress=False),
    }
    table = because.evaluate(models, test, k=[10])
    assert {"model", "metric", "k", "mean", "ci_low", "ci_high"} <= set(table.columns)
    ndcg = table[(table.metric == "ndcg") & (table.k == 10)].set_index("model")
    assert ndcg.loc["ease", "mean"] > ndcg.loc["pop", "mean"] > 0
    for _, r in ndcg.iterrows():
        assert r.ci_low <= r["mean"] <= r.ci_high
    assert (table.dropped_unknown >= 0).all()


def test_explanations_render(ml100k):
    data = because.read_interactions(ml100k / "ratings.csv")
    model = because.EASE(regularization=200).fit(data, show_progress=False)
    ex = because.explain_recommendations(model, ["196", "186"], N=3)
    assert len(ex) == 6
    e = ex[0]
    assert e.user == "196" and e.rank == 1
    assert e.narrative and e.reasons
    total = sum(c.weight for c in e.contributions) + e.other_contributions + e.bias
    assert abs(total - e.score) <= 1e-4 * (1 + abs(e.score))
    html = ex._repr_html_()
    assert html.count("= score") == 6 and "<table>" in html
    d = e.to_dict()
    assert d["user"] == "196" and d["item"]["id"] == e.item
    png = e.figure()._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(ex.to_frame().columns)[:4] == ["user", "rank", "item", "title"]
    one = model.explain_item("196", e.item)
    assert one.counterfactual is not None
