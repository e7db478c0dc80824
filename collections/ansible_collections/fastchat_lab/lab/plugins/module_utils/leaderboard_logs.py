# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Read the arena's vote logs: which battles count, which do not and why.

Standard library only; :mod:`leaderboard` (the entry point) uses it.

FastChat 0.2.36's web UI appends one JSON object per line to
``$LOGDIR/YYYY-MM-DD-conv.json`` (``gradio_web_server.get_conv_log_filename``):

- a vote (``gradio_block_arena_anony`` / ``_named.vote_last_response``)::

    {"tstamp": 1700000000.1234, "type": "leftvote" | "rightvote" | "tievote" | "bothbad_vote",
     "models": ["", ""],          # anonymous battle; named side-by-side: the two names
     "states": [state_a, state_b], "ip": "203.0.113.7"}

  where a state is ``State.dict()``: ``{"template_name", "system_message",
  "roles": [user_role, assistant_role], "messages": [[role, text], ...], "offset",
  "conv_id", "model_name"}``;
- a finished answer (``gradio_web_server.bot_response``)::

    {"type": "chat", "model": "Qwen-7B-Chat",
     "gen_params": {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 1024}, ...}

  the only place the logs say which sampling parameters the arena used;
- other lines (``upvote``, ``share``, ...) that the leaderboard ignores.

Rules, in order (the first that applies decides; counted in ``skipped`` under its key):

``malformed``         not a JSON object, or a vote without a list of two model strings
``truncated``         the last line of a file, cut before its end (a write in progress)
``missing_states``    ``states`` is not two conversations with messages and an offset, or an
                      anonymous battle's state has no ``model_name``
``invalid_models``    one side anonymous and the other not, or a named side's name differs
                      from its state's ``model_name`` (FastChat's ``clean_battle_data``
                      drops both as invalid)
``same_model``        both sides are the same model (FastChat pairs a model with itself when
                      only one is registered): no information for a rating
``no_answer``         a side has no non-empty assistant answer
``error_answer``      an answer is one of FastChat's error texts (network error, moderation,
                      conversation limit, ``(error_code: N)``)
``identity_revealed`` anonymous battles only: an answer names either model, by its own name
                      (case-insensitive) or one of its aliases. Named votes are not checked:
                      their voter saw the names anyway.
``named``             a named side-by-side vote, unless ``include_named`` (kept in
                      ``VoteLog.named`` for a separate summary)
``bothbad_excluded``  a ``bothbad_vote`` when ``bothbad="exclude"``
"""

from __future__ import annotations

import glob
import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping

VOTE_TYPES = ("leftvote", "rightvote", "tievote", "bothbad_vote")
# Vote type -> outcome of the battle from side A's point of view.
OUTCOMES = {"leftvote": "a", "rightvote": "b", "tievote": "tie", "bothbad_vote": "bothbad"}
SKIP_REASONS = ("malformed", "truncated", "missing_states", "invalid_models", "same_model",
                "no_answer", "error_answer", "identity_revealed", "named", "bothbad_excluded")
BOTHBAD_MODES = ("tie", "exclude")
LOG_GLOB = "*-conv.json"

# Names the reference models use for themselves in answers (matched case-insensitively,
# as substrings of every assistant message of both sides). A model's own name is always
# matched too. A catalogue entry's ``aliases`` replaces the default list for that model.
DEFAULT_ALIASES: dict[str, list[str]] = {
    "Qwen-7B-Chat": ["qwen", "通义千问", "千问", "alibaba", "tongyi"],
    "Baichuan-13B-Chat": ["baichuan", "百川"],
}

# Texts FastChat 0.2.36 puts in place of an answer (fastchat/constants.py, bot_response).
ERROR_MARKERS = (
    "NETWORK ERROR DUE TO HIGH TRAFFIC. PLEASE REGENERATE OR REFRESH THIS PAGE.",
    "$MODERATION$ YOUR INPUT VIOLATES OUR CONTENT MODERATION GUIDELINES.",
    "YOU HAVE REACHED THE CONVERSATION LENGTH LIMIT.",
    "THIS SESSION HAS BEEN INACTIVE FOR TOO LONG.",
    "RATE LIMIT OF THIS MODEL IS REACHED.",
    "**API REQUEST ERROR**",
    "(error_code: ",
)


@dataclass(frozen=True)
class Battle:
    """One counted vote: ``outcome`` is ``a``, ``b``, ``tie`` or ``bothbad``."""

    model_a: str
    model_b: str
    outcome: str
    tstamp: float | None
    anonymous: bool


@dataclass
class VoteLog:
    """What :func:`read_vote_logs` found.

    ``battles``: the counted votes; ``named``: named side-by-side votes that passed every
    rule but were left out (``include_named`` false), for a separate summary; ``skipped``:
    {reason: count} with every key of ``SKIP_REASONS``; ``sampling``: {model:
    Counter((temperature, top_p, max_new_tokens))} from chat lines; ``files``: the log
    files read; ``lines``: non-empty lines read; ``votes_seen``: vote lines among them.
    """

    battles: list[Battle] = field(default_factory=list)
    named: list[Battle] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    sampling: dict[str, Counter] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    lines: int = 0
    votes_seen: int = 0


class Skip(Exception):
    """A vote line that does not count; ``reason`` is a key of ``SKIP_REASONS``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def find_log_files(directories: Iterable[str]) -> list[str]:
    """Every ``*-conv.json`` file directly in each directory, sorted by name per directory.

    Raises FileNotFoundError naming the first directory that does not exist or is not a
    directory.
    """
    files = []
    for directory in directories:
        if not os.path.isdir(directory):
            raise FileNotFoundError("log directory %s does not exist or is not a directory"
                                    % directory)
        files.extend(sorted(glob.glob(os.path.join(glob.escape(directory), LOG_GLOB))))
    return files


