"""The notebook-style example runs and says what it should."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "notebook.py"


def test_the_notebook_example(ml100k):
    out = subprocess.run([sys.executable, str(EXAMPLE), str(ml100k)], check=True, capture_output=True, text=True).stdout
    assert "rows read 100000, kept 100000" in out
    scores = dict(re.findall(r"ndcg@10 (\w+): ([0-9.]+)", out))
    assert set(scores) == {"popularity", "ease", "als"}
    # Personal models beat popularity on this split.
    assert float(scores["ease"]) > float(scores["popularity"])
    assert float(scores["als"]) > float(scores["popularity"])
    assert len(re.findall(r"^#\d .* \(exact\)$", out, flags=re.M)) == 3
    assert "Because you" in out
