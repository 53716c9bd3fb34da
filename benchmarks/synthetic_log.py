"""A synthetic event log over the real ml-100k catalogue, for scale benchmarks.

    .venv/bin/python benchmarks/synthetic_log.py --events 10000000 --users 1000000 --out DIR

Users get attributes drawn like ml-100k's (age, gender, occupation) and one
or two favourite genres; events per user follow a geometric law with the
requested mean; 70% of events pick a popular item of a favourite genre
(rated 4–5), the rest a popular item of any genre (rated 1–3); times rise
per user. Items are ml-100k's, so a model trained on ml-100k serves the
synthetic users as new users (text + history, no id embedding).
Writes DIR/users.parquet and DIR/events.parquet (user_id, item_id,
timestamp, rating, in time order per user).
"""
import argparse
from pathlib import Path

import numpy as np
import pandas as pd

OCCUPATIONS = ["administrator", "artist", "doctor", "educator", "engineer", "entertainment",
               "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing",
               "none", "other", "programmer", "retired", "salesman", "scientist", "student",
               "technician", "writer"]
START = 1_735_689_600  # 2025-01-01


def synthetic_log(items: pd.DataFrame, popularity: pd.Series, events: int, users: int,
                  seed: int = 0):
    """(users frame, events frame) with exactly ``events`` events over ``users`` users."""
    rng = np.random.default_rng(seed)
    item_ids = items["item_id"].to_numpy(dtype=object)
    weights = popularity.reindex(item_ids).fillna(0).to_numpy(float) + 1.0
    genres_of = items["tags"].fillna("").str.split("|")
    genres = sorted({g for gs in genres_of for g in gs if g})
    by_genre = {g: np.flatnonzero(genres_of.map(lambda gs, g=g: g in gs).to_numpy())
                for g in genres}

    counts = rng.geometric(users / events, size=users)
    counts = np.maximum(1, np.round(counts * events / counts.sum())).astype(np.int64)
    while counts.sum() != events:  # exact total, adjusting random users by one
        difference = events - counts.sum()
        chosen = rng.choice(users, size=min(abs(difference), users), replace=False)
        counts[chosen] += np.sign(difference)
        counts = np.maximum(counts, 1)
    user_index = np.repeat(np.arange(users), counts)
    favourite = rng.integers(len(genres), size=users)

    liked = rng.random(events) < 0.7
    item_rows = np.empty(events, np.int64)
    all_p = weights / weights.sum()
    item_rows[~liked] = rng.choice(len(item_ids), size=int((~liked).sum()), p=all_p)
    event_genre = favourite[user_index]
    for code, genre in enumerate(genres):
        picks = np.flatnonzero(liked & (event_genre == code))
        pool = by_genre[genre]
        if len(picks):
            p = weights[pool] / weights[pool].sum()
            item_rows[picks] = pool[rng.choice(len(pool), size=len(picks), p=p)]
    ratings = np.where(liked, rng.integers(4, 6, events), rng.integers(1, 4, events))
    first = START + rng.integers(0, 300 * 86_400, size=users)
    step = rng.integers(60, 3 * 86_400, size=events)
    starts = np.cumsum(counts) - counts
    cumulative = np.cumsum(step)  # each user's times rise from their own first one
    offset = cumulative - np.repeat(cumulative[starts] - step[starts], counts)
    user_names = np.char.add("s", np.arange(users).astype(str)).astype(object)
    event_frame = pd.DataFrame({
        "user_id": user_names[user_index], "item_id": item_ids[item_rows],
        "timestamp": first[user_index] + offset, "rating": ratings.astype(float)})
    user_frame = pd.DataFrame({
        "user_id": user_names, "age": rng.integers(18, 70, size=users),
        "gender": rng.choice(["M", "F"], size=users),
        "occupation": rng.choice(OCCUPATIONS, size=users)})
    return user_frame, event_frame


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import tf_profiles  # noqa: F401
    from tf_profiles.data.movielens import convert_ml100k

    out = Path(args.out)
    paths = convert_ml100k(out / "ml-100k")
    items = pd.read_csv(paths["items"], dtype=str)
    popularity = pd.read_csv(paths["interactions"], dtype=str)["item_id"].value_counts()
    users, events = synthetic_log(items, popularity, args.events, args.users, args.seed)
    users.to_parquet(out / "users.parquet", index=False)
    events.to_parquet(out / "events.parquet", index=False)
    print(f"{len(events)} events over {len(users)} users → {out}")


if __name__ == "__main__":
    main()