def iter_log_records(path: str) -> Iterator[tuple[Any, str | None]]:
    """Yield (record, problem) for each non-empty line of one log file, streaming.

    ``problem`` is None for a parsed line, else ``malformed``, or ``truncated`` for a
    last line without its newline that does not parse (the web UI was writing it); the
    record is then None. Lines are decoded as UTF-8 one by one: one bad byte spoils one
    line only.
    """
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                yield json.loads(raw.decode("utf-8")), None
            except (UnicodeDecodeError, ValueError):
                # Only the last line of a file can lack its newline.
                yield None, ("malformed" if raw.endswith(b"\n") else "truncated")


def resolve_aliases(models: Iterable[str], aliases: Mapping[str, Iterable[str]] | None
                    ) -> dict[str, list[str]]:
    """{model: lower-case names that reveal it}: its own name plus its aliases.

    ``aliases`` ({model: [alias, ...]}) replaces ``DEFAULT_ALIASES`` per model it names.
    """
    table = {name: list(words) for name, words in DEFAULT_ALIASES.items()}
    for name, words in (aliases or {}).items():
        table[name] = list(words)
    resolved = {}
    for model in models:
        words = [model] + table.get(model, [])
        resolved[model] = sorted({w.casefold() for w in words if w and w.strip()})
    return resolved


def _vote_models(record: Mapping[str, Any]) -> list[str]:
    """The two public model names of a vote line (``""`` for an anonymous side)."""
    models = record.get("models")
    if (not isinstance(models, list) or len(models) != 2
            or not all(isinstance(m, str) for m in models)):
        raise Skip("malformed")
    return models


