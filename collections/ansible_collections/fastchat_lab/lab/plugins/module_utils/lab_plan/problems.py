# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""How the planner refuses: every problem names where, which variable, what and the fix.

A message reads ``<host or all>: <variable>: <what is wrong>. Fix: <what to do>.`` The
planner collects every problem it finds (:class:`Problems`) and raises
:class:`PlanError` once, with all of them, so a broken inventory is mended in one go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason the lab cannot be planned."""

    where: str      # an inventory host name, or "all" for lab-wide settings
    variable: str   # e.g. "fastchat_workers[0].gpus", "fastchat_models['Qwen-7B-Chat'].revision"
    what: str       # what is wrong, one sentence
    fix: str        # what to do about it

    def __str__(self) -> str:
        return "%s: %s: %s. Fix: %s." % (
            self.where, self.variable, self.what.rstrip(". "), self.fix.rstrip(". "))


class PlanError(Exception):
    """The inventory cannot be planned. ``errors`` lists every problem, as text."""

    def __init__(self, problems):
        self.problems = [p for p in problems if isinstance(p, Problem)]
        self.errors = [str(p) for p in problems]
        count = len(self.errors)
        head = "The lab plan has %d problem%s:" % (count, "" if count == 1 else "s")
        super().__init__("\n".join([head] + ["- " + e for e in self.errors]))


class Problems:
    """Collects problems (and warnings) while the inventory is read."""

    def __init__(self) -> None:
        self.items: list = []
        self.warnings: list = []

    def add(self, where: str, variable: str, what: str, fix: str) -> None:
        problem = Problem(str(where), variable, what, fix)
        if problem not in self.items:
            self.items.append(problem)

    def warn(self, where: str, variable: str, what: str, fix: str) -> None:
        text = str(Problem(str(where), variable, what, fix))
        if text not in self.warnings:
            self.warnings.append(text)

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise PlanError(self.items)


def key(name) -> str:
    """How a mapping key joins a variable path: ".name", or "[repr]" for odd keys."""
    if isinstance(name, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,40}\Z", name):
        return "." + name
    return "[%s]" % show(name, 40)


def show(value, limit: int = 60) -> str:
    """A value as a message quotes it: repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
