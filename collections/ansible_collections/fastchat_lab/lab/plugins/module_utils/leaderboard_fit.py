# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Bradley–Terry ratings from battles: pair counts, the fit, the bootstrap.

numpy only; :mod:`leaderboard` (the entry point) uses it.

The model: model i beats model j with probability ``1 / (1 + exp(theta_j - theta_i))``.
A tie counts as half a win for each side (FastChat's ``compute_elo_mle_with_tie`` does
the same by duplicating every battle). The strengths ``theta`` maximise the
log-likelihood of the aggregated pair counts minus a weak ridge ``RIDGE / 2 * |theta|^2``
(about what FastChat's scikit-learn fit has by default: L2 with C=1 on duplicated
battles with features of ln 10). The ridge keeps an undefeated or winless model finite
and makes the fit unique; with tens of battles per model its pull is a fraction of a
rating point. The fit is Newton's method on all bootstrap resamples at once (one batched
linear solve per iteration), warm-started from the full-data fit.

Ratings are on FastChat's familiar scale: ``rating = 1000 + 400 * log10(e) * (theta -
reference)``, the reference being the mean strength of the ranked models (or one anchor
model's). The bootstrap draws the battles with replacement — a multinomial draw of the
same total over the (pair, outcome) cells, which is exactly that — and refits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

SCALE = 400.0
BASE = 10.0
INIT_RATING = 1000.0
POINTS_PER_NAT = SCALE / math.log(BASE)
RIDGE = 0.1
MAX_STEP = 2.0
TOLERANCE = 1e-9
MAX_ITERATIONS = 100


@dataclass
class PairCounts:
    """Aggregated battles between ``models`` (sorted names).

    ``wins[i, j]``: battles i won against j; ``ties[i, j]`` (symmetric): ties between i and
    j, both-bad votes counted as ties included; ``bothbad[i, j]`` (symmetric): the both-bad
    part of ``ties``.
    """

    models: list[str]
    wins: np.ndarray
    ties: np.ndarray
    bothbad: np.ndarray

    @property
    def games(self) -> np.ndarray:
        """``games[i, j]``: battles between i and j, ties included (symmetric)."""
        return self.wins + self.wins.T + self.ties

    @property
    def scores(self) -> np.ndarray:
        """``scores[i, j]``: i's wins against j plus half the ties."""
        return self.wins + 0.5 * self.ties


def count_pairs(battles: Iterable) -> PairCounts:
    """PairCounts of battles with ``model_a``, ``model_b``, ``outcome`` (a, b, tie, bothbad)."""
    battles = list(battles)
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    index = {name: i for i, name in enumerate(models)}
    size = len(models)
    wins = np.zeros((size, size), dtype=np.int64)
    ties = np.zeros((size, size), dtype=np.int64)
    bothbad = np.zeros((size, size), dtype=np.int64)
    for battle in battles:
        a, b = index[battle.model_a], index[battle.model_b]
        if battle.outcome == "a":
            wins[a, b] += 1
        elif battle.outcome == "b":
            wins[b, a] += 1
        else:
            ties[a, b] += 1
            ties[b, a] += 1
            if battle.outcome == "bothbad":
                bothbad[a, b] += 1
                bothbad[b, a] += 1
    return PairCounts(models, wins, ties, bothbad)


def _newton(scores: np.ndarray, games: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Maximise the ridge-penalised Bradley–Terry log-likelihood for a batch.

    ``scores`` and ``games`` are (R, k, k), ``theta`` the (R, k) start; returns (R, k).
    """
    theta = theta.copy()
    eye = np.eye(theta.shape[1])
    won = scores.sum(axis=2)
    for _ in range(MAX_ITERATIONS):
        diff = theta[:, :, None] - theta[:, None, :]
        p_win = 0.5 * (1.0 + np.tanh(0.5 * diff))
        gradient = won - (games * p_win).sum(axis=2) - RIDGE * theta
        weight = games * p_win * (1.0 - p_win)
        # Negative Hessian: the weighted graph Laplacian plus the ridge (positive definite).
        information = (weight.sum(axis=2) + RIDGE)[:, :, None] * eye - weight
        step = np.linalg.solve(information, gradient[:, :, None])[:, :, 0]
        step = np.clip(step, -MAX_STEP, MAX_STEP)
        theta += step
        if np.max(np.abs(step)) < TOLERANCE:
            break
    return theta


def fit_strengths(counts: PairCounts) -> np.ndarray:
    """The (k,) Bradley–Terry strengths (natural log scale) of the full data."""
    size = len(counts.models)
    return _newton(counts.scores[None].astype(float), counts.games[None].astype(float),
                   np.zeros((1, size)))[0]


def _cells(counts: PairCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-empty (pair, outcome) cells: their counts and maps to scores and games.

    Returns ``(cell_counts (C,), to_scores (C, k*k), to_games (C, k*k))``: a vector of
    per-cell counts times ``to_scores`` is the flattened scores matrix, likewise games.
    """
    size = len(counts.models)
    rows_count, rows_scores, rows_games = [], [], []
    for i in range(size):
        for j in range(i + 1, size):
            for count, share_i in ((counts.wins[i, j], 1.0), (counts.wins[j, i], 0.0),
                                   (counts.ties[i, j], 0.5)):
                if count == 0:
                    continue
                to_scores = np.zeros((size, size))
                to_scores[i, j], to_scores[j, i] = share_i, 1.0 - share_i
                to_games = np.zeros((size, size))
                to_games[i, j] = to_games[j, i] = 1.0
                rows_count.append(count)
                rows_scores.append(to_scores.ravel())
                rows_games.append(to_games.ravel())
    return (np.array(rows_count, dtype=np.int64), np.array(rows_scores),
            np.array(rows_games))


def bootstrap_strengths(counts: PairCounts, start: np.ndarray, resamples: int,
                        seed: int) -> np.ndarray:
    """(resamples, k) strengths refitted on battles drawn with replacement.

    Deterministic for a given seed (numpy's PCG64 through ``default_rng``).
    """
    size = len(counts.models)
    cell_counts, to_scores, to_games = _cells(counts)
    total = int(cell_counts.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(total, cell_counts / total, size=resamples).astype(float)
    scores = (draws @ to_scores).reshape(resamples, size, size)
    games = (draws @ to_games).reshape(resamples, size, size)
    return _newton(scores, games, np.repeat(start[None], resamples, axis=0))


def fit_with_covariate(rows: np.ndarray, covariate: np.ndarray, target: np.ndarray,
                       size: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Strengths (``size``) and one coefficient fitted together: side ``rows[:, 0]`` beats
    side ``rows[:, 1]`` with probability ``1 / (1 + exp(-(theta_a - theta_b + beta * c)))``;
    ``target`` 1, 0 or 0.5 (a tie), ``weights`` per battle (a bootstrap's counts). The same
    ridge on the strengths as the plain fit; none on ``beta``. Returns theta + [beta]."""
    n = len(target)
    design = np.zeros((n, size + 1))
    design[np.arange(n), rows[:, 0]] += 1.0
    design[np.arange(n), rows[:, 1]] -= 1.0
    design[:, size] = covariate
    weights = np.ones(n) if weights is None else weights
    ridge = np.full(size + 1, RIDGE)
    ridge[size] = 1e-9
    params = np.zeros(size + 1)
    for _ in range(MAX_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-(design @ params)))
        gradient = design.T @ (weights * (target - p)) - ridge * params
        hessian = (design * (weights * p * (1.0 - p))[:, None]).T @ design + np.diag(ridge)
        step = np.clip(np.linalg.solve(hessian, gradient), -MAX_STEP, MAX_STEP)
        params += step
        if np.abs(step).max() < TOLERANCE:
            break
    return params


def to_ratings(theta: np.ndarray, reference: Sequence[int], anchor_rating: float = INIT_RATING
               ) -> np.ndarray:
    """Strengths (..., k) -> ratings, with the mean over ``reference`` indices at the anchor."""
    centre = theta[..., list(reference)].mean(axis=-1, keepdims=True)
    return anchor_rating + POINTS_PER_NAT * (theta - centre)


def connected_groups(games: np.ndarray) -> list[list[int]]:
    """Groups of model indices linked by battles (one group: every rating is comparable)."""
    size = games.shape[0]
    seen, groups = set(), []
    for start in range(size):
        if start in seen:
            continue
        group, stack = [], [start]
        seen.add(start)
        while stack:
            node = stack.pop()
            group.append(node)
            for other in np.nonzero(games[node])[0].tolist():
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        groups.append(sorted(group))
    return groups
