"""The judge (issue 23): scripts/judge and module_utils/judge.py against a stand-in
OpenAI-compatible server the tests start (127.0.0.1, a free port, stopped by the test).

The stand-in serves models whose answers carry a hidden quality, and a judge that prefers
the better answer (the chain must recover the hidden order with intervals that exclude
each other), a judge that answers garbage (counted as unparseable, nothing crashes), and
a failure after some requests (an interrupted run resumes without asking again).
"""

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils import judge as J

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "fcl-judge-key-0123456789"
QUALITY = {"alpha": 3, "beta": 2, "gamma": 1}
QUALITY_RE = re.compile(r"quality (\d)")


class StandIn:
    """The stand-in API. ``judge_mode``: "fair" (prefers the higher quality, answers in
    either order), "garbage" (no verdict, or two), "first" (always [[A]]: position bias);
    ``fail_after``: answer HTTP 500 from that request on (None: never)."""

    def __init__(self, judge_mode="fair", fail_after=None, token_check=True):
        self.judge_mode, self.fail_after, self.token_check = judge_mode, fail_after, token_check
        self.requests, self.chat_requests = 0, []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, code, data):
                body = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self):
                if self.headers.get("Authorization") != "Bearer " + KEY:
                    self._reply(401, {"error": "bad key"})
                    return False
                return True

            def do_GET(self):
                if self._authorised() and self.path == "/v1/models":
                    self._reply(200, {"data": [{"id": m} for m in sorted(QUALITY)]})

            def do_POST(self):
                stand_in.requests += 1
                if not self._authorised():
                    return
                if stand_in.fail_after is not None and stand_in.requests > stand_in.fail_after:
                    self._reply(500, {"error": "the stand-in fails now"})
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/v1/completions":
                    # The token count of the prompt, as FastChat's usage gives it.
                    usage = {"prompt_tokens": len(body["prompt"].split()), "completion_tokens": 1}
                    self._reply(200, {"choices": [{"index": 0, "text": "x"}],
                                      **({"usage": usage} if stand_in.token_check else {})})
                    return
                stand_in.chat_requests.append(body)
                text = stand_in.answer(body)
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for word in text.split(" "):
                        chunk = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
                        self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                self._reply(200, {"choices": [{"index": 0, "message": {
                    "role": "assistant", "content": text}}],
                    "usage": {"total_tokens": len(text.split()) + 50}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/v1" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, body):
        model = body["model"]
        if model in QUALITY:
            question = body["messages"][-1]["content"]
            return "%s answers %s with quality %d and some words" % (
                model, question[:20], QUALITY[model])
        prompt = body["messages"][-1]["content"]
        found = QUALITY_RE.findall(prompt)
        if self.judge_mode == "garbage":
            return ["I cannot decide.", "[[A]] or maybe [[B]]", "tie"][len(prompt) % 3]
        if self.judge_mode == "first":
            return "The first is better.\n[[A]]"
        a, b = int(found[0]), int(found[1])
        return "Reasoning.\n" + ("[[A]]" if a > b else "[[B]]" if b > a else "[[C]]")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def questions(count=12):
    return [{"question_id": "q%02d" % i, "category": "test",
             "turns": ["Explain thing number %d" % i], "source": "file"} for i in range(count)]


def settings(**changes):
    base = dict(models=sorted(QUALITY), judge_model="judge", resamples=200, seed=3)
    base.update(changes)
    return J.Settings(**base)


def endpoint(server):
    return J.Endpoint(server.url, KEY)


def run(tmp_path, server, qs, **changes):
    s = settings(**changes)
    material = J.run_judge(str(tmp_path), qs, endpoint(server), endpoint(server), s,
                           "judge@stand-in", log=lambda line: None)
    counts = {"offered": len(qs), "duplicates": 0, "identity": 0}
    return material, J.judge_result(material, qs, counts, s, {"model": "judge"})


def test_the_chain_recovers_the_hidden_order_with_separate_intervals(tmp_path):
    with StandIn() as server:
        material, result = run(tmp_path, server, questions())
    ranked = [row["model"] for row in result["models"]]
    assert ranked == ["alpha", "beta", "gamma"]
    rows = result["models"]
    for better, worse in zip(rows, rows[1:]):
        assert better["ci_low"] > worse["ci_high"], rows
    assert result["verdicts"] == {"pairs": 36, "parsed": 36, "unparseable": 0,
                                  "inconsistent": 0, "ties": 0}
    assert rows[0]["wins"] == 24 and rows[0]["losses"] == 0
    # Every pair in both orders: 3 pairs x 12 questions x 2 orders verdicts.
    assert material["asked"] == {"answers": 36, "verdicts": 72}
    speed = result["speed"]["alpha"]
    assert speed["answers"] == 12 and speed["tokens_per_s"] > 0 and speed["ttft_s"] >= 0
    assert speed["tokens_counted"] is True
    assert result["cost"]["judge_tokens"] > 0


def test_a_position_biased_judge_gives_only_inconsistent_pairs(tmp_path):
    with StandIn(judge_mode="first") as server:
        _material, result = run(tmp_path, server, questions(4))
    assert result["verdicts"]["inconsistent"] == result["verdicts"]["pairs"] == 12
    assert all(row["rating"] is None for row in result["models"])


def test_garbage_verdicts_are_counted_and_nothing_crashes(tmp_path):
    with StandIn(judge_mode="garbage") as server:
        _material, result = run(tmp_path, server, questions(6))
    v = result["verdicts"]
    assert v["pairs"] == 18 and v["unparseable"] > 0
    assert v["parsed"] + v["unparseable"] == v["pairs"]
    J.write_result(result, str(tmp_path))
    assert json.loads((tmp_path / "judge.json").read_text())["verdicts"] == v
    assert "unparseable" in (tmp_path / "judge.html").read_text()


def test_an_interrupted_run_resumes_without_asking_again(tmp_path):
    qs = questions(5)
    with StandIn(fail_after=20) as server:
        with pytest.raises(J.JudgeError, match="HTTP 500"):
            run(tmp_path, server, qs)
    done_before = len(J.read_cache(str(tmp_path / "answers.jsonl")))
    assert 0 < done_before < 15
    with StandIn() as server:
        material, result = run(tmp_path, server, qs)
        assert material["asked"]["answers"] == 15 - done_before
        assert all(body["model"] not in QUALITY or body["stream"] for body in server.chat_requests)
    with StandIn() as server:
        material, again = run(tmp_path, server, qs)
        assert material["asked"] == {"answers": 0, "verdicts": 0}
        assert server.chat_requests == []
    assert [r["rating"] for r in again["models"]] == [r["rating"] for r in result["models"]]
    # A new model joins: only its answers and its pairs are asked for.
    QUALITY["delta"] = 0
    try:
        with StandIn() as server:
            material, grown = run(tmp_path, server, qs, models=sorted(QUALITY))
            assert material["asked"] == {"answers": 5, "verdicts": 3 * 5 * 2}
    finally:
        del QUALITY["delta"]
    assert [r["model"] for r in grown["models"]][-1] == "delta"


def test_a_cut_last_line_of_a_cache_is_ignored(tmp_path):
    path = str(tmp_path / "answers.jsonl")
    J.append_cache(path, {"key": "one", "x": 1})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write('{"key": "two", "x"')
    assert list(J.read_cache(path)) == ["one"]
    J.append_cache(path, {"key": "three"})
    assert sorted(J.read_cache(path)) == ["one", "three"]


@pytest.mark.parametrize("text, verdict", [
    ("A is better.\n[[A]]", "A"), ("[[B]]", "B"), ("tie [[C]]", "C"), ("[[ A ]]", "A"),
    ("[[A]] ... final: [[A]]", "A"), ("[[A]] or [[B]]", None), ("no verdict", None),
    ("[A]", None), (None, None), ("[[D]]", None)])
def test_a_verdict_is_one_final_label_or_unparseable(text, verdict):
    assert J.parse_verdict(text) == verdict


def test_questions_are_deduplicated_sampled_by_seed_and_identity_questions_left_out():
    offered = questions(30) + [
        {"question_id": "who", "category": "", "turns": ["Who are you?"], "source": "file"},
        {"question_id": "zh", "category": "", "turns": ["你是谁？"], "source": "file"},
        {"question_id": "model", "category": "", "turns": ["Which model are you"], "source": "file"},
        {"question_id": "dup", "category": "", "turns": ["explain  THING number 3"], "source": "file"},
        {"question_id": "q01", "category": "", "turns": ["other"], "source": "file"}]
    kept, counts = J.select_questions(offered, 10, seed=7)
    assert counts == {"offered": 35, "duplicates": 2, "identity": 3, "used": 10}
    assert kept == J.select_questions(offered, 10, seed=7)[0]
    assert kept != J.select_questions(offered, 10, seed=8)[0]
    assert [q["question_id"] for q in kept] == sorted(q["question_id"] for q in kept)
    with pytest.raises(J.JudgeError, match="cap"):
        J.select_questions(offered, 0, seed=1)


def test_questions_come_from_the_arenas_logs(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    state = {"conv_id": "c1", "model_name": "alpha", "offset": 0, "roles": ["user", "assistant"],
             "messages": [["user", "  How do tides work? "], ["assistant", "..."],
                          ["user", "And waves?"], ["assistant", "..."]]}
    lines = [{"type": "leftvote", "models": ["", ""], "states": [state, dict(state, conv_id="c2")]},
             {"type": "chat", "state": dict(state, messages=[["user", "Who are you?"]])},
             {"type": "chat", "state": dict(state, messages=[["user", "how do TIDES work?"]])},
             "not an object"]
    (logs / "2026-12-01-conv.json").write_text(
        "\n".join(json.dumps(line) for line in lines) + "\n{cut")
    found = J.questions_from_logs([str(logs)])
    assert [q["turns"] for q in found] == [["How do tides work?"], ["Who are you?"]]
    kept, counts = J.select_questions(found, 10, seed=1)
    assert [q["turns"][0] for q in kept] == ["How do tides work?"] and counts["identity"] == 1


def test_a_bad_questions_file_names_its_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question_id": 81, "category": "writing", "turns": ["a", "b"]}\n'
                    '{"question_id": "x y", "turns": ["a"]}\n')
    with pytest.raises(J.JudgeError, match="line 2: question_id 'x y'"):
        J.questions_from_jsonl(str(path))
    path.write_text('{"question_id": "ok", "turns": []}\n')
    with pytest.raises(J.JudgeError, match="line 1: turns"):
        J.questions_from_jsonl(str(path))


def test_multi_turn_questions_are_answered_turn_by_turn(tmp_path):
    qs = [{"question_id": "mt", "category": "", "turns": ["First ask", "Then ask"],
           "source": "file"}]
    with StandIn() as server:
        material, result = run(tmp_path, server, qs, models=["alpha", "beta"])
        second = [b for b in server.chat_requests if b["model"] == "alpha"][1]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert len(material["answers"]["alpha", "mt"]["turns"]) == 2
    judge_prompt = [b for b in server.chat_requests if b["model"] == "judge"][0]
    assert "[Assistant B, turn 2]" in judge_prompt["messages"][-1]["content"]


def test_agreement_with_the_human_votes_on_shared_pairs():
    judge_rates = {"alpha": {"beta": {"share": 1.0, "battles": 4}},
                   "beta": {"alpha": {"share": 0.0, "battles": 4}, "gamma": {"share": 0.75, "battles": 4}}}
    human = {"alpha": {"beta": {"share": 0.6, "battles": 30}, "gamma": {"share": 0.7, "battles": 9}},
             "beta": {"gamma": {"share": 0.4, "battles": 12}}}
    got = J.agreement(judge_rates, human)
    assert (got["pairs"], got["agree"]) == (2, 1)


def test_the_script_writes_the_documented_judge_json(tmp_path):
    key = tmp_path / "key"
    key.write_text(KEY + "\n")
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text("\n".join(json.dumps(q) for q in questions(6)) + "\n")
    out = tmp_path / "out"
    with StandIn(token_check=False) as server:
        done = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "judge"), "--api", server.url,
             "--api-key-file", str(key), "--questions", str(qfile), "--judge-model", "judge",
             "--resamples", "100", "--out", str(out)],
            capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "judge.json").read_text())
    assert {"models", "verdicts", "questions", "judge", "speed"} <= set(result)
    assert set(result["models"][0]) >= {"model", "rating", "ci_low", "ci_high", "wins",
                                        "losses", "ties"}
    assert set(result["verdicts"]) >= {"pairs", "parsed", "unparseable", "inconsistent"}
    assert set(result["speed"]["alpha"]) >= {"ttft_s", "tokens_per_s"}
    assert result["speed"]["alpha"]["tokens_counted"] is False  # no usage: streamed pieces
    assert result["judge"] == {"model": "judge", "endpoint": "the lab's API",
                               "prompt_version": J.PROMPT_VERSION}
    assert [r["model"] for r in result["models"]] == ["alpha", "beta", "gamma"]
    assert "<svg" in (out / "judge.html").read_text()
    assert KEY not in done.stdout + done.stderr


