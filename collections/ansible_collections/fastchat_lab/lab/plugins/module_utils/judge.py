# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The verdict without waiting for hundreds of votes (issue 23): every planned model answers
the lab's own questions through the lab's own API, a judge compares each pair of answers in
both orders, and the verdicts are fitted with the human leaderboard's own Bradley-Terry
code (module_utils/leaderboard.py), bootstrap intervals included.

Stages, each cached in the output directory so that an interrupted run resumes and a re-run
asks only for what is missing (a new model: its answers and its pairs):

1. Questions (:func:`questions_from_logs`, :func:`questions_from_jsonl`,
   :func:`select_questions`): the first user turns of the arena's conversations,
   de-duplicated, without questions that ask a model who it is; and/or a JSONL file of
   ``{question_id, category, turns}``. Sampled with a seed, capped.
2. Answers (``answers.jsonl``): one line a (model, question, sampling settings), with the
   time to first token and tokens/s of the answer (streamed; tokens counted by the
   model's tokenizer through /v1/completions' usage, else the streamed pieces).
3. Verdicts (``verdicts.jsonl``): one line a (question, first model, second model, judge,
   prompt version, both answers' digest). The judge is any OpenAI-compatible endpoint.
   A verdict is the one final ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie) of the judge's
   reply; none, or two different ones, is "unparseable". A pair whose two orders disagree
   is "inconsistent". Both are counted and shown, never guessed, and left out of the fit.
4. Result (:func:`judge_result`): ratings with intervals, win rates, the judge's agreement
   with the human votes on the pairs both have, speed per model, the cost.

Pure Python (urllib, json) and numpy through the leaderboard: the control node runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_logs import (
    Battle,
    find_log_files,
    is_model_name,
    iter_log_records,
)

PROMPT_VERSION = "fastchat-lab-pairwise-1"
QUESTION_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
MAX_TURNS = 10
MAX_TURN_CHARS = 20000
MAX_QUESTIONS = 10000
# Questions that ask a model who it is: its answer names it, so a blind comparison of
# such answers says nothing about quality (and the arena drops such votes too).
IDENTITY_RE = re.compile(
    r"who\s+(?:are|r)\s+(?:you|u)\b|what(?:'s|\s+is)\s+your\s+name|your\s+name\s*\?"
    r"|which\s+(?:ai\s+|language\s+|llm\s+)?model|what\s+(?:ai\s+|language\s+|llm\s+)?model"
    r"|introduce\s+yourself|who\s+(?:made|created|built|trained)\s+you"
    r"|are\s+you\s+(?:chatgpt|gpt|qwen|baichuan|claude|llama)"
    r"|你是谁|你叫什么|你是什么模型|你是哪个|哪个模型|什么模型|自我介绍|谁开发|谁训练",
    re.IGNORECASE)
VERDICT_RE = re.compile(r"\[\[\s*([ABC])\s*\]\]")

JUDGE_SYSTEM = (
    "You compare two AI assistants' answers to the same user question, for a small lab that "
    "must pick the better model for its own users. Judge which answer serves the user "
    "better: correct first, then complete where it matters, clear, and in the language the "
    "user wrote in. Do not prefer an answer for being longer, for its position (the order "
    "of the two answers is random), or for naming itself. If both are equally good or "
    "equally bad, call it a tie. Explain briefly, then end your reply with exactly one "
    "final verdict on its own line: [[A]] if Assistant A is better, [[B]] if Assistant B "
    "is better, [[C]] for a tie.")


class JudgeError(Exception):
    """A setting, a file or an endpoint the run cannot use (the message says which)."""


# --- questions ---------------------------------------------------------------------------

def is_identity_question(text: str) -> bool:
    return bool(IDENTITY_RE.search(text or ""))


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True)
                          .encode("utf-8")).hexdigest()


