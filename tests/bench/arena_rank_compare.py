"""The comparison behind tests/bench/arena-rank (runs in arena-rank's own venv)."""

import argparse
import json
import multiprocessing
import os
import sys
import time

import numpy as np
import pandas as pd
from arena_rank.models.bradley_terry import BradleyTerry
from arena_rank.utils.data_utils import PairDataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "collections"))

from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard import (  # noqa: E402
    compute_leaderboard,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_logs import (  # noqa: E402
    Battle,
)


def simulate(models, battles, seed, tie_rate=0.1):
    rng = np.random.default_rng(seed)
    strength = {m: s for m, s in zip(models, np.linspace(0.8, -0.8, len(models)))}
    out = []
    for _ in range(battles):
        a, b = rng.choice(models, size=2, replace=False)
        if rng.random() < tie_rate:
            out.append((a, b, "tie"))
            continue
        p = 1 / (1 + np.exp(strength[b] - strength[a]))
        out.append((a, b, "a" if rng.random() < p else "b"))
    return out, strength


def main():
    # arena-rank's bootstrap runs a multiprocessing pool; forked from JAX's threads it
    # deadlocks: spawn instead.
    multiprocessing.set_start_method("spawn", force=True)
    parser = argparse.ArgumentParser()
    parser.add_argument("--battles", type=int, default=3000)
    parser.add_argument("--models", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    args = parser.parse_args()
    models = ["m%d" % i for i in range(args.models)]
    rows, strength = simulate(models, args.battles, args.seed)

    start = time.monotonic()
    ours = compute_leaderboard([Battle(a, b, o, None, True) for a, b, o in rows],
                               seed=args.seed, resamples=1000, min_battles=1)
    ours_s = time.monotonic() - start

    frame = pd.DataFrame([{"model_a": a, "model_b": b,
                           "winner": {"a": "model_a", "b": "model_b", "tie": "tie"}[o]}
                          for a, b, o in rows])
    dataset = PairDataset.from_pandas(frame)
    start = time.monotonic()
    sandwich = BradleyTerry(n_competitors=len(dataset.competitors)).compute_ratings_and_cis(
        dataset, ci_method="sandwich")
    boot = BradleyTerry(n_competitors=len(dataset.competitors)).compute_ratings_and_cis(
        dataset, ci_method="bootstrap", num_bootstrap=200, seed=args.seed, n_jobs=1)
    theirs_s = time.monotonic() - start

    theirs = {}
    for i, name in enumerate(sandwich["competitors"]):
        theirs[name] = {"rating": float(sandwich["ratings"][i]),
                        "sandwich": [float(sandwich["rating_lower"][i]), float(sandwich["rating_upper"][i])],
                        "bootstrap": [float(boot["rating_lower"][i]), float(boot["rating_upper"][i])]}
    # Both on a mean-1000 scale (arena-rank's is too, its fit starting at zero with no
    # pull: only the differences are identified).
    mean = np.mean([v["rating"] for v in theirs.values()])
    shift = 1000 - mean
    table = []
    print("%-4s %9s %9s  %-17s %-17s %-17s %7s" % ("", "truth", "ours", "ours 95%",
                                                      "arena-rank", "sandwich 95%", "diff"))
    for row in ours["models"]:
        name = row["model"]
        t = theirs[name]
        truth = 1000 + 400 / np.log(10) * (strength[name] - np.mean(list(strength.values())))
        entry = {"model": name, "truth": round(truth, 1), "ours": row["rating"],
                 "ours_ci": [row["ci_low"], row["ci_high"]],
                 "arena_rank": round(t["rating"] + shift, 2),
                 "arena_rank_sandwich": [round(x + shift, 2) for x in t["sandwich"]],
                 "arena_rank_bootstrap": [round(x + shift, 2) for x in t["bootstrap"]]}
        entry["diff"] = round(entry["ours"] - entry["arena_rank"], 2)
        table.append(entry)
        print("%-4s %9.1f %9.1f  [%6.1f, %6.1f]  %9.1f  [%6.1f, %6.1f]  %7.2f" % (
            name, truth, entry["ours"], row["ci_low"], row["ci_high"], entry["arena_rank"],
            entry["arena_rank_sandwich"][0], entry["arena_rank_sandwich"][1], entry["diff"]))
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    summary = {
        "battles": args.battles, "models": args.models, "seed": args.seed,
        "max_abs_rating_diff": max(abs(e["diff"]) for e in table),
        "mean_ci_width": {"ours_bootstrap": round(float(np.mean([width(e["ours_ci"]) for e in table])), 2),
                          "arena_rank_sandwich": round(float(np.mean([width(e["arena_rank_sandwich"]) for e in table])), 2),
                          "arena_rank_bootstrap": round(float(np.mean([width(e["arena_rank_bootstrap"]) for e in table])), 2)},
        "seconds": {"ours_fit_and_1000_resamples": round(ours_s, 2),
                    "arena_rank_fit_sandwich_and_200_resamples": round(theirs_s, 2)},
        "models_table": table,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "models_table"}, indent=2))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(summary, handle, indent=2)


if __name__ == "__main__":
    main()
