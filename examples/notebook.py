"""because in a notebook, as a script: read MovieLens-100k, split, compare
two models with full-ranking evaluation, and explain a user's
recommendations. Each `print` is what a notebook cell would show.

    python examples/notebook.py data/ml-100k    # ratings.csv and items.csv
"""

import sys
from pathlib import Path

import because

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "data/ml-100k")

# Read the log: columns are detected; the report says what was dropped.
data = because.read_interactions(folder / "ratings.csv")
print(data)
report = data.report
print(f"rows read {report['rows_read']}, kept {report['rows_kept']}")

# Hold out each user's latest 10% for test (10% more for validation).
train, validation, test = because.split(data, "user-temporal", validation=0.1, test=0.1, seed=42)
print(f"train {len(train)}, validation {len(validation)}, test {len(test)}")

# Two models, fitted on train, compared on test with 95% intervals.
models = {
    "popularity": because.Popularity().fit(train, show_progress=False),
    "ease": because.EASE(regularization=200).fit(train, show_progress=False),
    "als": because.ALS(factors=64, regularization=0.05, iterations=15, random_state=42).fit(train, show_progress=False),
}
table = because.evaluate(models, test, k=[10])
ndcg = table[(table.metric == "ndcg") & (table.k == 10)]
for row in ndcg.itertuples():
    print(f"ndcg@10 {row.model}: {row.mean:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]")

# Why does user 196 get what EASE recommends? Exact contributions, typed
# reasons, a narrative and a verified counterfactual.
# The item file gives titles and genres to the reasons.
ease = models["ease"].with_context(items=folder / "items.csv")
explanations = because.explain_recommendations(ease, ["196"], N=3)
for e in explanations:
    top = ", ".join(f"{c.title} {c.weight:+.3f}" for c in e.contributions[:3])
    print(f"#{e.rank} {e.title} score {e.score:.3f} = {top} ... ({'exact' if e.exact else 'approximate'})")
    print(f"   {e.narrative}")
    if e.counterfactual is not None:
        print(f"   {e.counterfactual.sentence}")
