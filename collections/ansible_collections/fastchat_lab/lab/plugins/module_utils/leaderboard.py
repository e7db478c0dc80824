# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The lab's private leaderboard, computed from the arena's own vote logs.

Pure Python and numpy (no Ansible import): pytest imports it directly and
``scripts/leaderboard`` runs it. The parts, each a file:

- ``leaderboard_logs.py``     which vote lines count (FastChat's log format, the skip rules)
- ``leaderboard_fit.py``      Bradley–Terry fit and bootstrap
- ``leaderboard_render.py``   leaderboard.json, .csv, .html, .png and the printed table
- ``leaderboard_fastchat.py`` the two files FastChat 0.2.36's Leaderboard tab reads

Which votes count is ``leaderboard_logs.py``'s: one per battle, however often its vote
event repeats; at most ``daily_cap`` per login (else address) and UTC day; every corrupt
line counted under a reason, never fatal. Ties count as half a win for each side.
``bothbad_vote`` ("both are bad") is a tie by default, as FastChat's own analysis has it
("tie (bothbad)"); ``bothbad="exclude"`` leaves those votes out instead (counted in
``skipped["bothbad_excluded"]``).

Output of :func:`build_leaderboard` / :func:`compute_leaderboard` (JSON-serialisable)::

    {
      "models": [                              # ranked by rating, then "too few votes"
        {"model": "Qwen-7B-Chat", "rank": 1 | null,
         "rating": 1042.5 | null, "ci_low": 1021.3 | null, "ci_high": 1060.8 | null,
         "battles": 512, "wins": 260, "losses": 200, "ties": 52,
         "bothbad": 10,                        # part of "ties"
         "win_rate": 0.5586,                   # (wins + ties / 2) / battles
         "status": "ranked" | "too few votes",
         "compared": {"revision": ..., "image": ..., ...,   # the caller's meta["models"][m]
                      "sampling": [{"temperature", "top_p", "max_new_tokens", "chats"}]}},
      ],
      "battles_used": 1234,
      "skipped": {"malformed": 0, "too_long": 0, "truncated": 0, "bad_tstamp": 0,
                  "missing_states": 0, "duplicate_vote": 0, "invalid_models": 0,
                  "same_model": 0, "no_answer": 0, "error_answer": 0,
                  "identity_revealed": 0, "named": 0, "bothbad_excluded": 0,
                  "daily_cap": 0},             # leaderboard_logs.py: the rules, in order
      "generated_at": "2024-05-01T12:00:00+00:00",
      "win_rates": {"Qwen-7B-Chat": {"Baichuan-13B-Chat": {"share": 0.56, "battles": 512}}},
                                               # row beats column; ties half; pairs met only
      "min_battles": 10,
      "analysis": {
        "position_bias": {"decided": N, "a_wins": N, "a_share": 0.52 | null,
                          "ci_low", "ci_high"},    # does the left side ("Model A") win more?
        "separation": {"models": [top, second], "gap": 12.5, "decided_between": N,
                       "decided_needed": N, "more_votes_needed": N} | null,
                                               # votes for the top two's 95 % intervals
                                               # to part at the current gap
        "length_control": {"battles": N, "coefficient": 0.4, "ci_low", "ci_high",
                           "points_for_twice_as_long": 23.2, "resamples": N,
                           "models": [{"model", "rating", "ci_low", "ci_high"}]} | null},
                                               # the ratings with the answers' length
                                               # held equal (length_control())
      "meta": {"lab": {...},                   # the caller's meta without "models"
                                               # ("title" heads the HTML page)
               "log_dirs", "log_files", "lines", "votes_seen", "other_lines",
               "first_vote", "last_vote", "seed", "resamples", "bothbad", "include_named",
               "daily_cap",                    # 0: no cap
               "voters": {"logins": {login: {"votes", "counted", <reason>: N}},
                          "without_login": {"votes", "counted", ..., "addresses": N}},
               "anchor",
               "scale": {"base": 10, "scale": 400, "ridge": 0.1},
               "sampling": {model: [...]},     # from the logs' chat lines, every model
               "named_votes": {"battles": N, "models": [{"model", "battles", "wins",
                               "losses", "ties"}]},   # left out unless include_named
               "warnings": ["..."]},
    }

With no counted vote: ``models`` [] (or only "too few votes"), ``battles_used`` 0; the
renderers then say "No votes yet".
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import numpy as np

from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_fit import (
    BASE,
    INIT_RATING,
    POINTS_PER_NAT,
    RIDGE,
    SCALE,
    PairCounts,
    bootstrap_strengths,
    connected_groups,
    count_pairs,
    fit_strengths,
    fit_with_covariate,
    to_ratings,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_logs import (
    BOTHBAD_MODES,
    DEFAULT_ALIASES,
    SKIP_REASONS,
    Battle,
    VoteLog,
    iso_time,
    read_vote_logs,
    summarise_sampling,
    summarise_voters,
)

DEFAULT_MIN_BATTLES = 10
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
TOO_FEW = "too few votes"

__all__ = ["DEFAULT_ALIASES", "DEFAULT_MIN_BATTLES", "DEFAULT_RESAMPLES", "DEFAULT_SEED",
           "BOTHBAD_MODES", "build_leaderboard", "compute_leaderboard", "aliases_from_meta"]


def aliases_from_meta(meta: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """{model: aliases} from ``meta["models"][model]["aliases"]`` where given."""
    models = (meta or {}).get("models") or {}
    return {name: list(entry["aliases"]) for name, entry in models.items()
            if isinstance(entry, Mapping) and isinstance(entry.get("aliases"), list)}


def build_leaderboard(log_dirs: Iterable[str], *, seed: int = DEFAULT_SEED,
                      resamples: int = DEFAULT_RESAMPLES,
                      min_battles: int = DEFAULT_MIN_BATTLES, include_named: bool = False,
                      bothbad: str = "tie", aliases: Mapping[str, Iterable[str]] | None = None,
                      meta: Mapping[str, Any] | None = None, anchor_model: str | None = None,
                      now: datetime | None = None, daily_cap: int | None = 0) -> dict[str, Any]:
    """Read the vote logs in ``log_dirs`` and compute the leaderboard (module docstring).

    ``aliases`` defaults to ``meta["models"][m]["aliases"]`` merged over DEFAULT_ALIASES;
    ``daily_cap``: counted votes per login (else address) and UTC day, 0 or None: no cap.
    Raises FileNotFoundError for a missing log directory, ValueError for bad options.
    """
    log_dirs = list(log_dirs)
    merged_aliases = dict(aliases_from_meta(meta))
    merged_aliases.update(aliases or {})
    log = read_vote_logs(log_dirs, aliases=merged_aliases, include_named=include_named,
                         bothbad=bothbad, daily_cap=daily_cap)
    result = compute_leaderboard(log.battles, skipped=log.skipped, seed=seed,
                                 resamples=resamples, min_battles=min_battles, meta=meta,
                                 anchor_model=anchor_model, now=now,
                                 sampling=summarise_sampling(log.sampling))
    result["meta"].update(_log_meta(log, log_dirs))
    result["meta"]["bothbad"] = bothbad
    result["meta"]["include_named"] = include_named
    result["meta"]["daily_cap"] = daily_cap or 0
    return result


def _log_meta(log: VoteLog, log_dirs: list[str]) -> dict[str, Any]:
    """What was read: directories, files, lines, votes, and the named votes left out."""
    return {"log_dirs": log_dirs, "log_files": len(log.files), "lines": log.lines,
            "votes_seen": log.votes_seen, "other_lines": log.other_lines,
            "voters": summarise_voters(log),
            "named_votes": {"battles": len(log.named), "models": _named_summary(log.named)}}


def _named_summary(battles: list[Battle]) -> list[dict[str, Any]]:
    """Per model wins/losses/ties of the named votes that were left out, by name."""
    if not battles:
        return []
    counts = count_pairs(battles)
    return [{"model": name, **_record(counts, i)} for i, name in enumerate(counts.models)]


def _check_options(seed: int, resamples: int, min_battles: int) -> None:
    """Raise ValueError for an option out of range."""
    for name, value, low in (("seed", seed, 0), ("resamples", resamples, 0),
                             ("min_battles", min_battles, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError("%s must be an integer >= %d, not %r" % (name, low, value))


def _record(counts: PairCounts, i: int) -> dict[str, Any]:
    """battles, wins, losses, ties, bothbad and win_rate of model ``i``."""
    battles = int(counts.games[i].sum())
    wins, losses = int(counts.wins[i].sum()), int(counts.wins[:, i].sum())
    ties = int(counts.ties[i].sum())
    return {"battles": battles, "wins": wins, "losses": losses, "ties": ties,
            "bothbad": int(counts.bothbad[i].sum()),
            "win_rate": round((wins + 0.5 * ties) / battles, 4) if battles else None}


def _ratings(counts: PairCounts, ranked: list[int], seed: int, resamples: int,
             anchor: int | None, anchor_rating: float
             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(ratings, ci_low, ci_high) for every model of ``counts``; CIs None without resamples."""
    reference = [anchor] if anchor is not None else ranked
    theta = fit_strengths(counts)
    ratings = to_ratings(theta, reference, anchor_rating)
    if resamples == 0:
        return ratings, None, None
    samples = to_ratings(bootstrap_strengths(counts, theta, resamples, seed), reference,
                         anchor_rating)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return ratings, low, high


def _model_rows(counts: PairCounts, ranked: list[int], ratings: np.ndarray | None,
                low: np.ndarray | None, high: np.ndarray | None,
                compared: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The "models" list: ranked by rating (then name), then the too-few-votes by name."""
    order = sorted(ranked, key=lambda i: (-ratings[i], counts.models[i])) if ranked else []
    rows = []
    for rank, i in enumerate(order, start=1):
        rows.append({"model": counts.models[i], "rank": rank,
                     "rating": round(float(ratings[i]), 2),
                     "ci_low": None if low is None else round(float(low[i]), 2),
                     "ci_high": None if high is None else round(float(high[i]), 2),
                     **_record(counts, i), "status": "ranked"})
    for i, name in enumerate(counts.models):
        if i not in ranked:
            rows.append({"model": name, "rank": None, "rating": None, "ci_low": None,
                         "ci_high": None, **_record(counts, i), "status": TOO_FEW})
    for row in rows:
        row["compared"] = dict(compared.get(row["model"], {}))
    return rows


def _win_rates(counts: PairCounts, order: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """{row model: {column model: {"share", "battles"}}} for pairs that met, in ``order``."""
    index = {name: i for i, name in enumerate(counts.models)}
    games, scores = counts.games, counts.scores
    table = {}
    for a in order:
        row = {}
        for b in order:
            i, j = index[a], index[b]
            if i != j and games[i, j]:
                row[b] = {"share": round(float(scores[i, j] / games[i, j]), 4),
                          "battles": int(games[i, j])}
        table[a] = row
    return table


def _compared(meta: Mapping[str, Any], sampling: Mapping[str, list]) -> dict[str, dict]:
    """Per model: the caller's ``meta["models"][m]`` (aliases left out) plus sampling."""
    compared: dict[str, dict] = {}
    for name, entry in (meta.get("models") or {}).items():
        if isinstance(entry, Mapping):
            compared[name] = {k: v for k, v in entry.items() if k != "aliases"}
    for name, entries in sampling.items():
        compared.setdefault(name, {})["sampling"] = entries
    return compared


def _warnings(counts: PairCounts, ranked: list[int], anchor_model: str | None,
              anchor_ok: bool, known: Mapping[str, Any] | None) -> list[str]:
    """Things a reader of the ratings should know (disconnected battles, a missing anchor,
    models voted on that the caller's ``meta["models"]`` does not describe)."""
    warnings = []
    unknown = [] if known is None else [m for m in counts.models if m not in known]
    if unknown:
        warnings.append("Voted on but not in the lab's plan now (removed or renamed since?): "
                        "%s; what was compared is unknown for them." % ", ".join(unknown))
    groups = [g for g in connected_groups(counts.games) if set(g) & set(ranked)]
    if len(groups) > 1:
        names = "; ".join(", ".join(counts.models[i] for i in g) for g in groups)
        warnings.append("The ranked models fall into %d groups that never met in a battle "
                        "(%s): ratings of different groups are not comparable."
                        % (len(groups), names))
    if anchor_model and not anchor_ok:
        warnings.append("Anchor model %s is not ranked (too few votes or none): ratings are "
                        "anchored on the mean of the ranked models instead." % anchor_model)
    return warnings


Z95 = 1.959963984540054


def position_bias(battles: list[Battle]) -> dict[str, Any]:
    """Does the left side ("Model A") win more often than half of the decided battles?
    The share with a 95 % Wilson interval (an interval that excludes 0.5 means a bias)."""
    decided = [b for b in battles if b.outcome in ("a", "b")]
    n, k = len(decided), sum(1 for b in decided if b.outcome == "a")
    out = {"decided": n, "a_wins": k, "a_share": None, "ci_low": None, "ci_high": None}
    if n:
        share = k / n
        centre = (share + Z95 ** 2 / (2 * n)) / (1 + Z95 ** 2 / n)
        half = Z95 * math.sqrt(share * (1 - share) / n + Z95 ** 2 / (4 * n * n)) / (1 + Z95 ** 2 / n)
        out.update(a_share=round(share, 4), ci_low=round(centre - half, 4),
                   ci_high=round(centre + half, 4))
    return out


LENGTH_RESAMPLES = 100


def length_control(battles: list[Battle], ranked: list[str], seed: int,
                   resamples: int) -> dict[str, Any] | None:
    """Ratings with the answers' length held equal (LMArena's "style control", length
    only): the ranked models' strengths fitted together with a coefficient on the
    normalised length difference ``(len_a - len_b) / (len_a + len_b)`` of each battle
    between two ranked models whose answers' lengths are known. ``coefficient`` > 0: the
    longer answer tends to win. 95 % intervals from at most LENGTH_RESAMPLES bootstrap
    resamples (seeded). None with fewer than two ranked models or no such battle."""
    index = {model: i for i, model in enumerate(ranked)}
    used = [b for b in battles if b.lengths and sum(b.lengths) > 0
            and b.model_a in index and b.model_b in index]
    if len(ranked) < 2 or not used:
        return None
    rows = np.array([[index[b.model_a], index[b.model_b]] for b in used])
    covariate = np.array([(b.lengths[0] - b.lengths[1]) / (b.lengths[0] + b.lengths[1])
                          for b in used])
    target = np.array([1.0 if b.outcome == "a" else 0.0 if b.outcome == "b" else 0.5
                       for b in used])
    size = len(ranked)
    full = fit_with_covariate(rows, covariate, target, size)
    rng = np.random.default_rng(seed)
    draws = [fit_with_covariate(rows, covariate, target, size,
                                rng.multinomial(len(used), np.full(len(used), 1.0 / len(used))
                                                ).astype(float))
             for _ in range(min(resamples, LENGTH_RESAMPLES))]
    ratings = to_ratings(full[:size], range(size))
    low = high = beta_low = beta_high = None
    if draws:
        stack = np.array(draws)
        boot = to_ratings(stack[:, :size], range(size))
        low, high = np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)
        beta_low, beta_high = np.percentile(stack[:, size], [2.5, 97.5])
    models = [{"model": model, "rating": round(float(ratings[i]), 2),
               "ci_low": None if low is None else round(float(low[i]), 2),
               "ci_high": None if high is None else round(float(high[i]), 2)}
              for i, model in enumerate(ranked)]
    models.sort(key=lambda row: -row["rating"])
    return {"battles": len(used), "coefficient": round(float(full[size]), 4),
            "ci_low": None if beta_low is None else round(float(beta_low), 4),
            "ci_high": None if beta_high is None else round(float(beta_high), 4),
            # What a twice-as-long answer (a difference of 1/3) is worth, in rating points.
            "points_for_twice_as_long": round(float(full[size]) / 3 * POINTS_PER_NAT, 1),
            "resamples": len(draws), "models": models}


def separation(counts: PairCounts, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How many decided votes between the top two would part their 95 % intervals at the
    current rating gap: for a Bradley-Terry gap theta (nats) with win probability p, the
    interval's half-width is about z / sqrt(n p (1 - p)), so n = (z / theta)^2 / (p (1 - p))
    (two models: +-68 points at 100 decided votes; a 55:45 preference needs about 385)."""
    ranked = [row for row in rows if row["rating"] is not None]
    if len(ranked) < 2:
        return None
    top, second = ranked[0], ranked[1]
    i, j = counts.models.index(top["model"]), counts.models.index(second["model"])
    between = int(counts.wins[i, j] + counts.wins[j, i])
    gap = top["rating"] - second["rating"]
    theta = gap / POINTS_PER_NAT
    needed = None
    if theta > 1e-9:
        p = 1.0 / (1.0 + math.exp(-theta))
        needed = int(math.ceil((Z95 / theta) ** 2 / (p * (1.0 - p))))
    return {"models": [top["model"], second["model"]], "gap": round(gap, 2),
            "decided_between": between, "decided_needed": needed,
            "more_votes_needed": None if needed is None else max(0, needed - between)}


def compute_leaderboard(battles: Iterable[Battle], *, skipped: Mapping[str, int] | None = None,
                        seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES,
                        min_battles: int = DEFAULT_MIN_BATTLES,
                        meta: Mapping[str, Any] | None = None,
                        sampling: Mapping[str, list] | None = None,
                        anchor_model: str | None = None, anchor_rating: float = INIT_RATING,
                        now: datetime | None = None) -> dict[str, Any]:
    """The leaderboard dict (module docstring) of already counted battles.

    ``skipped`` is copied into the result; ``sampling`` is ``summarise_sampling``'s output;
    ``anchor_model``: that ranked model gets ``anchor_rating`` (default: the mean of the
    ranked models does). Deterministic for a given seed (``generated_at`` aside: ``now``).
    """
    _check_options(seed, resamples, min_battles)
    battles = list(battles)
    meta = dict(meta or {})
    sampling = dict(sampling or {})
    counts = count_pairs(battles)
    ranked = [i for i in range(len(counts.models)) if counts.games[i].sum() >= min_battles]
    anchor = counts.models.index(anchor_model) if anchor_model in counts.models else None
    anchor_ok = anchor is not None and anchor in ranked
    ratings = low = high = None
    if ranked:
        ratings, low, high = _ratings(counts, ranked, seed, resamples,
                                      anchor if anchor_ok else None, anchor_rating)
    rows = _model_rows(counts, ranked, ratings, low, high, _compared(meta, sampling))
    tstamps = [b.tstamp for b in battles if b.tstamp is not None]
    run_meta = {
        "lab": {k: v for k, v in meta.items() if k != "models"},
        "first_vote": iso_time(min(tstamps)) if tstamps else None,
        "last_vote": iso_time(max(tstamps)) if tstamps else None,
        "seed": seed, "resamples": resamples,
        "anchor": {"model": anchor_model if anchor_ok else None,
                   "rating": anchor_rating if anchor_ok else INIT_RATING,
                   "of": "model" if anchor_ok else "mean of the ranked models"},
        "scale": {"base": BASE, "scale": SCALE, "ridge": RIDGE},
        "sampling": sampling,
        "warnings": _warnings(counts, ranked, anchor_model, anchor_ok, meta.get("models")),
    }
    return {
        "models": rows,
        "battles_used": len(battles),
        "skipped": {**dict.fromkeys(SKIP_REASONS, 0), **(skipped or {})},
        "generated_at": (now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "win_rates": _win_rates(counts, [row["model"] for row in rows]),
        "min_battles": min_battles,
        "analysis": {"position_bias": position_bias(battles),
                     "separation": separation(counts, rows),
                     "length_control": length_control(
                         battles, [row["model"] for row in rows if row["rating"] is not None],
                         seed, resamples)},
        "meta": run_meta,
    }