def _conversations(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The two conversation states of a vote line, checked for messages and offset."""
    states = record.get("states")
    if not isinstance(states, list) or len(states) != 2:
        raise Skip("missing_states")
    for state in states:
        if (not isinstance(state, dict) or not isinstance(state.get("messages"), list)
                or not isinstance(state.get("offset", 0), int)
                or isinstance(state.get("offset", 0), bool)):
            raise Skip("missing_states")
    return states


def _battle_models(public: list[str], states: list[Mapping[str, Any]]) -> tuple[str, str, bool]:
    """(model_a, model_b, anonymous) from the public names and the states' model_name."""
    hidden = [state.get("model_name") for state in states]
    if public == ["", ""]:
        if not all(isinstance(h, str) and h for h in hidden):
            raise Skip("missing_states")
        names, anonymous = hidden, True
    elif "" in public:
        raise Skip("invalid_models")
    else:
        if any(isinstance(h, str) and h and h != p for h, p in zip(hidden, public)):
            raise Skip("invalid_models")
        names, anonymous = public, False
    if names[0] == names[1]:
        raise Skip("same_model")
    return names[0], names[1], anonymous


def assistant_answers(state: Mapping[str, Any]) -> list[str]:
    """The assistant messages of one state (after ``offset``), None/empty ones left out.

    A message is the assistant's when its role is ``roles[1]``; without usable roles,
    every second message after the offset (FastChat alternates user, assistant).
    """
    messages = state["messages"][state.get("offset", 0):]
    roles = state.get("roles")
    has_roles = isinstance(roles, list) and len(roles) == 2
    answers = []
    for position, message in enumerate(messages):
        if not isinstance(message, list) or len(message) != 2:
            continue
        role, text = message
        is_answer = role == roles[1] if has_roles else position % 2 == 1
        if is_answer and isinstance(text, str) and text.strip():
            answers.append(text)
    return answers


def _check_answers(answers: list[list[str]], reveal_words: list[str] | None) -> None:
    """Skip a vote whose answers are missing, errors, or (when given words) reveal a model."""
    if not all(answers):
        raise Skip("no_answer")
    text = "\n".join(a for side in answers for a in side).casefold()
    if any(marker.casefold() in text for marker in ERROR_MARKERS):
        raise Skip("error_answer")
    if reveal_words and any(word in text for word in reveal_words):
        raise Skip("identity_revealed")


def _tstamp(record: Mapping[str, Any]) -> float | None:
    """The line's time stamp as a finite float, or None."""
    value = record.get("tstamp")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def parse_vote(record: Mapping[str, Any],
               aliases: Mapping[str, Iterable[str]] | None = None) -> Battle:
    """One vote line -> Battle, or raise :class:`Skip` with the content rule that rejects it.

    Applies the rules up to ``identity_revealed``; ``named`` and ``bothbad_excluded`` are
    choices of the caller (:func:`read_vote_logs`), made on the returned battle.
    """
    public = _vote_models(record)
    states = _conversations(record)
    model_a, model_b, anonymous = _battle_models(public, states)
    answers = [assistant_answers(state) for state in states]
    words = None
    if anonymous:
        table = resolve_aliases([model_a, model_b], aliases)
        words = table[model_a] + table[model_b]
    _check_answers(answers, words)
    return Battle(model_a, model_b, OUTCOMES[record["type"]], _tstamp(record), anonymous)


def _sampling_key(record: Mapping[str, Any]) -> tuple[str, tuple] | None:
    """(model, (temperature, top_p, max_new_tokens)) of a chat line, or None."""
    model, params = record.get("model"), record.get("gen_params")
    if not isinstance(model, str) or not model or not isinstance(params, dict):
        return None
    values = tuple(params.get(k) for k in ("temperature", "top_p", "max_new_tokens"))
    if not all(v is None or isinstance(v, (int, float, str)) for v in values):
        return None
    return model, values


def _take_record(log: VoteLog, record: Any, aliases: Mapping[str, Iterable[str]] | None,
                 include_named: bool, bothbad: str) -> None:
    """Add one parsed log line to ``log``."""
    if not isinstance(record, dict) or not isinstance(record.get("type"), str):
        log.skipped["malformed"] += 1
        return
    kind = record["type"]
    if kind == "chat":
        key = _sampling_key(record)
        if key:
            log.sampling.setdefault(key[0], Counter())[key[1]] += 1
        return
    if kind not in VOTE_TYPES:
        return
    log.votes_seen += 1
    try:
        battle = parse_vote(record, aliases)
    except Skip as skip:
        log.skipped[skip.reason] += 1
        return
    if not battle.anonymous and not include_named:
        log.skipped["named"] += 1
        log.named.append(battle)
    elif battle.outcome == "bothbad" and bothbad == "exclude":
        log.skipped["bothbad_excluded"] += 1
    else:
        log.battles.append(battle)


def read_vote_logs(directories: Iterable[str], aliases: Mapping[str, Iterable[str]] | None = None,
                   include_named: bool = False, bothbad: str = "tie") -> VoteLog:
    """Read every ``*-conv.json`` in ``directories`` (see the module docstring for the rules).

    ``aliases``: {model: [alias, ...]} replacing ``DEFAULT_ALIASES`` per model;
    ``include_named``: count named side-by-side votes too; ``bothbad``: ``tie`` (FastChat's
    "tie (bothbad)") or ``exclude``. Never raises on bad content; raises FileNotFoundError
    for a missing directory and ValueError for an unknown ``bothbad``.
    """
    if bothbad not in BOTHBAD_MODES:
        raise ValueError("bothbad must be one of %s, not %r" % (", ".join(BOTHBAD_MODES), bothbad))
    log = VoteLog(files=find_log_files(directories))
    for path in log.files:
        for record, problem in iter_log_records(path):
            log.lines += 1
            if problem:
                log.skipped[problem] += 1
            else:
                _take_record(log, record, aliases, include_named, bothbad)
    return log


def summarise_sampling(sampling: Mapping[str, Counter]) -> dict[str, list[dict[str, Any]]]:
    """{model: [{"temperature", "top_p", "max_new_tokens", "chats"}, ...]}, most used first.

    One entry per distinct combination the arena's chat lines show for that model.
    """
    summary = {}
    for model in sorted(sampling):
        entries = [{"temperature": t, "top_p": p, "max_new_tokens": m, "chats": n}
                   for (t, p, m), n in sampling[model].items()]
        entries.sort(key=lambda e: (-e["chats"], json.dumps(e, sort_keys=True)))
        summary[model] = entries
    return summary


def iso_time(tstamp: float | None) -> str | None:
    """A UNIX time as ISO 8601 in UTC (seconds), or None."""
    if tstamp is None:
        return None
    return datetime.fromtimestamp(tstamp, tz=timezone.utc).isoformat(timespec="seconds")
