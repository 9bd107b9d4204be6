#!/usr/bin/env bash
# Fetches MovieLens-100k as plain CSV files into DIR (default: data/ml-100k).
#
# The data comes from a package on PyPI that ships it (recbole 1.2.1, under
# recbole/dataset_example/ml-100k), so only python3 and pip are needed.
# Writes ratings.csv (user_id,item_id,rating,timestamp), items.csv
# (item_id,title,genres,release_year; genres joined with '|') and users.csv
# (user_id,age,gender,occupation,zip). Does nothing if they are already there.
# MovieLens is licensed by GroupLens for research use and may not be
# redistributed: never commit these files.
set -euo pipefail

dir=${1:-data/ml-100k}
mkdir -p "$dir"
if [[ -s $dir/ratings.csv && -s $dir/items.csv && -s $dir/users.csv ]]; then
  echo "ml-100k already in $dir"
  exit 0
fi

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check recbole==1.2.1 -d "$wheels"

python3 - "$wheels"/recbole-1.2.1-py3-none-any.whl "$dir" <<'PY'
import csv, io, os, sys, zipfile

wheel, out = sys.argv[1], sys.argv[2]
prefix = "recbole/dataset_example/ml-100k/ml-100k."

def rows(z, ext):
    """Rows of a RecBole atomic file; its header fields are 'name:type'."""
    text = io.TextIOWrapper(z.open(prefix + ext), encoding="utf-8").read().splitlines()
    names = [h.split(":", 1)[0] for h in text[0].split("\t")]
    for line in text[1:]:
        if line:
            values = line.split("\t")
            yield dict(zip(names, values + [""] * (len(names) - len(values))))

def save(name, header, data):
    tmp = os.path.join(out, name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(data)
    os.replace(tmp, os.path.join(out, name))
    print(f"{name:12} {len(data):7} rows")

with zipfile.ZipFile(wheel) as z:
    ratings = sorted((int(r["user_id"]), int(r["item_id"]), int(float(r["rating"])), int(float(r["timestamp"])))
                     for r in rows(z, "inter"))
    items = sorted((int(r["item_id"]), r["movie_title"], "|".join(r.get("class", "").split()),
                    r["release_year"] if r["release_year"].isdigit() else "")
                   for r in rows(z, "item"))
    users = sorted((int(r["user_id"]), int(r["age"]), r["gender"], r["occupation"], r["zip_code"])
                   for r in rows(z, "user"))

save("ratings.csv", ["user_id", "item_id", "rating", "timestamp"], ratings)
save("items.csv", ["item_id", "title", "genres", "release_year"], items)
save("users.csv", ["user_id", "age", "gender", "occupation", "zip"], users)
PY