def test_the_arenas_judge_table_is_written_and_stays_the_same_when_nothing_is_asked(tmp_path):
    """--fastchat-tab: the Leaderboard tab's Judge table (ranked in the judge's order, the
    human rating beside it) and an unranked human table; a re-run that asks nothing writes
    the same bytes (the web UI restarts only when the table changes)."""
    key = tmp_path / "key"
    key.write_text(KEY + "\n")
    qfile = tmp_path / "questions.jsonl"
    qfile.write_text("\n".join(json.dumps(q) for q in questions(6)) + "\n")
    human = tmp_path / "leaderboard.json"
    human.write_text(json.dumps({"models": [{"model": "beta", "rating": 1012.4},
                                            {"model": "gamma", "rating": None}],
                                 "win_rates": {}}))
    tab = tmp_path / "tab"
    argv = [sys.executable, os.path.join(ROOT, "scripts", "judge"), "--api", "", "--api-key-file",
            str(key), "--questions", str(qfile), "--judge-model", "judge", "--resamples", "100",
            "--out", str(tmp_path / "out"), "--fastchat-tab", str(tab), "--human", str(human)]
    seen = []
    with StandIn() as server:
        argv[3] = server.url
        for _ in range(2):
            done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            seen.append({name: (tab / name).read_bytes() for name in
                         ("judge_table.json", "elo_results.pkl", "leaderboard_table.csv")})
    assert seen[0] == seen[1]
    table = json.loads(seen[0]["judge_table.json"])
    assert table["headers"][:3] == ["Rank", "Model", "Judge rating"]
    assert [row[:2] for row in table["rows"]] == [["1", "alpha"], ["2", "beta"], ["3", "gamma"]]
    assert [row[5] for row in table["rows"]] == ["-", "1012", "-"]
    assert all(isinstance(cell, str) for row in table["rows"] for cell in row)
    assert (table["judge"], table["questions"], table["pairs"], table["parsed"]) == \
        ("judge", 6, 18, 18)
    assert table["generated_at"] == json.loads((tmp_path / "out" / "judge.json").read_text())[
        "judged_at"]
    # The unranked human table names every judged model and ranks none.
    csv = seen[0]["leaderboard_table.csv"].decode().splitlines()
    assert [line.split(",")[0] for line in csv[1:]] == ["alpha", "beta", "gamma"]
    assert all(line.split(",")[2] == "-" for line in csv[1:])


def test_a_wrong_key_or_an_unreachable_api_is_a_clear_refusal(tmp_path):
    key = tmp_path / "key"
    key.write_text("wrong-key-wrong-key\n")
    with StandIn() as server:
        done = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "judge"), "--api", server.url,
             "--api-key-file", str(key), "--models", "alpha,beta", "--questions", "/nonexistent",
             "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and "questions file /nonexistent cannot be read" in done.stderr
        qfile = tmp_path / "q.jsonl"
        qfile.write_text(json.dumps(questions(1)[0]) + "\n")
        done = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "judge"), "--api", server.url,
             "--api-key-file", str(key), "--models", "alpha,beta", "--questions", str(qfile),
             "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "HTTP 401" in done.stderr
    assert "wrong-key" not in done.stderr
    with pytest.raises(J.JudgeError, match="not an http"):
        J.Endpoint("ftp://x/v1")
    with pytest.raises(J.JudgeError, match="two or more distinct"):
        J.check_models(["alpha"])