def _first_user_turn(state: Mapping[str, Any]) -> str | None:
    messages = state.get("messages")
    if not isinstance(messages, list):
        return None
    offset = state.get("offset", 0)
    offset = offset if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 else 0
    roles = state.get("roles")
    user = roles[0] if isinstance(roles, list) and len(roles) == 2 else None
    for position, message in enumerate(messages[offset:]):
        if not isinstance(message, list) or len(message) != 2:
            continue
        role, text = message
        if (role == user if user is not None else position % 2 == 0):
            if isinstance(text, str) and text.strip():
                return text.strip()
            return None
    return None


def questions_from_logs(log_dirs: Iterable[str]) -> list[dict[str, Any]]:
    """The first user turns of the arena's conversations (vote and chat lines alike),
    de-duplicated by their text."""
    seen, out = set(), []
    for path in find_log_files(list(log_dirs)):
        for record, _problem in iter_log_records(path):
            if not isinstance(record, dict):
                continue
            states = record.get("states") or ([record["state"]] if isinstance(
                record.get("state"), dict) else [])
            for state in states if isinstance(states, list) else []:
                if not isinstance(state, dict):
                    continue
                text = _first_user_turn(state)
                if not text or len(text) > MAX_TURN_CHARS:
                    continue
                key = " ".join(text.casefold().split())
                if key in seen:
                    continue
                seen.add(key)
                out.append({"question_id": "log-" + _digest(key)[:16], "category": "arena",
                            "turns": [text], "source": "logs"})
    return out


def questions_from_jsonl(path: str) -> list[dict[str, Any]]:
    """Questions from a JSONL file (``question_id``, ``category``, ``turns``); raises
    JudgeError naming the line of the first bad one."""
    out = []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise JudgeError("the questions file %s cannot be read: %s" % (path, exc.strerror))
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                raise JudgeError("%s line %d is not JSON" % (path, number))
            if not isinstance(entry, dict):
                raise JudgeError("%s line %d is not a JSON object" % (path, number))
            qid, turns = entry.get("question_id"), entry.get("turns")
            if isinstance(qid, int) and not isinstance(qid, bool):
                qid = str(qid)
            if not isinstance(qid, str) or not QUESTION_ID_RE.fullmatch(qid):
                raise JudgeError("%s line %d: question_id %r is not 1-128 letters, digits and "
                                 ". _ : -" % (path, number, qid))
            if (not isinstance(turns, list) or not 1 <= len(turns) <= MAX_TURNS
                    or not all(isinstance(t, str) and t.strip() and len(t) <= MAX_TURN_CHARS
                               for t in turns)):
                raise JudgeError("%s line %d: turns must be a list of 1-%d non-empty texts of at "
                                 "most %d characters" % (path, number, MAX_TURNS, MAX_TURN_CHARS))
            category = entry.get("category", "")
            out.append({"question_id": qid, "category": str(category)[:64],
                        "turns": [t.strip() for t in turns], "source": "file"})
    return out


