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
  "conv_id", "model_name"}``; the lab's page patch adds ``"login": "<gradio user
  name>"`` (absent or null when the web UI has no logins);
- a finished answer (``gradio_web_server.bot_response``)::

    {"type": "chat", "model": "Qwen-7B-Chat",
     "gen_params": {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 1024}, ...}

  the only place the logs say which sampling parameters the arena used;
- other lines (``upvote``, ``share``, ...) that the leaderboard ignores.

A battle is one pair of conversations: its identity is the two states' ``conv_id`` (a
random uuid4 the web UI makes for each side when a battle starts, kept in the server's
session). FastChat 0.2.36 writes a vote line on every vote event and never checks whether
that battle was voted on already: a vote event repeated (a double click, a call replayed
through gradio's API) writes another line with the same two ``conv_id`` values, whatever
vote type, address or time it carries; a user who votes in several battles has a new
pair in each (New Round starts one). So only the first vote of a battle (the earliest
``tstamp``, then reading order) is judged; every later one is a ``duplicate_vote``,
whatever it says.

Rules, in order (the first that applies decides; counted in ``skipped`` under its key):

``malformed``         not a JSON object (or too deeply nested to read), a vote without a
                      list of two model strings, or a ``login`` that is not a printable
                      text of at most 128 characters (or null)
``too_long``          a line longer than ``MAX_LINE_BYTES`` (read in pieces, never whole)
``truncated``         the last line of a file, cut before its end (a write in progress)
``bad_tstamp``        a vote whose ``tstamp`` is not a number of seconds from 1970 to 9999
                      (NaN, infinite, a string, a bool, missing)
``missing_states``    ``states`` is not two conversations with messages, an offset >= 0
                      and a ``conv_id``, or an anonymous battle's state has no
                      ``model_name``
``duplicate_vote``    the battle (its two ``conv_id`` values) already has an earlier vote
                      (of any vote type)
``invalid_models``    one side anonymous and the other not, a named side's name differs
                      from its state's ``model_name`` (FastChat's ``clean_battle_data``
                      drops both as invalid), or a name the lab cannot have
                      (``MODEL_NAME_RE``: a comma, a newline, a control character...)
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
``daily_cap``         with a ``daily_cap``: the voter already has that many counted votes
                      on that UTC day (by ``tstamp``). The voter is the ``login``; a vote
                      without one is capped by its ``ip`` (the address nginx saw: the lab's
                      proxy sets FastChat's ``CF-Connecting-IP``), votes with neither share
                      one cap. Only votes that would count use up the cap.

Every non-empty line ends up in exactly one place: a counted battle, one ``skipped``
reason, or ``other_lines`` (chat lines and the other line types).
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping

VOTE_TYPES = ("leftvote", "rightvote", "tievote", "bothbad_vote")
# Vote type -> outcome of the battle from side A's point of view.
OUTCOMES = {"leftvote": "a", "rightvote": "b", "tievote": "tie", "bothbad_vote": "bothbad"}
SKIP_REASONS = ("malformed", "too_long", "truncated", "bad_tstamp", "missing_states",
                "duplicate_vote", "invalid_models", "same_model", "no_answer", "error_answer",
                "identity_revealed", "named", "bothbad_excluded", "daily_cap")
BOTHBAD_MODES = ("tie", "exclude")
LOG_GLOB = "*-conv.json"

# The longest line read. FastChat 0.2.36 limits a battle to 50 turns of at most 12,000
# characters in and 2,048 tokens out per side: with JSON's \uXXXX escapes about 10 MB for
# the longest vote line; a longer line is not one the web UI writes.
MAX_LINE_BYTES = 32 * 1024 * 1024
_DRAIN_BYTES = 1024 * 1024
# Time stamps: seconds from 1970-01-01 up to (not including) 10000-01-01 UTC, what a
# datetime can show.
MAX_TSTAMP = 253402300800
SECONDS_PER_DAY = 86400
MAX_LOGIN_CHARS = 128
# A model name the lab can have: the planner's grammar (lab_plan/grammar.py
# MODEL_NAME_RE, without ".."). Repeated here because the head's timer ships only the
# leaderboard's files; tests/test_leaderboard.py keeps the two the same.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?\Z")

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
    """One counted vote: ``outcome`` is ``a``, ``b``, ``tie`` or ``bothbad``; ``lengths``:
    the characters of each side's answers (None where unknown, e.g. a judge's verdict)."""

    model_a: str
    model_b: str
    outcome: str
    tstamp: float | None
    anonymous: bool
    lengths: tuple[int, int] | None = None


@dataclass(frozen=True)
class Vote:
    """A vote line whose battle is known, waiting for the rules that compare lines.

    ``battle_id``: the two states' ``conv_id``; ``order``: its place in the reading;
    ``voter``: what the daily cap counts by (``("login", name)``, else ``("ip",
    address or None)``); ``verdict``: the Battle, or the skip reason the content rules
    gave it (applied only if it is the battle's first vote).
    """

    battle_id: tuple[str, str]
    tstamp: float
    order: int
    voter: tuple[str, str | None]
    verdict: Battle | str


@dataclass
class VoteLog:
    """What :func:`read_vote_logs` found.

    ``battles``: the counted votes, in time order; ``named``: named side-by-side votes
    that passed every rule but were left out (``include_named`` false), for a separate
    summary; ``skipped``: {reason: count} with every key of ``SKIP_REASONS``;
    ``sampling``: {model: Counter((temperature, top_p, max_new_tokens))} from chat lines;
    ``files``: the log files read; ``lines``: non-empty lines read; ``votes_seen``: vote
    lines among them; ``other_lines``: chat and other non-vote lines; ``logins``: {login:
    Counter} and ``without_login``: Counter of the vote lines with a readable login (or
    none): ``votes`` (lines), ``counted`` and each skip reason; ``addresses``: the
    addresses of the votes without a login (never written out, only counted).
    """

    battles: list[Battle] = field(default_factory=list)
    named: list[Battle] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    sampling: dict[str, Counter] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    lines: int = 0
    votes_seen: int = 0
    other_lines: int = 0
    logins: dict[str, Counter] = field(default_factory=dict)
    without_login: Counter = field(default_factory=Counter)
    addresses: set = field(default_factory=set)

    def note(self, voter: tuple[str, str | None], outcome: str) -> None:
        """Count one outcome (``votes``, ``counted`` or a skip reason) for the voter."""
        kind, name = voter
        if kind == "login":
            self.logins.setdefault(name, Counter())[outcome] += 1
        else:
            self.without_login[outcome] += 1


class Skip(Exception):
    """A vote line that does not count; ``reason`` is a key of ``SKIP_REASONS``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def find_log_files(directories: Iterable[str]) -> list[str]:
    """Every ``*-conv.json`` regular file directly in each directory, sorted by name per
    directory (a directory or a pipe of that name is not read).

    Raises FileNotFoundError naming the first directory that does not exist or is not a
    directory.
    """
    files = []
    for directory in directories:
        if not os.path.isdir(directory):
            raise FileNotFoundError("log directory %s does not exist or is not a directory"
                                    % directory)
        files.extend(path for path in sorted(glob.glob(os.path.join(glob.escape(directory),
                                                                    LOG_GLOB)))
                     if os.path.isfile(path))
    return files


def _raw_lines(handle: Any) -> Iterator[bytes | None]:
    """The lines of a binary file, each at most MAX_LINE_BYTES (newline aside); None for a
    longer one, whose rest is read past in pieces."""
    while True:
        raw = handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(_DRAIN_BYTES)
            yield None
        else:
            yield raw


def iter_log_records(path: str) -> Iterator[tuple[Any, str | None]]:
    """Yield (record, problem) for each non-empty line of one log file, streaming.

    ``problem`` is None for a parsed line, else ``malformed`` (not UTF-8, not JSON, too
    deeply nested), ``too_long``, or ``truncated`` for a last line without its newline
    that does not parse (the web UI was writing it); the record is then None. Lines are
    decoded as UTF-8 one by one: one bad byte spoils one line only.
    """
    with open(path, "rb") as handle:
        for raw in _raw_lines(handle):
            if raw is None:
                yield None, "too_long"
                continue
            if not raw.strip():
                continue
            try:
                yield json.loads(raw.decode("utf-8")), None
            except (UnicodeDecodeError, ValueError, RecursionError):
                # ValueError: not JSON, or an integer of more digits than Python reads;
                # RecursionError: nested deeper than the parser goes.
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


def is_model_name(name: Any) -> bool:
    """A model name the lab can have (MODEL_NAME_RE, no "..")."""
    return isinstance(name, str) and bool(MODEL_NAME_RE.match(name)) and ".." not in name


def _vote_models(record: Mapping[str, Any]) -> list[str]:
    """The two public model names of a vote line (``""`` for an anonymous side)."""
    models = record.get("models")
    if (not isinstance(models, list) or len(models) != 2
            or not all(isinstance(m, str) for m in models)):
        raise Skip("malformed")
    return models


def vote_voter(record: Mapping[str, Any]) -> tuple[str, str | None]:
    """Who voted, for the daily cap: ``("login", name)``, else ``("ip", address)`` (None
    when the line has no address either). Raises Skip("malformed") for a ``login`` that is
    neither null, "" nor a printable text of at most MAX_LOGIN_CHARS characters."""
    login = record.get("login")
    if login is None or login == "":
        address = record.get("ip")
        return "ip", address if isinstance(address, str) and address else None
    if not isinstance(login, str) or len(login) > MAX_LOGIN_CHARS or not login.isprintable():
        raise Skip("malformed")
    return "login", login


def vote_tstamp(record: Mapping[str, Any]) -> float:
    """The line's time stamp; raises Skip("bad_tstamp") unless it is a number of seconds
    in [0, MAX_TSTAMP) (NaN, infinities, strings, bools and huge integers are not)."""
    value = record.get("tstamp")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Skip("bad_tstamp")
    if not 0 <= value < MAX_TSTAMP:   # False for NaN too
        raise Skip("bad_tstamp")
    return float(value)


def _conversations(record: Mapping[str, Any], anonymous: bool) -> list[Mapping[str, Any]]:
    """The two conversation states of a vote line, checked for messages, offset, conv_id
    and (anonymous battles) model_name."""
    states = record.get("states")
    if not isinstance(states, list) or len(states) != 2:
        raise Skip("missing_states")
    for state in states:
        if not isinstance(state, dict) or not isinstance(state.get("messages"), list):
            raise Skip("missing_states")
        offset = state.get("offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise Skip("missing_states")
        conv_id = state.get("conv_id")
        if not isinstance(conv_id, str) or not conv_id:
            raise Skip("missing_states")
        if anonymous and not (isinstance(state.get("model_name"), str)
                              and state["model_name"]):
            raise Skip("missing_states")
    return states


def _battle_models(public: list[str], states: list[Mapping[str, Any]]) -> tuple[str, str, bool]:
    """(model_a, model_b, anonymous) from the public names and the states' model_name."""
    hidden = [state.get("model_name") for state in states]
    if public == ["", ""]:
        names, anonymous = hidden, True
    elif "" in public:
        raise Skip("invalid_models")
    else:
        if any(isinstance(h, str) and h and h != p for h, p in zip(hidden, public)):
            raise Skip("invalid_models")
        names, anonymous = public, False
    if not all(is_model_name(name) for name in names):
        raise Skip("invalid_models")
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


def vote_battle_id(record: Mapping[str, Any]) -> tuple[str, str]:
    """The battle a vote line is about: its two states' ``conv_id`` (checked beforehand by
    the rules up to ``missing_states``)."""
    return record["states"][0]["conv_id"], record["states"][1]["conv_id"]


def parse_vote(record: Mapping[str, Any],
               aliases: Mapping[str, Iterable[str]] | None = None) -> Battle:
    """One vote line -> Battle, or raise :class:`Skip` with the rule of one line that
    rejects it (``malformed``, ``bad_tstamp``, ``missing_states``, then the content rules
    up to ``identity_revealed``).

    ``duplicate_vote`` and ``daily_cap`` compare lines, and ``named`` and
    ``bothbad_excluded`` are choices: :func:`read_vote_logs` makes those.
    """
    public = _vote_models(record)
    vote_voter(record)
    tstamp = vote_tstamp(record)
    states = _conversations(record, public == ["", ""])
    return _judge(record, public, states, tstamp, aliases)


def _judge(record: Mapping[str, Any], public: list[str], states: list[Mapping[str, Any]],
           tstamp: float, aliases: Mapping[str, Iterable[str]] | None) -> Battle:
    """The content rules, from ``invalid_models`` to ``identity_revealed``."""
    model_a, model_b, anonymous = _battle_models(public, states)
    answers = [assistant_answers(state) for state in states]
    words = None
    if anonymous:
        table = resolve_aliases([model_a, model_b], aliases)
        words = table[model_a] + table[model_b]
    _check_answers(answers, words)
    return Battle(model_a, model_b, OUTCOMES[record["type"]], tstamp, anonymous,
                  (sum(map(len, answers[0])), sum(map(len, answers[1]))))


def _is_setting(value: Any) -> bool:
    """A sampling parameter as FastChat logs it: a finite number, or absent."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and abs(value) < 1e12)


def _sampling_key(record: Mapping[str, Any]) -> tuple[str, tuple] | None:
    """(model, (temperature, top_p, max_new_tokens)) of a chat line, or None."""
    model, params = record.get("model"), record.get("gen_params")
    if not is_model_name(model) or not isinstance(params, dict):
        return None
    values = tuple(params.get(k) for k in ("temperature", "top_p", "max_new_tokens"))
    if not all(_is_setting(v) for v in values):
        return None
    return model, values


def _take_record(log: VoteLog, record: Any, order: int,
                 aliases: Mapping[str, Iterable[str]] | None, pending: list[Vote]) -> None:
    """Add one parsed log line to ``log``: counted at once, or a Vote in ``pending``."""
    if not isinstance(record, dict) or not isinstance(record.get("type"), str):
        log.skipped["malformed"] += 1
        return
    kind = record["type"]
    if kind not in VOTE_TYPES:
        log.other_lines += 1
        key = _sampling_key(record) if kind == "chat" else None
        if key:
            log.sampling.setdefault(key[0], Counter())[key[1]] += 1
        return
    log.votes_seen += 1
    try:
        voter = vote_voter(record)
    except Skip as skip:
        log.skipped[skip.reason] += 1
        return
    log.note(voter, "votes")
    if voter[0] == "ip" and voter[1] is not None:
        log.addresses.add(voter[1])
    try:
        public = _vote_models(record)
        tstamp = vote_tstamp(record)
        states = _conversations(record, public == ["", ""])
    except Skip as skip:
        log.skipped[skip.reason] += 1
        log.note(voter, skip.reason)
        return
    try:
        verdict: Battle | str = _judge(record, public, states, tstamp, aliases)
    except Skip as skip:
        verdict = skip.reason
    pending.append(Vote(vote_battle_id(record), tstamp, order, voter, verdict))


def _decide(log: VoteLog, pending: list[Vote], include_named: bool, bothbad: str,
            daily_cap: int) -> None:
    """The rules that compare lines, in time order: one vote per battle, the daily cap."""
    seen: set[tuple[str, str]] = set()
    per_day: Counter = Counter()
    for vote in sorted(pending, key=lambda v: (v.tstamp, v.order)):
        reason = None
        battle = vote.verdict
        if vote.battle_id in seen:
            reason = "duplicate_vote"
        elif isinstance(battle, str):
            reason = battle
        elif not battle.anonymous and not include_named:
            reason = "named"
            log.named.append(battle)
        elif battle.outcome == "bothbad" and bothbad == "exclude":
            reason = "bothbad_excluded"
        elif daily_cap and per_day[vote.voter, int(vote.tstamp // SECONDS_PER_DAY)] >= daily_cap:
            reason = "daily_cap"
        seen.add(vote.battle_id)
        if reason:
            log.skipped[reason] += 1
            log.note(vote.voter, reason)
        else:
            per_day[vote.voter, int(vote.tstamp // SECONDS_PER_DAY)] += 1
            log.battles.append(battle)
            log.note(vote.voter, "counted")


def check_daily_cap(daily_cap: Any) -> int:
    """``daily_cap`` as an int (None: 0, no cap); ValueError unless a whole number >= 0."""
    if daily_cap is None:
        return 0
    if isinstance(daily_cap, bool) or not isinstance(daily_cap, int) or daily_cap < 0:
        raise ValueError("daily_cap must be a whole number >= 0 (0: no cap), not %r"
                         % (daily_cap,))
    return daily_cap


def read_vote_logs(directories: Iterable[str], aliases: Mapping[str, Iterable[str]] | None = None,
                   include_named: bool = False, bothbad: str = "tie",
                   daily_cap: int | None = 0) -> VoteLog:
    """Read every ``*-conv.json`` in ``directories`` (see the module docstring for the rules).

    ``aliases``: {model: [alias, ...]} replacing ``DEFAULT_ALIASES`` per model;
    ``include_named``: count named side-by-side votes too; ``bothbad``: ``tie`` (FastChat's
    "tie (bothbad)") or ``exclude``; ``daily_cap``: counted votes per voter and UTC day (0
    or None: no cap). Never raises on bad content; raises FileNotFoundError for a missing
    directory, OSError for a file that cannot be read, ValueError for a bad option.
    """
    if bothbad not in BOTHBAD_MODES:
        raise ValueError("bothbad must be one of %s, not %r" % (", ".join(BOTHBAD_MODES), bothbad))
    daily_cap = check_daily_cap(daily_cap)
    log = VoteLog(files=find_log_files(directories))
    pending: list[Vote] = []
    for path in log.files:
        for record, problem in iter_log_records(path):
            log.lines += 1
            if problem:
                log.skipped[problem] += 1
            else:
                _take_record(log, record, log.lines, aliases, pending)
    _decide(log, pending, include_named, bothbad, daily_cap)
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


def summarise_voters(log: VoteLog) -> dict[str, Any]:
    """Votes per login, and of the votes without one, for the leaderboard's meta::

        {"logins": {login: {"votes": N, "counted": N, <skip reason>: N, ...}},
         "without_login": {"votes": N, "counted": N, ..., "addresses": N}}

    ``votes``: the vote lines of that voter; reasons only where non-zero; addresses are
    counted, never listed.
    """
    def entry(counts: Counter) -> dict[str, int]:
        out = {"votes": counts["votes"], "counted": counts["counted"]}
        out.update((r, counts[r]) for r in SKIP_REASONS if counts[r])
        return out

    without = entry(log.without_login)
    without["addresses"] = len(log.addresses)
    return {"logins": {name: entry(log.logins[name]) for name in sorted(log.logins)},
            "without_login": without}


def iso_time(tstamp: float | None) -> str | None:
    """A UNIX time as ISO 8601 in UTC (seconds), or None."""
    if tstamp is None:
        return None
    return datetime.fromtimestamp(tstamp, tz=timezone.utc).isoformat(timespec="seconds")
