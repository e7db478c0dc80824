# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The leaderboard's settings an admin chooses, checked in one place, and the backups
that retention removes.

Standard library only: the ``fastchat_lab.lab`` leaderboard filters (role lab_leaderboard)
and ``scripts/leaderboard`` both read the settings through :func:`read_count`, so a value
means the same on either path.

- ``lab_leaderboard_daily_cap`` (``scripts/leaderboard --daily-cap``): the most votes of
  one login that count per UTC day (votes without a login: per address); 0 or empty: no
  cap.
- ``lab_leaderboard_keep_backups``: how many of the newest vote-log backups
  (``fastchat-lab-logs-<UTC time>.tar.gz``) stay in the control node's backup directory;
  0 keeps every one.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterable

# The largest count either setting takes: a bigger one is a typo (no lab has a million
# votes a day from one login, or a million backups).
MAX_COUNT = 1_000_000
DEFAULT_KEEP_BACKUPS = 30
# The name lab_leaderboard gives each backup (UTC time of the run).
BACKUP_RE = re.compile(r"^fastchat-lab-logs-(\d{8}T\d{6}Z)\.tar\.gz\Z")

FIXES = {
    "lab_leaderboard_daily_cap": "set it to the most votes one login may have counted per "
                                 "UTC day (e.g. 50), or 0 for no cap",
    "lab_leaderboard_keep_backups": "set it to how many of the newest backups to keep on the "
                                    "control node (e.g. %d), or 0 to keep every one"
                                    % DEFAULT_KEEP_BACKUPS,
}
FIXES["--daily-cap"] = FIXES["lab_leaderboard_daily_cap"]


def _shown(value: Any) -> str:
    """A value as a message quotes it: repr, cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def read_count(where: str, var: str, value: Any) -> tuple[int, str | None]:
    """(the count, None), or (0, "<where>: <var>: <what is wrong>. Fix: <fix>.").

    Takes a whole number 0..MAX_COUNT, as an int or as decimal digits (``-e var=5`` gives
    a string); None and "" mean 0. A bool, a float, a negative or a bigger number are
    refused, never rounded.
    """
    fix = FIXES.get(var, "set it to a whole number from 0 to %d" % MAX_COUNT)
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0, None
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,7}\s*", value):
        number = int(value)
    if number is None:
        return 0, "%s: %s: %s is not a whole number. Fix: %s." % (where, var, _shown(value), fix)
    if not 0 <= number <= MAX_COUNT:
        return 0, "%s: %s: %s is not between 0 and %d. Fix: %s." % (
            where, var, _shown(value), MAX_COUNT, fix)
    return number, None


def leaderboard_settings(daily_cap: Any = None, keep_backups: Any = DEFAULT_KEEP_BACKUPS,
                         where: str = "all") -> dict[str, Any]:
    """{"daily_cap": int, "keep_backups": int, "problems": [message, ...]} of the role's
    variables (problems empty when both are fine)."""
    cap, cap_problem = read_count(where, "lab_leaderboard_daily_cap", daily_cap)
    keep, keep_problem = read_count(where, "lab_leaderboard_keep_backups", keep_backups)
    return {"daily_cap": cap, "keep_backups": keep,
            "problems": [p for p in (cap_problem, keep_problem) if p]}


def backups_to_remove(paths: Iterable[str], keep: int) -> list[str]:
    """The backups beyond the ``keep`` newest, oldest first (``keep`` 0: none).

    Only files named as lab_leaderboard names its backups count (newest by the UTC time in
    the name, not the file's time); any other file is never removed. Raises ValueError for
    a ``keep`` that :func:`read_count` would refuse.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= MAX_COUNT:
        raise ValueError("keep must be a whole number from 0 to %d, not %r" % (MAX_COUNT, keep))
    ours = sorted((match.group(1), path) for path in paths
                  if (match := BACKUP_RE.match(os.path.basename(path))))
    if keep == 0 or len(ours) <= keep:
        return []
    return [path for _, path in ours[:-keep]]


def meta_models(models: dict, images: Iterable[dict]) -> dict:
    """What the leaderboard says was compared, per planned model: its source, revision,
    aliases, engine and precision from the plan's ``models``, and the image(s) its workers
    ran, from ``images`` (each GPU host's {model: image} as its containers say; hosts where
    nothing was read give ``{}`` or None). ``unknown`` where nothing tells."""
    ran: dict = {}
    for host_images in images:
        for model, image in (host_images or {}).items():
            ran.setdefault(model, [])
            if image not in ran[model]:
                ran[model].append(image)
    return {name: {"revision": model.get("revision"), "source": model.get("source"),
                   "aliases": model.get("aliases"), "engine": model.get("engine") or "unknown",
                   "precision": model.get("precision") or "unknown",
                   "image": ", ".join(ran.get(name, [])) or "unknown"}
            for name, model in models.items()}
