"""The same data, parameters and seed give the command line's results, and
model folders move both ways between Python and the command line."""

import json
import subprocess

import numpy as np

import because


def run(*args):
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    return out.stdout


def test_python_and_cli_agree_and_share_model_folders(ml100k, because_bin, tmp_path):
    data = ml100k / "ratings.csv"
    spec = "als:factors=16,iterations=5,regularization=0.05,seed=9"
    cli_model = tmp_path / "cli-model"
    run(because_bin, "train", "--data", str(data), "--model", spec, "--out", str(cli_model), "--quiet")
    run(because_bin, "recommend", "--model", str(cli_model), "--all", "--k", "10",
        "--out", str(tmp_path / "cli.json"), "--quiet")
    cli = json.loads((tmp_path / "cli.json").read_text())

    # Python, from the same file with the same reading and parameters.
    interactions = because.read_interactions(data)
    model = because.ALS(factors=16, iterations=5, regularization=0.05, random_state=9)
    model.fit(interactions, show_progress=False)
    mine = model.recommend_all(10)
    assert mine["model"] == cli["model"]
    assert mine["users"].keys() == cli["users"].keys()
    for user, recs in cli["users"].items():
        assert [r["item"] for r in mine["users"][user]] == [r["item"] for r in recs], user
        np.testing.assert_allclose(
            [r["score"] for r in mine["users"][user]], [r["score"] for r in recs], rtol=1e-6
        )

    # Written by Rust, as the command line writes recommendations.json.
    model.recommend_all(10, path=tmp_path / "py.json")
    assert json.loads((tmp_path / "py.json").read_text()) == mine

    # A folder the command line wrote opens in Python and answers the same.
    loaded = because.load(cli_model)
    assert isinstance(loaded, because.ALS)
    assert loaded.recommend_all(10)["users"] == cli["users"]

    # A folder Python wrote opens in the command line and answers the same.
    py_model = tmp_path / "py-model"
    model.save(py_model)
    user = "196"
    out = json.loads(run(because_bin, "recommend", "--model", str(py_model), "--user", user, "--json"))
    assert [r["item"] for r in out["items"]] == [r["item"] for r in mine["users"][user]]


def test_a_model_fitted_on_a_matrix_saves_a_folder_the_cli_reads(small, because_bin, tmp_path):
    model = because.EASE(regularization=5).fit(small, show_progress=False)
    model.save(tmp_path / "m")
    out = json.loads(run(because_bin, "recommend", "--model", str(tmp_path / "m"), "--user", "4", "--k", "5", "--json"))
    ids, _ = model.recommend(4, small[4], N=5)
    assert [int(r["item"]) for r in out["items"]] == ids.tolist()


def test_early_stopping_picks_the_same_epochs_in_python_and_the_cli(ml100k, because_bin, tmp_path):
    data = ml100k / "ratings.csv"
    cli_model = tmp_path / "cli-model"
    # No epochs in the spec: `because train` stops early by default.
    out = run(because_bin, "train", "--data", str(data), "--model", "bpr:factors=8,seed=3",
              "--out", str(cli_model), "--quiet")
    assert "early stopping: best check at epoch" in out
    manifest = json.loads((cli_model / "manifest.json").read_text())
    best = manifest["metrics"]["early_stopping"]["best_epoch"]
    run(because_bin, "recommend", "--model", str(cli_model), "--all", "--k", "10",
        "--out", str(tmp_path / "cli.json"), "--quiet")
    cli = json.loads((tmp_path / "cli.json").read_text())

    model = because.BPR(factors=8, random_state=3)
    model.fit(because.read_interactions(data), show_progress=False, early_stopping=3)
    assert model.spec.startswith(f"bpr:epochs={best},factors=8,")
    assert model.recommend_all(10)["users"] == cli["users"]
    with np.testing.assert_raises(ValueError):
        because.BPR(factors=8).fit(because.read_interactions(data), show_progress=False, early_stopping=0)