def select_questions(questions: Iterable[Mapping[str, Any]], cap: int, seed: int
                     ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """De-duplicated (by id and by first turn), identity questions left out, a seeded sample
    of at most ``cap`` in a stable order. Returns (questions, counts)."""
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= MAX_QUESTIONS:
        raise JudgeError("the question cap must be 1-%d, got %r" % (MAX_QUESTIONS, cap))
    ids, texts, kept = set(), set(), []
    counts = {"offered": 0, "duplicates": 0, "identity": 0}
    for question in questions:
        counts["offered"] += 1
        key = " ".join(question["turns"][0].casefold().split())
        if question["question_id"] in ids or key in texts:
            counts["duplicates"] += 1
            continue
        ids.add(question["question_id"])
        texts.add(key)
        if is_identity_question(question["turns"][0]):
            counts["identity"] += 1
            continue
        kept.append(dict(question))
    kept.sort(key=lambda q: q["question_id"])
    if len(kept) > cap:
        kept = sorted(random.Random(seed).sample(kept, cap), key=lambda q: q["question_id"])
    counts["used"] = len(kept)
    return kept, counts


# --- the endpoints -----------------------------------------------------------------------

@dataclass
class Endpoint:
    """An OpenAI-compatible API: ``base_url`` ends in /v1; the key is never logged."""

    base_url: str
    key: str | None = None
    ca_file: str | None = None
    timeout: float = 600.0
    requests: int = field(default=0)

    def __post_init__(self):
        if not re.fullmatch(r"https?://[A-Za-z0-9.:\[\]-]+(?:/[A-Za-z0-9._~%+-]+)*/?", self.base_url or ""):
            raise JudgeError("%r is not an http(s):// API base URL (such as "
                             "https://lab-head:8000/v1)" % (self.base_url,))
        self.base_url = self.base_url.rstrip("/")
        self._context = None
        if self.base_url.startswith("https://"):
            self._context = ssl.create_default_context(cafile=self.ca_file or None)

    def _open(self, path: str, body: Mapping[str, Any]):
        request = urllib.request.Request(
            self.base_url + path, data=json.dumps(body).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        if self.key:
            request.add_header("Authorization", "Bearer " + self.key)
        self.requests += 1
        try:
            return urllib.request.urlopen(request, timeout=self.timeout, context=self._context)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace")
            raise JudgeError("%s%s answered HTTP %d: %s" % (self.base_url, path, exc.code,
                                                            " ".join(detail.split())[:200]))
        except (urllib.error.URLError, OSError) as exc:
            raise JudgeError("%s%s cannot be reached: %s" % (
                self.base_url, path, getattr(exc, "reason", exc)))

    def complete(self, model: str, messages: list[dict[str, str]], temperature: float,
                 max_tokens: int) -> dict[str, Any]:
        """A whole (not streamed) chat completion: text and usage."""
        with self._open("/chat/completions", {
                "model": model, "messages": messages, "temperature": temperature,
                "max_tokens": max_tokens, "stream": False}) as response:
            data = json.loads(response.read().decode("utf-8"))
        try:
            text = data["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise JudgeError("%s answered a completion without choices[0].message.content"
                             % self.base_url)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return {"text": text, "tokens": int(usage.get("total_tokens") or 0)}

    def stream(self, model: str, messages: list[dict[str, str]], temperature: float,
               max_tokens: int) -> dict[str, Any]:
        """A streamed chat completion: text, seconds to the first text, seconds in all and
        the number of streamed pieces."""
        start = time.monotonic()
        first, pieces, parts = None, 0, []
        with self._open("/chat/completions", {
                "model": model, "messages": messages, "temperature": temperature,
                "max_tokens": max_tokens, "stream": True}) as response:
            for raw in response:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    delta = json.loads(payload)["choices"][0].get("delta") or {}
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    continue
                text = delta.get("content") if isinstance(delta, dict) else None
                if text:
                    if first is None:
                        first = time.monotonic() - start
                    pieces += 1
                    parts.append(text)
        return {"text": "".join(parts), "ttft_s": first, "seconds": time.monotonic() - start,
                "pieces": pieces}

    def list_models(self) -> list[str]:
        """The models the API serves (GET /models)."""
        request = urllib.request.Request(self.base_url + "/models", method="GET")
        if self.key:
            request.add_header("Authorization", "Bearer " + self.key)
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout,
                                        context=self._context) as response:
                data = json.loads(response.read().decode("utf-8"))
            return sorted(str(m["id"]) for m in data["data"])
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
            raise JudgeError("%s/models cannot be listed: %s" % (self.base_url, exc))

    def count_tokens(self, model: str, text: str) -> int | None:
        """Tokens of ``text`` by the model's own tokenizer: the prompt tokens of a one-token
        completion of it (/v1/completions, a route the lab's front door passes; FastChat's
        /api/v1/token_check is closed there). A BOS token is included where the model adds
        one. None where the API reports no usage."""
        try:
            with self._open("/completions", {"model": model, "prompt": text, "max_tokens": 1,
                                             "temperature": 0.0}) as response:
                data = json.loads(response.read().decode("utf-8"))
            count = data["usage"]["prompt_tokens"]
            return int(count) if isinstance(count, int) and count >= 0 else None
        except (JudgeError, ValueError, KeyError, TypeError):
            return None


# --- the caches --------------------------------------------------------------------------

def read_cache(path: str) -> dict[str, dict[str, Any]]:
    """{key: entry} of a JSONL cache; a line cut short by an interruption is ignored."""
    entries = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                    entries[entry["key"]] = entry
    except FileNotFoundError:
        pass
    return entries


def append_cache(path: str, entry: Mapping[str, Any]) -> None:
    """One line, flushed to disk before the next request (an interruption loses at most
    the answer being asked)."""
    with open(path, "a", encoding="utf-8") as handle:
        if handle.tell() > 0:
            with open(path, "rb") as check:
                check.seek(-1, os.SEEK_END)
                if check.read(1) != b"\n":
                    handle.write("\n")
        handle.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# --- the run -----------------------------------------------------------------------------

@dataclass
class Settings:
    models: list[str]
    judge_model: str
    temperature: float = 0.0
    max_tokens: int = 1024
    judge_max_tokens: int = 1024
    seed: int = 1
    resamples: int = 1000


def answer_key(model: str, question: Mapping[str, Any], settings: Settings) -> str:
    return _digest("answer", model, question["question_id"], question["turns"],
                   settings.temperature, settings.max_tokens)


def verdict_key(question: Mapping[str, Any], first: Mapping[str, Any], second: Mapping[str, Any],
                judge_id: str) -> str:
    return _digest("verdict", PROMPT_VERSION, judge_id, question["question_id"],
                   first["model"], first["turns"], second["model"], second["turns"])


def judge_messages(question: Mapping[str, Any], first: Mapping[str, Any],
                   second: Mapping[str, Any]) -> list[dict[str, str]]:
    """The pairwise prompt: every turn of the user, and each assistant's answers."""
    parts = []
    for number, turn in enumerate(question["turns"], start=1):
        parts.append("[User, turn %d]\n%s" % (number, turn))
        parts.append("[Assistant A, turn %d]\n%s" % (number, first["turns"][number - 1]))
        parts.append("[Assistant B, turn %d]\n%s" % (number, second["turns"][number - 1]))
    return [{"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": "\n\n".join(parts)
             + "\n\nWhich assistant answered better? End with [[A]], [[B]] or [[C]]."}]


def parse_verdict(text: Any) -> str | None:
    """``A``, ``B`` or ``C`` when the reply holds one verdict (repeated or not), else None."""
    found = set(VERDICT_RE.findall(text if isinstance(text, str) else ""))
    return found.pop() if len(found) == 1 else None


def _answer(api: Endpoint, model: str, question: Mapping[str, Any], settings: Settings
            ) -> dict[str, Any]:
    messages, turns, ttft, seconds, tokens = [], [], None, 0.0, 0
    counted = True
    for turn in question["turns"]:
        messages.append({"role": "user", "content": turn})
        got = api.stream(model, messages, settings.temperature, settings.max_tokens)
        messages.append({"role": "assistant", "content": got["text"]})
        turns.append(got["text"])
        if ttft is None:
            ttft = got["ttft_s"]
        seconds += got["seconds"] - (got["ttft_s"] or 0.0)
        count = api.count_tokens(model, got["text"]) if got["text"] else 0
        if count is None:
            counted, count = False, got["pieces"]
        tokens += count
    return {"model": model, "question_id": question["question_id"], "turns": turns,
            "ttft_s": ttft, "generation_s": round(seconds, 4), "tokens": tokens,
            "tokens_counted": counted}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_judge(out_dir: str, questions: list[dict[str, Any]], api: Endpoint, judge: Endpoint,
              settings: Settings, judge_id: str, log=print) -> dict[str, Any]:
    """Ask for every missing answer and verdict (caches in ``out_dir``); returns the raw
    material of :func:`judge_result`."""
    os.makedirs(out_dir, exist_ok=True)
    answers_path = os.path.join(out_dir, "answers.jsonl")
    verdicts_path = os.path.join(out_dir, "verdicts.jsonl")
    answers, verdicts = read_cache(answers_path), read_cache(verdicts_path)
    asked = {"answers": 0, "verdicts": 0}
    started = time.monotonic()
    table = {}
    for model in settings.models:
        for question in questions:
            key = answer_key(model, question, settings)
            if key not in answers:
                entry = dict(_answer(api, model, question, settings), key=key, at=_now())
                append_cache(answers_path, entry)
                answers[key] = entry
                asked["answers"] += 1
                log("answer: %s on %s" % (model, question["question_id"]))
            table[model, question["question_id"]] = answers[key]
    pairs = []
    models = sorted(settings.models)
    for i, model_a in enumerate(models):
        for model_b in models[i + 1:]:
            for question in questions:
                a = table[model_a, question["question_id"]]
                b = table[model_b, question["question_id"]]
                both = []
                for first, second in ((a, b), (b, a)):
                    key = verdict_key(question, first, second, judge_id)
                    if key not in verdicts:
                        reply = judge.complete(settings.judge_model,
                                               judge_messages(question, first, second),
                                               0.0, settings.judge_max_tokens)
                        entry = {"key": key, "question_id": question["question_id"],
                                 "first": first["model"], "second": second["model"],
                                 "verdict": parse_verdict(reply["text"]),
                                 "reply": reply["text"][-2000:], "tokens": reply["tokens"],
                                 "at": _now()}
                        append_cache(verdicts_path, entry)
                        verdicts[key] = entry
                        asked["verdicts"] += 1
                        log("verdict: %s vs %s on %s: %s" % (
                            first["model"], second["model"], question["question_id"],
                            entry["verdict"] or "unparseable"))
                    both.append(verdicts[key])
                pairs.append((question["question_id"], model_a, model_b, both[0], both[1]))
    stamps = [entry.get("at") for entry in table.values()]
    stamps += [entry.get("at") for pair in pairs for entry in pair[3:]]
    return {"answers": table, "pairs": pairs, "asked": asked,
            "seconds": round(time.monotonic() - started, 2),
            "newest": max((at for at in stamps if isinstance(at, str)), default=None)}


def combine(pairs: Iterable[tuple]) -> tuple[list[Battle], dict[str, int]]:
    """Battles from pairs judged in both orders, and the counts of what was left out."""
    battles = []
    counts = {"pairs": 0, "parsed": 0, "unparseable": 0, "inconsistent": 0, "ties": 0}
    for _qid, model_a, model_b, ab, ba in pairs:
        counts["pairs"] += 1
        first = {"A": "a", "B": "b", "C": "tie"}.get(ab.get("verdict"))
        second = {"A": "b", "B": "a", "C": "tie"}.get(ba.get("verdict"))
        if first is None or second is None:
            counts["unparseable"] += 1
            continue
        counts["parsed"] += 1
        if first != second:
            counts["inconsistent"] += 1
            continue
        if first == "tie":
            counts["ties"] += 1
        battles.append(Battle(model_a=model_a, model_b=model_b, outcome=first, tstamp=None,
                              anonymous=True))
    return battles, counts


def agreement(judge_rates: Mapping[str, Any], human_rates: Mapping[str, Any] | None
              ) -> dict[str, Any]:
    """On the pairs both the judge and the human votes decided (a win share other than
    one half), how often they prefer the same model."""
    pairs, agree, detail = 0, 0, []
    for a, row in (human_rates or {}).items():
        for b, human in (row or {}).items():
            if not (isinstance(a, str) and isinstance(b, str)) or a >= b:
                continue
            judged = (judge_rates.get(a) or {}).get(b)
            if not judged or not isinstance(human, dict) or human.get("share") in (None, 0.5) \
                    or judged["share"] == 0.5:
                continue
            same = (human["share"] > 0.5) == (judged["share"] > 0.5)
            pairs += 1
            agree += int(same)
            detail.append({"models": [a, b], "human_share": human["share"],
                           "human_battles": human.get("battles"),
                           "judge_share": judged["share"], "judge_battles": judged["battles"],
                           "agree": same})
    return {"pairs": pairs, "agree": agree,
            "rate": round(agree / pairs, 4) if pairs else None, "detail": detail}


def judge_result(material: Mapping[str, Any], questions: list[dict[str, Any]],
                 question_counts: Mapping[str, int], settings: Settings,
                 judge_info: Mapping[str, Any], manifest: Mapping[str, Any] | None = None,
                 human: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """judge.json: ``models`` (model, rating, ci_low, ci_high, wins, losses, ties),
    ``verdicts``, ``questions``, ``judge``, ``speed``, ``agreement``, ``cost``, ``manifest``."""
    # Here, not at the top: the leaderboard's fit needs numpy, and the lab_judge role's filter
    # (judge_manifest_models) imports this module in every Ansible worker that loads a
    # filter of this collection.
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard import compute_leaderboard

    battles, counts = combine(material["pairs"])
    board = compute_leaderboard(battles, seed=settings.seed, resamples=settings.resamples,
                                min_battles=1)
    models = [{key: row[key] for key in ("model", "rank", "rating", "ci_low", "ci_high",
                                         "wins", "losses", "ties", "battles", "status")}
              for row in board["models"]]
    judged = {row["model"] for row in models}
    models += [{"model": m, "rank": None, "rating": None, "ci_low": None, "ci_high": None,
                "wins": 0, "losses": 0, "ties": 0, "battles": 0, "status": "no verdicts"}
               for m in sorted(settings.models) if m not in judged]
    speed = {}
    for model in sorted(settings.models):
        rows = [v for (m, _q), v in material["answers"].items() if m == model]
        ttfts = sorted(r["ttft_s"] for r in rows if isinstance(r.get("ttft_s"), (int, float)))
        seconds = sum(r.get("generation_s") or 0.0 for r in rows)
        tokens = sum(r.get("tokens") or 0 for r in rows)
        speed[model] = {
            "answers": len(rows),
            "ttft_s": round(ttfts[len(ttfts) // 2], 4) if ttfts else None,
            "tokens_per_s": round(tokens / seconds, 2) if seconds > 0 else None,
            "tokens_counted": all(r.get("tokens_counted") for r in rows),
        }
    human_rates = (human or {}).get("win_rates") if isinstance(human, Mapping) else None
    return {
        "models": models,
        "win_rates": board["win_rates"],
        "verdicts": counts,
        "questions": {"count": len(questions), **dict(question_counts),
                      "ids": [q["question_id"] for q in questions]},
        "judge": dict(judge_info, prompt_version=PROMPT_VERSION),
        "speed": speed,
        "agreement": agreement(board["win_rates"], human_rates),
        "cost": {"judge_tokens": sum((ab.get("tokens") or 0) + (ba.get("tokens") or 0)
                                     for _q, _a, _b, ab, ba in material["pairs"]),
                 "seconds": material.get("seconds"), "asked": material.get("asked")},
        "manifest": dict(manifest or {}, sampling={"temperature": settings.temperature,
                                                   "max_tokens": settings.max_tokens},
                         seed=settings.seed, resamples=settings.resamples),
        "generated_at": board["generated_at"],
        # When the newest answer or verdict used was asked: the same material, the same
        # stamp (the arena's Judge table changes only when the verdict can).
        "judged_at": material.get("newest") or board["generated_at"],
    }


def manifest_models(models: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What judge.json's manifest says of each planned model (the plan's ``models``)."""
    keys = ("source", "revision", "engine", "precision", "quantization", "backend")
    return {name: {k: entry.get(k) for k in keys if k in entry}
            for name, entry in sorted((models or {}).items()) if isinstance(entry, Mapping)}


def check_models(models: Iterable[str]) -> list[str]:
    names = list(models)
    if len(names) < 2 or len(set(names)) != len(names) or not all(is_model_name(n) for n in names):
        raise JudgeError("the judge compares two or more distinct model names, got %r" % (names,))
    return names


# --- the report --------------------------------------------------------------------------

def _cell(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return ("%%.%df" % digits) % value
    return str(value)


def render_report(result: Mapping[str, Any], human: Mapping[str, Any] | None = None) -> str:
    """judge.html: the judge's ratings next to the human leaderboard's, the verdict counts,
    the agreement, the speed per model and the manifest; a picture of both ratings."""
    import html

    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_render import (
        CSS,
        ratings_svg,
    )

    def table(headers, rows):
        head = "".join("<th>%s</th>" % html.escape(h) for h in headers)
        body = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % html.escape(_cell(c, 1))
                                               for c in row) for row in rows)
        return "<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>" % (head, body)

    human_rows = {row["model"]: row for row in (human or {}).get("models", [])
                  if isinstance(row, Mapping) and "model" in row}
    rows = []
    for row in result["models"]:
        mine = human_rows.get(row["model"], {})
        rows.append([row["model"], row["rating"], "%s - %s" % (_cell(row["ci_low"]),
                                                               _cell(row["ci_high"])),
                     row["wins"], row["losses"], row["ties"], mine.get("rating"),
                     "%s - %s" % (_cell(mine.get("ci_low")), _cell(mine.get("ci_high")))
                     if mine else "-", mine.get("battles")])
    verdicts = result["verdicts"]
    agreement_ = result["agreement"]
    body = ["<h1>The judge's verdict</h1>",
            '<p class="note">%d questions, %d pairs judged in both orders: %d parsed, '
            '%d unparseable, %d inconsistent (the two orders disagree; left out, never '
            'guessed), %d ties. Judge: %s (%s).</p>' % (
                result["questions"]["count"], verdicts["pairs"], verdicts["parsed"],
                verdicts["unparseable"], verdicts["inconsistent"], verdicts["ties"],
                html.escape(str(result["judge"].get("model"))),
                html.escape(str(result["judge"].get("endpoint")))),
            "<h2>Ratings: the judge's and the human votes'</h2>",
            table(["model", "judge rating", "95% interval", "wins", "losses", "ties",
                   "human rating", "95% interval", "human battles"], rows)]
    ranked = [m for m in result["models"] if m["rating"] is not None]
    if ranked:
        body += ["<h3>The judge</h3>", ratings_svg(ranked)]
    def number(value):
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    # The human file is read from disk: only its numbers are drawn.
    human_ranked = [{"model": str(m["model"]), "rating": m["rating"],
                     "ci_low": number(m.get("ci_low")), "ci_high": number(m.get("ci_high"))}
                    for m in human_rows.values() if number(m.get("rating")) is not None]
    if human_ranked:
        body += ["<h3>The human votes</h3>", ratings_svg(human_ranked)]
    body += ["<h2>Agreement with the human votes</h2>",
             '<p class="note">%s</p>' % (
                 "No pair has both decided human votes and decided verdicts yet."
                 if not agreement_["pairs"] else
                 "The judge prefers the same model as the human votes on %d of %d pairs."
                 % (agreement_["agree"], agreement_["pairs"]))]
    body += ["<h2>Speed on this lab's hardware</h2>",
             table(["model", "answers", "time to first token (s, median)", "tokens/s"],
                   [[m, s["answers"], s["ttft_s"], s["tokens_per_s"]]
                    for m, s in result["speed"].items()])]
    cost = result["cost"]
    body += ["<h2>What was compared</h2>",
             "<pre>%s</pre>" % html.escape(json.dumps(
                 {"manifest": result["manifest"], "judge": result["judge"],
                  "cost": cost, "questions": {k: v for k, v in result["questions"].items()
                                              if k != "ids"}},
                 indent=2, ensure_ascii=False, sort_keys=True))]
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            "<title>The judge's verdict</title>\n<style>%s</style>\n</head>\n<body>\n%s\n"
            "</body>\n</html>\n" % (CSS, "\n".join(body)))


def write_result(result: Mapping[str, Any], out_dir: str,
                 human: Mapping[str, Any] | None = None) -> list[str]:
    """judge.json and judge.html in ``out_dir`` (written whole, then renamed)."""
    written = []
    for name, text in (("judge.json", json.dumps(result, indent=2, ensure_ascii=False,
                                                  sort_keys=True) + "\n"),
                       ("judge.html", render_report(result, human))):
        path = os.path.join(out_dir, name)
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(path + ".tmp", path)
        written.append(path)
    return written
