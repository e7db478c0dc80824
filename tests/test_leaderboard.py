"""The private leaderboard (module_utils/leaderboard*.py, scripts/leaderboard).

Simulated voters with known Bradley–Terry strengths check the fit and its intervals; vote
lines in FastChat's format check which votes count (one per battle, the daily cap per
login); hostile lines and Hypothesis-generated garbage check that every line is counted
and none is fatal; tests/data/votes/ holds lines that FastChat 0.2.36's own web UI code
wrote (see its README.md)."""

import ast
import copy
import csv
import glob
import importlib.util
import io
import itertools
import json
import math
import os
import pickle
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard import (
    build_leaderboard,
    compute_leaderboard,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_fastchat import (
    fastchat_elo_results,
    fastchat_leaderboard_table,
    write_fastchat_leaderboard,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_fit import (
    POINTS_PER_NAT,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils import leaderboard_logs
from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import grammar
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_logs import (
    Battle,
    read_vote_logs,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_render import (
    format_table,
    nice_ticks,
    render_csv,
    render_html,
    render_json,
    write_leaderboard,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_settings import (
    backups_to_remove,
    leaderboard_settings,
)

from labs import ROOT

REAL_VOTES = os.path.join(ROOT, "tests", "data", "votes")
SCRIPT = os.path.join(ROOT, "scripts", "leaderboard")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
QWEN, BAICHUAN = "Qwen-7B-Chat", "Baichuan-13B-Chat"
ROLES = {QWEN: ["<|im_start|>user", "<|im_start|>assistant"],
         BAICHUAN: ["<reserved_102>", "<reserved_103>"]}
NO_SKIPS = {"malformed": 0, "too_long": 0, "truncated": 0, "bad_tstamp": 0,
            "missing_states": 0, "duplicate_vote": 0, "invalid_models": 0, "same_model": 0,
            "no_answer": 0, "error_answer": 0, "identity_revealed": 0, "named": 0,
            "bothbad_excluded": 0, "daily_cap": 0}


# --- simulated voters -------------------------------------------------------------------

def true_ratings(strengths):
    """The ratings of natural-log strengths on the leaderboard's scale (mean 1000)."""
    strengths = np.asarray(strengths, dtype=float)
    return 1000 + POINTS_PER_NAT * (strengths - strengths.mean())


def simulate(strengths, battles, seed, tie_rate=0.1):
    """Battles between random pairs of models m0.. with Bradley–Terry ``strengths``.

    Ties keep the expected score of each side at its win probability p (P(win) =
    p - tie_rate/2, P(tie) = tie_rate), as the half-a-win model assumes.
    """
    rng = np.random.default_rng(seed)
    size = len(strengths)
    first = rng.integers(0, size, battles)
    second = (first + rng.integers(1, size, battles)) % size
    p_first = 1 / (1 + np.exp(np.take(strengths, second) - np.take(strengths, first)))
    draw = rng.random(battles)
    outcomes = np.where(draw < p_first - tie_rate / 2, "a",
                        np.where(draw < p_first + tie_rate / 2, "tie", "b"))
    return [Battle("m%d" % a, "m%d" % b, str(o), None, True)
            for a, b, o in zip(first.tolist(), second.tolist(), outcomes.tolist())]


STRENGTHS = [0.0, 0.45, -0.35, 0.9, 0.2, -0.8]


def by_model(result):
    """{model: its row of result["models"]}."""
    return {m["model"]: m for m in result["models"]}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_fitted_order_matches_true_strengths(seed):
    result = compute_leaderboard(simulate(STRENGTHS, 4000, seed), seed=seed, resamples=200)
    assert [m["model"] for m in result["models"]] == ["m3", "m1", "m4", "m0", "m2", "m5"]


def test_intervals_cover_true_ratings_most_of_the_time():
    truth = {"m%d" % i: r for i, r in enumerate(true_ratings(STRENGTHS))}
    covered = total = 0
    for seed in range(20):
        result = compute_leaderboard(simulate(STRENGTHS, 3000, 100 + seed), seed=seed)
        for m in result["models"]:
            covered += m["ci_low"] <= truth[m["model"]] <= m["ci_high"]
            total += 1
    assert total == 120
    assert covered / total >= 0.85


def test_intervals_shrink_with_more_votes():
    few = by_model(compute_leaderboard(simulate(STRENGTHS, 500, 7), seed=1))
    many = by_model(compute_leaderboard(simulate(STRENGTHS, 8000, 7), seed=1))
    for name in few:
        # 16 times the votes: about a quarter of the width; a third at most.
        assert (many[name]["ci_high"] - many[name]["ci_low"]
                < (few[name]["ci_high"] - few[name]["ci_low"]) / 3)


def test_ratings_use_fastchat_scale_with_mean_1000():
    battles = ([Battle("strong", "weak", "a", None, True)] * 7500
               + [Battle("weak", "strong", "a", None, True)] * 2500)
    rows = by_model(compute_leaderboard(battles, resamples=0))
    # Three wins per loss: 400 * log10(3) = 190.85 points apart, centred on 1000.
    assert rows["strong"]["rating"] == pytest.approx(1095.42, abs=0.05)
    assert rows["weak"]["rating"] == pytest.approx(904.58, abs=0.05)
    assert rows["strong"]["ci_low"] is None


def test_ties_count_half_a_win_each():
    battles = ([Battle("x", "y", "a", None, True)] * 10 + [Battle("x", "y", "b", None, True)] * 10
               + [Battle("x", "y", "tie", None, True)] * 15
               + [Battle("y", "x", "bothbad", None, True)] * 5)
    result = compute_leaderboard(battles, resamples=0)
    rows = by_model(result)
    assert (rows["x"]["rating"], rows["y"]["rating"]) == (1000.0, 1000.0)
    assert (rows["x"]["wins"], rows["x"]["losses"], rows["x"]["ties"], rows["x"]["bothbad"]) == (
        10, 10, 20, 5)
    assert result["win_rates"]["x"]["y"] == {"share": 0.5, "battles": 40}


def test_same_seed_same_result_other_seed_other_intervals():
    battles = simulate(STRENGTHS, 2000, 11)
    one = compute_leaderboard(battles, seed=5, now=NOW)
    assert compute_leaderboard(list(reversed(battles)), seed=5, now=NOW) == one
    other = compute_leaderboard(battles, seed=6, now=NOW)
    assert [m["rating"] for m in other["models"]] == [m["rating"] for m in one["models"]]
    assert [m["ci_low"] for m in other["models"]] != [m["ci_low"] for m in one["models"]]


def test_models_with_too_few_battles_are_listed_not_ranked():
    battles = simulate([0.0, 0.5], 200, 3) + [Battle("newcomer", "m0", "a", None, True)] * 4
    result = compute_leaderboard(battles, min_battles=10, resamples=100)
    newcomer = result["models"][-1]
    assert {k: newcomer[k] for k in ("model", "rank", "rating", "status", "battles", "wins")} == {
        "model": "newcomer", "rank": None, "rating": None, "status": "too few votes",
        "battles": 4, "wins": 4}
    ranked = [m for m in result["models"] if m["rank"]]
    assert [m["model"] for m in ranked] == ["m1", "m0"]
    # The mean of the ranked models is 1000; the newcomer does not move it.
    assert sum(m["rating"] for m in ranked) / 2 == pytest.approx(1000.0, abs=0.01)
    assert result["win_rates"]["newcomer"]["m0"] == {"share": 1.0, "battles": 4}


def test_undefeated_model_gets_a_finite_rating():
    battles = [Battle("champ", "m0", "a", None, True)] * 12 + simulate([0.0, 0.0], 100, 4)
    result = compute_leaderboard(battles, resamples=200)
    champ = result["models"][0]
    assert champ["model"] == "champ"
    assert math.isfinite(champ["rating"]) and champ["rating"] > 1300
    assert champ["ci_low"] <= champ["rating"] <= champ["ci_high"]


def test_anchor_model_gets_the_anchor_rating():
    result = compute_leaderboard(simulate(STRENGTHS, 2000, 9), anchor_model="m0",
                                 resamples=100)
    rows = by_model(result)
    assert (rows["m0"]["rating"], rows["m0"]["ci_low"], rows["m0"]["ci_high"]) == (
        1000.0, 1000.0, 1000.0)
    assert result["meta"]["anchor"] == {"model": "m0", "rating": 1000.0, "of": "model"}


def test_groups_that_never_met_are_warned_about():
    battles = simulate([0.0, 0.3], 100, 1) + [
        Battle("p", "q", o, None, True) for o in ["a", "b", "a"] * 10]
    result = compute_leaderboard(battles, resamples=0)
    assert result["meta"]["warnings"] == [
        "The ranked models fall into 2 groups that never met in a battle (m0, m1; p, q): "
        "ratings of different groups are not comparable."]


def test_models_the_plan_no_longer_has_are_warned_about():
    battles = simulate([0.0, 0.3, 0.1], 300, 2)
    meta = {"models": {"m0": {"revision": "a" * 40}, "m2": {"revision": "b" * 40}}}
    result = compute_leaderboard(battles, resamples=0, meta=meta)
    assert result["meta"]["warnings"] == [
        "Voted on but not in the lab's plan now (removed or renamed since?): m1; what was "
        "compared is unknown for them."]
    assert by_model(result)["m1"]["compared"] == {}
    # Without a model list (the offline CLI without --meta) nothing is unknown.
    assert compute_leaderboard(battles, resamples=0)["meta"]["warnings"] == []


def test_options_out_of_range_are_refused():
    with pytest.raises(ValueError, match="min_battles must be an integer >= 1, not 0"):
        compute_leaderboard([], min_battles=0)


# --- vote lines in FastChat's format ---------------------------------------------------

CONV_IDS = itertools.count(1)


def state(model, turns, offset=0, conv_id=None):
    """A ``State.dict()`` as FastChat 0.2.36 logs it: turns are (question, answer) pairs;
    each state its own conv_id (a uuid4 hex in FastChat) unless given."""
    user, assistant = ROLES.get(model, ["USER", "ASSISTANT"])
    messages = []
    for question, answer in turns:
        messages += [[user, question], [assistant, answer]]
    return {"template_name": "t", "system_message": "", "roles": [user, assistant],
            "messages": messages, "offset": offset,
            "conv_id": conv_id or "%032x" % next(CONV_IDS), "model_name": model}


def vote(kind, model_a, model_b, answer_a="Paris.", answer_b="It is Paris.", named=False,
         question="Capital of France?", tstamp=1714560000.5, login=None, ip="203.0.113.7"):
    """One vote line as gradio_block_arena_anony/_named.vote_last_response writes it (a new
    battle each call), with the page patch's ``login`` when given."""
    line = {"tstamp": tstamp, "type": kind,
            "models": [model_a, model_b] if named else ["", ""],
            "states": [state(model_a, [(question, answer_a)]),
                       state(model_b, [(question, answer_b)])],
            "ip": ip}
    if login is not None:
        line["login"] = login
    return line


def write_log(directory, lines, name="2024-05-01-conv.json", end="\n"):
    """Write JSON lines (str lines verbatim) as one FastChat log file."""
    os.makedirs(directory, exist_ok=True)
    text = "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)
                     for x in lines)
    with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
        handle.write(text + end)


def test_identity_revealing_answers_are_skipped_and_counted(tmp_path):
    write_log(str(tmp_path), [
        vote("leftvote", QWEN, BAICHUAN, answer_a="I am QWEN-7b-chat, a model."),  # own name
        vote("leftvote", QWEN, BAICHUAN, answer_a="我是通义千问。"),                 # alias
        vote("rightvote", QWEN, BAICHUAN, answer_a="B says it is Baichuan."),     # other's
        vote("leftvote", "tiny-a", "tiny-b", answer_b="As Tiny-A would say..."),  # no alias
        vote("leftvote", QWEN, BAICHUAN),                                          # counts
    ])
    log = read_vote_logs([str(tmp_path)])
    assert log.skipped == dict(NO_SKIPS, identity_revealed=4)
    assert [(b.model_a, b.model_b, b.outcome) for b in log.battles] == [(QWEN, BAICHUAN, "a")]


def test_catalogue_aliases_replace_the_defaults(tmp_path):
    write_log(str(tmp_path), [vote("leftvote", QWEN, BAICHUAN, answer_a="Alibaba built me."),
                              vote("leftvote", QWEN, BAICHUAN, answer_a="Call me QW.")])
    log = read_vote_logs([str(tmp_path)], aliases={QWEN: ["qw"]})
    assert log.skipped["identity_revealed"] == 1
    assert len(log.battles) == 1


def test_meta_aliases_reveal_and_stay_out_of_compared(tmp_path):
    write_log(str(tmp_path), [vote("leftvote", QWEN, BAICHUAN, answer_a="QW here."),
                              vote("leftvote", QWEN, BAICHUAN)])
    meta = {"models": {QWEN: {"aliases": ["qw"], "revision": "24680964"}}}
    result = build_leaderboard([str(tmp_path)], meta=meta, min_battles=1, resamples=0)
    assert (result["skipped"]["identity_revealed"], result["battles_used"]) == (1, 1)
    assert by_model(result)[QWEN]["compared"] == {"revision": "24680964"}


def test_sampling_is_summarised_from_chat_lines(tmp_path):
    chat = {"type": "chat", "model": QWEN,
            "gen_params": {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 1024}}
    odd = {"type": "chat", "model": QWEN, "gen_params": {"temperature": [0.7]}}
    write_log(str(tmp_path), [chat, chat, odd, {"type": "chat", "model": BAICHUAN}])
    result = build_leaderboard([str(tmp_path)])
    assert result["meta"]["sampling"] == {QWEN: [
        {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 1024, "chats": 2}]}


def test_named_votes_are_left_out_unless_asked_for(tmp_path):
    write_log(str(tmp_path), [vote("leftvote", QWEN, BAICHUAN, named=True,
                                   answer_a="I am Qwen."),
                              vote("tievote", QWEN, BAICHUAN)])
    anonymous_only = read_vote_logs([str(tmp_path)])
    assert (anonymous_only.skipped["named"], len(anonymous_only.battles)) == (1, 1)
    assert [(b.model_a, b.outcome) for b in anonymous_only.named] == [(QWEN, "a")]
    both = read_vote_logs([str(tmp_path)], include_named=True)
    assert both.skipped == NO_SKIPS
    assert [(b.outcome, b.anonymous) for b in both.battles] == [("a", False), ("tie", True)]


def test_bad_lines_are_counted_never_fatal(tmp_path):
    no_states = vote("leftvote", QWEN, BAICHUAN)
    del no_states["states"]
    short_states = vote("leftvote", QWEN, BAICHUAN)
    short_states["states"] = short_states["states"][:1]
    no_model_name = vote("leftvote", QWEN, BAICHUAN)
    del no_model_name["states"][1]["model_name"]
    half_named = vote("leftvote", QWEN, BAICHUAN)
    half_named["models"] = [QWEN, ""]
    wrong_name = vote("leftvote", QWEN, BAICHUAN, named=True)
    wrong_name["models"] = [QWEN, "Other-Model"]
    pending = vote("leftvote", QWEN, BAICHUAN, answer_b=None)
    write_log(str(tmp_path), [
        "{not json", "[1, 2]", {"type": "leftvote", "models": "nope"}, '"text"',
        no_states, short_states, no_model_name,
        half_named, wrong_name,
        vote("tievote", QWEN, QWEN),
        pending,
        vote("leftvote", QWEN, BAICHUAN, answer_a="**NETWORK ERROR DUE TO HIGH TRAFFIC. "
             "PLEASE REGENERATE OR REFRESH THIS PAGE.**\n\n(error_code: 50001)"),
        {"type": "upvote", "model": QWEN},
        vote("rightvote", QWEN, BAICHUAN),
    ])
    log = read_vote_logs([str(tmp_path)])
    assert log.skipped == dict(NO_SKIPS, malformed=4, missing_states=3, invalid_models=2,
                               same_model=1, no_answer=1, error_answer=1)
    assert [(b.model_a, b.outcome) for b in log.battles] == [(QWEN, "b")]
    assert (log.lines, log.votes_seen) == (14, 10)


def test_cut_last_line_counts_as_truncated(tmp_path):
    line = json.dumps(vote("leftvote", QWEN, BAICHUAN))
    write_log(str(tmp_path), [vote("tievote", QWEN, BAICHUAN), line[:40]], end="")
    log = read_vote_logs([str(tmp_path)])
    assert (log.skipped["truncated"], log.skipped["malformed"], len(log.battles)) == (1, 0, 1)


def test_bothbad_is_a_tie_or_left_out(tmp_path):
    write_log(str(tmp_path), [vote("bothbad_vote", QWEN, BAICHUAN),
                              vote("leftvote", QWEN, BAICHUAN)])
    as_tie = build_leaderboard([str(tmp_path)], min_battles=1, resamples=0)
    assert by_model(as_tie)[QWEN]["ties"] == 1 and as_tie["battles_used"] == 2
    left_out = build_leaderboard([str(tmp_path)], min_battles=1, resamples=0,
                                 bothbad="exclude")
    assert (left_out["battles_used"], left_out["skipped"]["bothbad_excluded"]) == (1, 1)
    assert by_model(left_out)[QWEN]["ties"] == 0


def test_missing_log_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="log directory %s does not exist"
                       % str(tmp_path / "nope")):
        read_vote_logs([str(tmp_path / "nope")])


# --- the real lines FastChat wrote -----------------------------------------------------

def test_real_fastchat_votes_are_read_as_fastchat_meant_them():
    result = build_leaderboard([REAL_VOTES], min_battles=1, now=NOW)
    assert result["battles_used"] == 5
    assert result["skipped"] == dict(NO_SKIPS, identity_revealed=2, named=1)
    rows = by_model(result)
    assert {k: rows[QWEN][k] for k in ("rank", "battles", "wins", "losses", "ties",
                                       "bothbad", "win_rate")} == {
        "rank": 1, "battles": 5, "wins": 2, "losses": 1, "ties": 2, "bothbad": 1,
        "win_rate": 0.6}
    # 3 of 5 points: 3 - 5 * sigmoid(d) = 0.1 * d / 2 gives d = 0.3893 nats = 67.6 points.
    assert rows[QWEN]["rating"] == pytest.approx(1033.81, abs=0.01)
    assert rows[BAICHUAN]["rating"] == pytest.approx(966.19, abs=0.01)
    assert rows[QWEN]["ci_low"] < rows[QWEN]["rating"] < rows[QWEN]["ci_high"]
    assert result["meta"]["named_votes"]["battles"] == 1
    assert rows[QWEN]["compared"]["sampling"] == [
        {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 1024, "chats": 7},
        {"temperature": 0.3, "top_p": 0.9, "max_new_tokens": 512, "chats": 2}]


def test_real_named_vote_counts_when_asked_for():
    result = build_leaderboard([REAL_VOTES], min_battles=1, include_named=True, resamples=0)
    assert (result["battles_used"], result["skipped"]["named"]) == (6, 0)
    assert by_model(result)[QWEN]["wins"] == 3


def test_real_log_cut_mid_line_still_reads(tmp_path):
    (source,) = glob.glob(os.path.join(REAL_VOTES, "*-conv.json"))
    with open(source, "rb") as handle:
        data = handle.read()
    # The last line is the named vote; cut it in the middle, as a write in progress.
    last_start = data.rstrip(b"\n").rfind(b"\n") + 1
    (tmp_path / os.path.basename(source)).write_bytes(data[:last_start + 300])
    log = read_vote_logs([str(tmp_path)])
    assert (log.skipped["truncated"], log.skipped["named"], len(log.battles)) == (1, 0, 5)


# --- no votes, rendering, the command ---------------------------------------------------

def test_no_votes_is_a_result_not_an_error(tmp_path):
    result = build_leaderboard([str(tmp_path)], now=NOW)
    assert (result["models"], result["battles_used"], result["win_rates"]) == ([], 0, {})
    assert result["generated_at"] == "2024-05-01T12:00:00+00:00"
    paths = write_leaderboard(result, str(tmp_path / "out"))
    with open(paths["leaderboard.html"], encoding="utf-8") as handle:
        assert "<h2>No votes yet</h2>" in handle.read()
    assert render_csv(result) == ("rank,model,rating,ci_low,ci_high,battles,wins,losses,ties,"
                                  "bothbad,win_rate,status\n")
    with open(paths["leaderboard.png"], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_printed_table():
    battles = ([Battle("alpha", "beta", "a", None, True)] * 30
               + [Battle("alpha", "beta", "b", None, True)] * 10
               + [Battle("gamma", "alpha", "tie", None, True)] * 2)
    result = compute_leaderboard(battles, resamples=0, min_battles=10,
                                 skipped={"named": 2})
    assert format_table(result) == "\n".join([
        "rank | model | rating | 95% CI        | battles | wins | losses | ties",
        "-----+-------+--------+---------------+---------+------+--------+-----",
        "1    | alpha | 1095   | -             | 42      | 30   | 10     | 2",
        "2    | beta  | 905    | -             | 40      | 10   | 30     | 0",
        "-    | gamma | -      | too few votes | 2       | 0    | 0      | 2",
        "",
        "battles used: 42 (min battles to rank: 10); skipped: named 2"])


def test_html_page_is_self_contained_and_escapes_names():
    battles = simulate([0.0, 0.4], 300, 2) + [
        Battle("<b>evil</b>", "m0", "a", None, True)] * 12
    page = render_html(compute_leaderboard(battles, resamples=100,
                                           meta={"title": "Lab arena", "fastchat_ref": "v1"}))
    assert "<h1>Lab arena</h1>" in page and "Lab: fastchat_ref: v1." in page
    assert page.count("<svg") == 2
    assert "&lt;b&gt;evil&lt;/b&gt;" in page and "<b>evil</b>" not in page
    assert "<script" not in page and "src=" not in page and "href=" not in page


def test_nice_ticks_cover_the_range():
    assert nice_ticks(903.2, 1097.9) == [900.0, 950.0, 1000.0, 1050.0, 1100.0]


def run_cli(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          check=False)


def test_cli_writes_all_four_files(tmp_path):
    logs = tmp_path / "logs"
    lines = [vote(kind, *pair) for kind, pair in
             [("leftvote", (QWEN, BAICHUAN))] * 8 + [("rightvote", (BAICHUAN, QWEN))] * 4
             + [("leftvote", (BAICHUAN, QWEN))] * 3 + [("tievote", (QWEN, BAICHUAN))] * 2]
    write_log(str(logs), lines)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"fastchat_ref": "v0.2.36", "models": {
        QWEN: {"revision": "24680964", "image": "fastchat-lab/fastchat:cuda117-x"}}}))
    out = tmp_path / "out"
    done = run_cli("--logs", str(logs), "--out", str(out), "--seed", "3", "--resamples",
                   "300", "--meta", str(meta), "--fastchat-tab", str(out / "fastchat"))
    assert done.returncode == 0, done.stderr
    # 13 of 17 points: 13 - 17 * sigmoid(d) = 0.1 * d / 2, d = 1.17 nats = 203 points.
    assert done.stdout.splitlines()[2].startswith("1    | Qwen-7B-Chat      | 1101")
    assert sorted(os.listdir(out)) == ["fastchat", "leaderboard.csv", "leaderboard.html",
                                       "leaderboard.json", "leaderboard.png"]
    result = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    assert (result["battles_used"], result["meta"]["resamples"], result["meta"]["seed"]) == (
        17, 300, 3)
    assert result["meta"]["lab"] == {"fastchat_ref": "v0.2.36"}
    assert by_model(result)[QWEN]["compared"] == {"revision": "24680964",
                                                  "image": "fastchat-lab/fastchat:cuda117-x"}
    rows = list(csv.DictReader(io.StringIO((out / "leaderboard.csv").read_text())))
    assert [(r["rank"], r["model"], r["wins"]) for r in rows] == [("1", QWEN, "12"),
                                                                  ("2", BAICHUAN, "3")]
    assert (out / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(os.listdir(out / "fastchat")) == ["elo_results.pkl", "leaderboard_table.csv"]


def test_cli_no_votes_exits_0(tmp_path):
    done = run_cli("--logs", str(tmp_path), "--out", str(tmp_path / "out"))
    assert (done.returncode, done.stdout.splitlines()[0]) == (0, "no votes yet")


def test_cli_missing_log_directory_exits_2(tmp_path):
    done = run_cli("--logs", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr == ("scripts/leaderboard: log directory %s does not exist or is not a "
                           "directory\n" % (tmp_path / "missing"))


# --- FastChat's Leaderboard tab ---------------------------------------------------------

def read_closed(path):
    """open() for FastChat's loader, which never closes its file: the text, file closed."""
    with open(path, encoding="utf-8") as handle:
        return io.StringIO(handle.read())


def fastchat_csv_loader():
    """FastChat 0.2.36's own load_leaderboard_table_csv, taken from monitor.py by source.

    monitor.py imports gradio at its top, which the control node lacks; the function
    itself needs only ast and numpy (and open, given one that closes the file).
    """
    spec = importlib.util.find_spec("fastchat")
    path = os.path.join(os.path.dirname(spec.origin), "serve", "monitor", "monitor.py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    wanted = [n for n in tree.body if isinstance(n, ast.FunctionDef)
              and n.name in ("load_leaderboard_table_csv", "model_hyperlink")]
    namespace = {"ast": ast, "np": np, "open": read_closed}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), path, "exec"), namespace)
    return namespace["load_leaderboard_table_csv"]


class FrameCall:
    """Stands in for pandas.DataFrame while unpickling: keeps its arguments."""

    def __init__(self, data, index):
        self.data, self.index = data, index


class TabUnpickler(pickle.Unpickler):
    """Allows only pandas.DataFrame, as FrameCall."""

    def find_class(self, module, name):
        if (module, name) == ("pandas", "DataFrame"):
            return FrameCall
        raise pickle.UnpicklingError("unexpected global %s.%s" % (module, name))


def tab_result():
    battles = simulate([0.0, 0.5], 300, 5) + [Battle("newcomer", "m0", "a", None, True)] * 3
    meta = {"models": {"m1": {"display_name": "Model One", "organization": "Lab, Inc.",
                              "license": "Apache 2.0", "link": "https://example.org/m1"}}}
    return compute_leaderboard(battles, meta=meta, resamples=200, now=NOW)


def test_fastchat_table_loads_with_fastchat_loader(tmp_path):
    result = tab_result()
    path = tmp_path / "leaderboard_table.csv"
    path.write_text(fastchat_leaderboard_table(result), encoding="utf-8")
    rows = fastchat_csv_loader()(str(path), add_hyperlink=False)
    assert [(r["key"], r["Model"], r["Arena Elo rating"], r["Organization"], r["Link"])
            for r in rows] == [
        ("m1", "Model One", round(result["models"][0]["rating"]), "Lab Inc.",
         "https://example.org/m1"),
        ("m0", "m0", round(result["models"][1]["rating"]), "-", "#"),
        ("newcomer", "newcomer", rows[2]["Arena Elo rating"], "-", "#")]
    assert math.isnan(rows[2]["Arena Elo rating"]) and math.isnan(rows[0]["MMLU"])


def test_fastchat_elo_results_pickle_has_what_the_tab_reads(tmp_path):
    result = tab_result()
    paths = write_fastchat_leaderboard(result, str(tmp_path))
    with open(paths["elo_results.pkl"], "rb") as handle:
        loaded = TabUnpickler(handle).load()
    assert sorted(loaded) == ["average_win_rate_bar", "battle_count_heatmap",
                              "bootstrap_elo_rating", "elo_rating_final",
                              "last_updated_datetime", "leaderboard_table",
                              "leaderboard_table_df", "rating_system", "win_fraction_heatmap"]
    assert loaded["win_fraction_heatmap"] is None and loaded["rating_system"] == "bt"
    frame = loaded["leaderboard_table_df"]
    # Ranked models only: every one has a CSV row; the newcomer is in the CSV alone.
    assert frame.index == ["m1", "m0"]
    first = result["models"][0]
    assert {k: v[0] for k, v in frame.data.items() if k != "variance"} == {
        "rating": first["rating"], "rating_q975": first["ci_high"],
        "rating_q025": first["ci_low"], "num_battles": first["battles"]}


def test_fastchat_table_refuses_a_model_name_with_a_comma():
    result = compute_leaderboard([Battle("a,b", "c", "a", None, True)] * 10, resamples=0)
    with pytest.raises(ValueError, match="model name 'a,b' cannot be written"):
        fastchat_leaderboard_table(result)


def test_fastchat_files_for_no_votes(tmp_path):
    result = compute_leaderboard([], now=NOW)
    assert fastchat_leaderboard_table(result) == (
        "key,Model,Arena Elo rating,MT-bench (score),MMLU,Organization,License,Link\n")
    loaded = TabUnpickler(io.BytesIO(fastchat_elo_results(result))).load()
    assert (loaded["leaderboard_table_df"].index, loaded["leaderboard_table_df"].data["rating"],
            loaded["last_updated_datetime"]) == ([], [], "2024-05-01T12:00:00+00:00")


# --- one vote per battle ------------------------------------------------------------------

def test_a_vote_line_written_50_times_counts_once(tmp_path):
    stuffed = json.dumps(vote("leftvote", QWEN, BAICHUAN))
    write_log(str(tmp_path), [stuffed] * 50 + [vote("rightvote", QWEN, BAICHUAN)])
    result = build_leaderboard([str(tmp_path)], min_battles=1, resamples=0, now=NOW)
    assert result["battles_used"] == 2
    assert result["skipped"] == dict(NO_SKIPS, duplicate_vote=49)
    assert (by_model(result)[QWEN]["wins"], by_model(result)[QWEN]["losses"]) == (1, 1)
    assert format_table(result).splitlines()[-1] == (
        "battles used: 2 (min battles to rank: 1); skipped: duplicate_vote 49")
    assert "Votes not counted: duplicate_vote 49." in render_html(result)


def test_a_replay_with_another_vote_type_address_or_time_is_the_same_battle(tmp_path):
    first = vote("leftvote", QWEN, BAICHUAN, tstamp=1714560000.5)
    replays = []
    for kind, ip, tstamp in [("rightvote", "198.51.100.9", 1714560100.0),
                             ("tievote", "203.0.113.7", 1714560200.0),
                             ("bothbad_vote", None, 1714563600.0)]:
        replays.append(dict(first, type=kind, ip=ip, tstamp=tstamp))
    # The replays are read first (another log directory) but were cast later.
    write_log(str(tmp_path / "a"), replays)
    write_log(str(tmp_path / "b"), [first])
    log = read_vote_logs([str(tmp_path / "a"), str(tmp_path / "b")])
    assert [(b.model_a, b.outcome, b.tstamp) for b in log.battles] == [
        (QWEN, "a", 1714560000.5)]
    assert log.skipped == dict(NO_SKIPS, duplicate_vote=3)


def test_one_login_voting_in_many_battles_has_each_counted(tmp_path):
    # Same login, address, models, question and answers: only the conversations differ.
    write_log(str(tmp_path), [vote("leftvote", QWEN, BAICHUAN, login="alice")
                              for _ in range(12)])
    log = read_vote_logs([str(tmp_path)])
    assert (len(log.battles), log.skipped) == (12, NO_SKIPS)


def test_the_first_vote_of_a_battle_decides_even_when_it_does_not_count(tmp_path):
    # Voted before side B had answered (only through the API: the page waits), then
    # voted again once it had: the battle has had its vote.
    early = vote("leftvote", QWEN, BAICHUAN, answer_b=None, tstamp=1714560000.0)
    late = copy.deepcopy(early)
    late["states"][1]["messages"][1][1] = "It is Paris."
    late["tstamp"] = 1714560005.0
    write_log(str(tmp_path), [early, late])
    log = read_vote_logs([str(tmp_path)])
    assert (log.battles, log.skipped) == ([], dict(NO_SKIPS, no_answer=1, duplicate_vote=1))


def test_real_fastchat_vote_replayed_50_times_counts_once(tmp_path):
    (source,) = glob.glob(os.path.join(REAL_VOTES, "*-conv.json"))
    with open(source, "rb") as handle:
        lines = handle.read().splitlines(keepends=True)
    first_vote = next(line for line in lines if b'"type": "leftvote"' in line)
    (tmp_path / os.path.basename(source)).write_bytes(b"".join(lines) + first_vote * 50)
    result = build_leaderboard([str(tmp_path)], min_battles=1, resamples=0, now=NOW)
    assert result["battles_used"] == 5
    assert result["skipped"] == dict(NO_SKIPS, identity_revealed=2, named=1,
                                     duplicate_vote=50)
    assert by_model(result)[QWEN]["wins"] == 2


# --- logins and the daily cap ---------------------------------------------------------------

DAY = 1714521600  # 2024-05-01T00:00:00Z


def test_votes_per_login_are_reported_addresses_only_counted(tmp_path):
    alice = vote("leftvote", QWEN, BAICHUAN, login="alice", ip="198.51.100.1")
    write_log(str(tmp_path), [
        alice, alice, vote("tievote", QWEN, BAICHUAN, login="alice"),
        vote("leftvote", QWEN, BAICHUAN, login="bob", answer_a="I am Qwen."),
        vote("leftvote", QWEN, BAICHUAN, login=None, ip="198.51.100.2"),
        dict(vote("rightvote", QWEN, BAICHUAN, ip="198.51.100.3"), login=None),
        dict(vote("rightvote", QWEN, BAICHUAN, ip="198.51.100.3"), login=""),
    ])
    result = build_leaderboard([str(tmp_path)], min_battles=1, resamples=0, now=NOW)
    assert result["meta"]["voters"] == {
        "logins": {"alice": {"votes": 3, "counted": 2, "duplicate_vote": 1},
                   "bob": {"votes": 1, "counted": 0, "identity_revealed": 1}},
        "without_login": {"votes": 3, "counted": 3, "addresses": 2}}
    assert "198.51.100" not in render_json(result)
    assert "alice" not in render_html(result)


@pytest.mark.parametrize("login", [7, ["alice"], {"name": "alice"}, True, "a" * 129,
                                   "ali\nce", "ali\x00ce", "\ud800"])
def test_a_login_that_is_no_login_name_is_malformed(tmp_path, login):
    # json.dumps escapes what UTF-8 cannot carry (a lone surrogate), as FastChat does.
    write_log(str(tmp_path), [json.dumps(vote("leftvote", QWEN, BAICHUAN, login=login)),
                              vote("leftvote", QWEN, BAICHUAN, login="alice")])
    log = read_vote_logs([str(tmp_path)])
    assert (len(log.battles), log.skipped) == (1, dict(NO_SKIPS, malformed=1))
    assert list(log.logins) == ["alice"]


def test_daily_cap_counts_the_first_votes_of_each_login_per_utc_day(tmp_path):
    def at(login, seconds, **kwargs):
        return vote("leftvote", QWEN, BAICHUAN, login=login, tstamp=DAY + seconds, **kwargs)

    repeated = at("alice", 60)
    write_log(str(tmp_path), [
        repeated, repeated, repeated,                        # one battle: uses one vote
        at("alice", 120, answer_a="Qwen here."),             # not counted: uses none
        at("alice", 3600), at("alice", 86399.9),             # the second counts, not the third
        at("alice", 86400), at("alice", 86401),              # the next UTC day
        at("bob", 100), at("bob", 200),                      # bob has his own cap
    ])
    log = read_vote_logs([str(tmp_path)], daily_cap=2)
    assert log.skipped == dict(NO_SKIPS, duplicate_vote=2, identity_revealed=1, daily_cap=1)
    counted = sorted(b.tstamp - DAY for b in log.battles)
    assert counted == [60, 100, 200, 3600, 86400, 86401]
    assert log.logins["alice"]["daily_cap"] == 1


def test_votes_without_a_login_are_capped_by_their_address(tmp_path):
    lines = [vote("leftvote", QWEN, BAICHUAN, ip="198.51.100.1", tstamp=DAY + n)
             for n in range(3)]
    lines += [vote("leftvote", QWEN, BAICHUAN, ip="198.51.100.2", tstamp=DAY + 10)]
    # The same address with a login is that login's, not the address's.
    lines += [vote("leftvote", QWEN, BAICHUAN, ip="198.51.100.1", login="carol",
                   tstamp=DAY + 20)]
    # Neither a login nor an address: one cap for all of them.
    lines += [vote("leftvote", QWEN, BAICHUAN, ip=ip, tstamp=DAY + 30 + n)
              for n, ip in enumerate([None, 5, ""])]
    write_log(str(tmp_path), lines)
    log = read_vote_logs([str(tmp_path)], daily_cap=1)
    assert sorted(b.tstamp - DAY for b in log.battles) == [0, 10, 20, 30]
    assert log.skipped == dict(NO_SKIPS, daily_cap=4)


@pytest.mark.parametrize("cap", [0, None])
def test_no_daily_cap_counts_every_battle(tmp_path, cap):
    write_log(str(tmp_path), [vote("leftvote", QWEN, BAICHUAN, login="alice")
                              for _ in range(30)])
    result = build_leaderboard([str(tmp_path)], resamples=0, daily_cap=cap)
    assert (result["battles_used"], result["meta"]["daily_cap"]) == (30, 0)


@pytest.mark.parametrize("cap", [-1, True, 2.5, "3"])
def test_a_bad_daily_cap_is_refused(tmp_path, cap):
    with pytest.raises(ValueError, match=r"daily_cap must be a whole number >= 0 \(0: no "
                                         r"cap\), not "):
        build_leaderboard([str(tmp_path)], daily_cap=cap)


def test_cli_daily_cap(tmp_path):
    logs = tmp_path / "logs"
    write_log(str(logs), [vote("leftvote", QWEN, BAICHUAN, login="alice") for _ in range(5)])
    done = run_cli("--logs", str(logs), "--out", str(tmp_path / "out"), "--daily-cap", "2",
                   "--resamples", "0", "--no-png")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "out" / "leaderboard.json").read_text(encoding="utf-8"))
    assert (result["battles_used"], result["skipped"]["daily_cap"],
            result["meta"]["daily_cap"]) == (2, 3, 2)
    assert "One vote counts per battle, however often it was cast; at most 2 per login" in (
        tmp_path / "out" / "leaderboard.html").read_text(encoding="utf-8")
    uncapped = run_cli("--logs", str(logs), "--out", str(tmp_path / "all"), "--daily-cap", "",
                       "--resamples", "0", "--no-png")
    assert uncapped.returncode == 0, uncapped.stderr
    assert json.loads((tmp_path / "all" / "leaderboard.json").read_text())["battles_used"] == 5


def test_cli_bad_daily_cap_exits_2(tmp_path):
    done = run_cli("--logs", str(tmp_path), "--out", str(tmp_path / "out"), "--daily-cap",
                   "5; rm -rf /")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "scripts/leaderboard: --daily-cap: '5; rm -rf /' is not a whole number. Fix: set it "
        "to the most votes one login may have counted per UTC day (e.g. 50), or 0 for no "
        "cap.\n")
    assert not (tmp_path / "out").exists()


# --- the role's settings and the backups' retention -----------------------------------------

def test_settings_take_counts_and_mean_no_cap_when_empty():
    assert leaderboard_settings(None, 30) == {"daily_cap": 0, "keep_backups": 30,
                                              "problems": []}
    assert leaderboard_settings("", "0") == {"daily_cap": 0, "keep_backups": 0, "problems": []}
    assert leaderboard_settings(" 50 ", 1000000) == {"daily_cap": 50, "keep_backups": 1000000,
                                                     "problems": []}
    # A trailing newline (a value from a file or a YAML block) is white space too.
    assert leaderboard_settings("5\n", 1)["daily_cap"] == 5


@pytest.mark.parametrize("value, what", [
    (-1, "-1 is not between 0 and 1000000"),
    (1000001, "1000001 is not between 0 and 1000000"),
    (10 ** 300, "1%s... is not between 0 and 1000000" % ("0" * 36)),
    (True, "True is not a whole number"),
    (2.5, "2.5 is not a whole number"),
    (float("nan"), "nan is not a whole number"),
    ("1e3", "'1e3' is not a whole number"),
    ("-5", "'-5' is not a whole number"),
    ("5; rm -rf /", "'5; rm -rf /' is not a whole number"),
    ([5], "[5] is not a whole number"),
])
def test_bad_settings_are_refused_with_the_variable_and_a_fix(value, what):
    assert leaderboard_settings(value, value)["problems"] == [
        "all: lab_leaderboard_daily_cap: %s. Fix: set it to the most votes one login may "
        "have counted per UTC day (e.g. 50), or 0 for no cap." % what,
        "all: lab_leaderboard_keep_backups: %s. Fix: set it to how many of the newest "
        "backups to keep on the control node (e.g. 30), or 0 to keep every one." % what]


def backup(stamp):
    return "/srv/lb/backups/fastchat-lab-logs-%s.tar.gz" % stamp


def test_retention_removes_all_but_the_newest_backups_by_their_names():
    stamps = ["20240503T000000Z", "20240501T120000Z", "20241231T235959Z", "20240502T000000Z"]
    others = ["/srv/lb/backups/notes.txt", "/srv/lb/backups/fastchat-lab-logs-old.tar.gz",
              backup("20230101T000000Z") + ".part", "/srv/lb/backups/mine.tar.gz"]
    paths = [backup(s) for s in stamps] + others
    assert backups_to_remove(paths, 2) == [backup("20240501T120000Z"),
                                           backup("20240502T000000Z")]
    assert backups_to_remove(paths, 4) == []
    assert backups_to_remove(paths, 0) == []
    assert backups_to_remove(others, 1) == []
    with pytest.raises(ValueError, match="keep must be a whole number from 0 to 1000000"):
        backups_to_remove(paths, -1)


def test_the_role_filters_are_the_settings_functions():
    from ansible_collections.fastchat_lab.lab.plugins.filter.leaderboard import FilterModule
    filters = FilterModule().filters()
    assert filters["leaderboard_settings"]({"daily_cap": "", "keep_backups": 3}) == {
        "daily_cap": 0, "keep_backups": 3, "problems": []}
    assert filters["leaderboard_backups_to_remove"](
        [backup("20240101T000000Z"), backup("20240102T000000Z")], 1) == [
        backup("20240101T000000Z")]


def test_the_role_documents_and_checks_every_variable():
    role = os.path.join(ROOT, "roles", "lab_leaderboard")
    with open(os.path.join(role, "defaults", "main.yml"), encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert (defaults["lab_leaderboard_daily_cap"], defaults["lab_leaderboard_keep_backups"]) == (
        0, 30)
    for name in ("lab_leaderboard_daily_cap", "lab_leaderboard_keep_backups"):
        assert options[name]["default"] == defaults[name]
    assert leaderboard_settings(defaults["lab_leaderboard_daily_cap"],
                                defaults["lab_leaderboard_keep_backups"])["problems"] == []


def test_the_leaderboard_output_directory_is_git_ignored():
    with open(os.path.join(ROOT, ".gitignore"), encoding="utf-8") as handle:
        assert "/leaderboard/" in handle.read().splitlines()


def test_model_names_are_the_planners():
    assert leaderboard_logs.MODEL_NAME_RE.pattern == grammar.MODEL_NAME_RE.pattern


# --- hostile lines: every one counted, none fatal ----------------------------------------------

def with_field(path, value):
    """A good vote (its own battle) with the field at ``path`` set (or deleted: DELETE)."""
    line = vote("leftvote", QWEN, BAICHUAN)
    *parents, last = path
    target = line
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return json.dumps(line)


DELETE = object()
DEEP = "[" * 100000 + "]" * 100000
HOSTILE = [
    # time stamps out of range or of the wrong type
    (with_field(["tstamp"], 1e300), "bad_tstamp"),
    (with_field(["tstamp"], -1e300), "bad_tstamp"),
    (with_field(["tstamp"], -1), "bad_tstamp"),
    (with_field(["tstamp"], 10 ** 40), "bad_tstamp"),
    (with_field(["tstamp"], 253402300800), "bad_tstamp"),
    (with_field(["tstamp"], "1714560000.5"), "bad_tstamp"),
    (with_field(["tstamp"], True), "bad_tstamp"),
    (with_field(["tstamp"], None), "bad_tstamp"),
    (with_field(["tstamp"], [1714560000.5]), "bad_tstamp"),
    (with_field(["tstamp"], DELETE), "bad_tstamp"),
    (with_field(["tstamp"], 1.0).replace('"tstamp": 1.0', '"tstamp": NaN'), "bad_tstamp"),
    (with_field(["tstamp"], 1.0).replace('"tstamp": 1.0', '"tstamp": -Infinity'), "bad_tstamp"),
    (with_field(["tstamp"], 1.0).replace('"tstamp": 1.0', '"tstamp": 1e400'), "bad_tstamp"),
    # nesting past the parser, numbers past int()
    (DEEP, "malformed"),
    ('{"type": "leftvote", "states": %s}' % DEEP, "malformed"),
    ("[" * 100000, "malformed"),
    ('{"type": "leftvote", "tstamp": %s}' % ("9" * 5000), "malformed"),
    # model names the lab cannot have
    (with_field(["states", 0, "model_name"], "Qwen,7B"), "invalid_models"),
    (with_field(["states", 0, "model_name"], "Qwen\n7B"), "invalid_models"),
    (with_field(["states", 0, "model_name"], "Qwen-7B-Chat\n"), "invalid_models"),
    (with_field(["states", 0, "model_name"], "Qwen\x1b[31m"), "invalid_models"),
    (with_field(["states", 0, "model_name"], "$\\frac{a}{$"), "invalid_models"),
    (with_field(["states", 0, "model_name"], "../../etc"), "invalid_models"),
    (with_field(["states", 0, "model_name"], "x" * 65), "invalid_models"),
    (with_field(["models"], ["a,b", "c\nd"]), "invalid_models"),
    # states of the wrong shape or types
    (with_field(["states"], "two states"), "missing_states"),
    (with_field(["states"], [1, 2]), "missing_states"),
    (with_field(["states"], [{}, {}, {}]), "missing_states"),
    (with_field(["states", 0, "messages"], "Paris"), "missing_states"),
    (with_field(["states", 0, "offset"], "0"), "missing_states"),
    (with_field(["states", 0, "offset"], -1), "missing_states"),
    (with_field(["states", 0, "offset"], True), "missing_states"),
    (with_field(["states", 0, "offset"], 1.5), "missing_states"),
    (with_field(["states", 0, "conv_id"], 7), "missing_states"),
    (with_field(["states", 0, "conv_id"], ""), "missing_states"),
    (with_field(["states", 1, "conv_id"], DELETE), "missing_states"),
    (with_field(["states", 0, "model_name"], 42), "missing_states"),
    (with_field(["states", 0, "offset"], 10 ** 30), "no_answer"),
    (with_field(["states", 0, "messages"], [[1, 2, 3], "x", None, [None, None]]), "no_answer"),
    (with_field(["states", 0, "messages", 1], ["<|im_start|>assistant", {"text": 1}]),
     "no_answer"),
    # the rest of the line
    (with_field(["models"], "nope"), "malformed"),
    (with_field(["models"], [None, None]), "malformed"),
    (with_field(["login"], 12), "malformed"),
    ('"a string"', "malformed"),
    ("null", "malformed"),
    ("1e999", "malformed"),
    ('{"type": 5}', "malformed"),
    ("{\"type\": \"leftvote\"}", "malformed"),
    ("\x00\x01\x02", "malformed"),
    ("\ufeff" + json.dumps(vote("leftvote", QWEN, BAICHUAN)), "malformed"),
]


@pytest.mark.parametrize("line, reason", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_line_is_counted_under_its_reason(tmp_path, line, reason):
    write_log(str(tmp_path), [vote("leftvote", QWEN, BAICHUAN), line,
                              vote("rightvote", QWEN, BAICHUAN)])
    result = build_leaderboard([str(tmp_path)], min_battles=1, resamples=0, now=NOW)
    assert (result["battles_used"], result["skipped"]) == (2, dict(NO_SKIPS, **{reason: 1}))
    assert result["meta"]["lines"] == 3
    written = write_leaderboard(result, str(tmp_path / "out"), png=False)
    write_fastchat_leaderboard(result, str(tmp_path / "tab"))
    with open(written["leaderboard.json"], encoding="utf-8") as handle:
        assert json.load(handle, parse_constant=reject_constant)["battles_used"] == 2


def reject_constant(name):
    raise AssertionError("leaderboard.json holds %s, which is not JSON" % name)


def test_a_vote_at_the_end_of_time_counts_and_shows(tmp_path):
    write_log(str(tmp_path), [vote("leftvote", QWEN, BAICHUAN, tstamp=253402300799.99997),
                              vote("leftvote", QWEN, BAICHUAN, tstamp=0)])
    result = build_leaderboard([str(tmp_path)], min_battles=1, resamples=0, now=NOW)
    assert (result["meta"]["first_vote"], result["meta"]["last_vote"]) == (
        "1970-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00")


def test_sampling_values_that_are_not_numbers_are_left_out(tmp_path):
    def chat(**params):
        return {"type": "chat", "model": QWEN,
                "gen_params": dict({"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 512},
                                   **params)}
    lines = [chat(), json.dumps(chat(temperature=1.0)).replace("1.0", "NaN", 1),
             json.dumps(chat(top_p=1.0)).replace('"top_p": 1.0', '"top_p": Infinity'),
             chat(max_new_tokens=10 ** 40), chat(temperature="hot"), chat(top_p=True),
             dict(chat(), model="Qwen,7B"), dict(chat(), model="\ud800")]
    write_log(str(tmp_path), [json.dumps(x) if isinstance(x, dict) else x for x in lines])
    result = build_leaderboard([str(tmp_path)])
    assert result["meta"]["sampling"] == {QWEN: [
        {"temperature": 0.7, "top_p": 1.0, "max_new_tokens": 512, "chats": 1}]}
    assert (result["meta"]["other_lines"], sum(result["skipped"].values())) == (8, 0)
    json.loads(render_json(result), parse_constant=reject_constant)


def test_files_that_are_not_utf8_empty_or_not_files(tmp_path):
    good = json.dumps(vote("leftvote", QWEN, BAICHUAN), ensure_ascii=False)
    (tmp_path / "2024-05-01-conv.json").write_bytes(
        good.replace("Paris.", "Paris é.").encode("latin-1") + b"\n" + good.encode() + b"\n")
    (tmp_path / "2024-05-02-conv.json").write_bytes(
        (good + "\n").encode("utf-16") + b"\n")
    (tmp_path / "2024-05-03-conv.json").write_bytes(b"")
    (tmp_path / "2024-05-04-conv.json").write_bytes(b"\n  \n\r\n")
    (tmp_path / "2024-05-05-conv.json").mkdir()
    os.mkfifo(tmp_path / "2024-05-06-conv.json")
    log = read_vote_logs([str(tmp_path)])
    assert len(log.files) == 4
    assert (len(log.battles), log.lines, log.skipped) == (1, 4, dict(NO_SKIPS, malformed=3))


def test_a_10_mb_line_is_read_a_longer_one_than_the_limit_is_skipped_in_pieces(tmp_path):
    big_vote = vote("leftvote", QWEN, BAICHUAN, answer_a="Paris. " * 1_500_000)
    big_garbage = '{"type": "leftvote", "junk": "' + "x" * 10_000_000
    write_log(str(tmp_path), [big_vote, big_garbage + '"'], name="2024-05-01-conv.json")
    with open(tmp_path / "2024-05-02-conv.json", "wb") as handle:
        handle.write(b"[" * (leaderboard_logs.MAX_LINE_BYTES + 1) + b"\n")
        handle.write(json.dumps(vote("rightvote", QWEN, BAICHUAN)).encode() + b"\n")
        handle.write(b"x" * (leaderboard_logs.MAX_LINE_BYTES + 5))   # the last, no newline
    log = read_vote_logs([str(tmp_path)])
    assert [b.outcome for b in log.battles] == ["a", "b"]
    assert log.skipped == dict(NO_SKIPS, malformed=1, too_long=2)
    assert log.lines == 5


# --- fuzz: garbage mixed with good votes ---------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8)
VOTE_KEYS = ["tstamp", "type", "models", "states", "ip", "login"]
STATE_KEYS = ["messages", "offset", "conv_id", "model_name", "roles"]


@st.composite
def mutant_vote(draw):
    """A vote of two other models with one field replaced by anything, or deleted."""
    line = vote(draw(st.sampled_from(leaderboard_logs.VOTE_TYPES)), "Mutant-A", "Mutant-B",
                login=draw(st.none() | st.text(max_size=8)))
    if draw(st.booleans()):
        target = line["states"][draw(st.integers(0, 1))]
        key = draw(st.sampled_from(STATE_KEYS))
    else:
        target, key = line, draw(st.sampled_from(VOTE_KEYS))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(JSON_VALUES)
    return json.dumps(line)


def utf8(text):
    return text.encode("utf-8")


# Lines of bytes without a newline (any bytes: not always UTF-8).
GARBAGE = st.one_of(
    mutant_vote().map(utf8),
    JSON_VALUES.map(json.dumps).map(utf8),
    st.dictionaries(st.sampled_from(VOTE_KEYS), JSON_VALUES).map(json.dumps).map(utf8),
    st.binary(max_size=64).map(lambda b: b.replace(b"\n", b" ")),
    st.sampled_from([line for line, _ in HOSTILE]).map(utf8),
    st.integers(1, 100000).map(lambda n: b"[" * n + b"]" * n),
)


@settings(max_examples=int(os.environ.get("FASTCHAT_LAB_LEADERBOARD_FUZZ", "300")),
          deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(st.sampled_from(["good", "again", "garbage"]), GARBAGE),
                     min_size=1, max_size=25),
       files=st.integers(1, 3), newline_at_end=st.booleans(), cap=st.sampled_from([0, 1000]))
def test_fuzz_garbage_never_stops_a_good_vote(tmp_path_factory, lines, files, newline_at_end,
                                              cap):
    """Garbage lines (mutated votes, any JSON, any bytes, the hostile lines above, deep
    nesting) between good votes, some repeated, over 1-3 files: the result always comes
    out, every good battle counts once, every line is accounted for."""
    directory = tmp_path_factory.mktemp("fuzz")
    good = 0
    texts = []
    for kind, garbage in lines:
        if kind == "good":
            good += 1
            last_good = utf8(json.dumps(vote("leftvote", QWEN, BAICHUAN, login="alice",
                                             tstamp=1714560000.5 + good)))
            texts.append(last_good)
        elif kind == "again" and good:      # a good vote repeated: still one battle
            texts.append(last_good)
        else:
            texts.append(garbage)
    per_file = -(-len(texts) // files)
    for n in range(files):
        chunk = texts[n * per_file:(n + 1) * per_file]
        end = b"\n" if newline_at_end or n < files - 1 else b""
        with open(directory / ("2024-05-0%d-conv.json" % (n + 1)), "wb") as handle:
            handle.write(b"\n".join(chunk) + end)
    log = read_vote_logs([str(directory)], daily_cap=cap)
    real = [b for b in log.battles if {b.model_a, b.model_b} == {QWEN, BAICHUAN}]
    assert len(real) == good
    # Every line is somewhere: a counted battle, a skip reason, or a non-vote line.
    assert log.lines == len(log.battles) + sum(log.skipped.values()) + log.other_lines
    assert log.lines == sum(1 for text in texts if text.strip())
    result = build_leaderboard([str(directory)], min_battles=1, resamples=5, daily_cap=cap,
                               now=NOW)
    assert result["battles_used"] == len(log.battles)
    json.loads(render_json(result), parse_constant=reject_constant)
    render_html(result)
    render_csv(result)
    format_table(result)
    fastchat_leaderboard_table(result)
    fastchat_elo_results(result)


def _battles(spec):
    """Battles from {(a, b, outcome): count}."""
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_logs import Battle

    out = []
    for (a, b, outcome), count in spec.items():
        out += [Battle(model_a=a, model_b=b, outcome=outcome, tstamp=None, anonymous=True)] * count
    return out


def test_position_bias_is_the_left_sides_share_with_an_interval():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard import position_bias

    fair = position_bias(_battles({("x", "y", "a"): 50, ("x", "y", "b"): 50, ("x", "y", "tie"): 9}))
    assert fair["decided"] == 100 and fair["a_share"] == 0.5
    assert fair["ci_low"] < 0.5 < fair["ci_high"]
    biased = position_bias(_battles({("x", "y", "a"): 70, ("y", "x", "a"): 70, ("x", "y", "b"): 60}))
    assert biased["a_share"] == 0.7 and biased["ci_low"] > 0.5
    assert position_bias([])["a_share"] is None


def test_votes_needed_to_separate_the_top_two_follow_the_textbook_numbers():
    """A 55:45 preference needs about 385 decided votes to show (issue 23's figure)."""
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard import (
        compute_leaderboard,
    )

    board = compute_leaderboard(_battles({("p", "q", "a"): 55, ("p", "q", "b"): 45}),
                                resamples=0, min_battles=1)
    sep = board["analysis"]["separation"]
    assert sep["models"] == ["p", "q"] and sep["decided_between"] == 100
    assert 360 <= sep["decided_needed"] <= 400 and sep["more_votes_needed"] == sep["decided_needed"] - 100
    even = compute_leaderboard(_battles({("p", "q", "a"): 10, ("p", "q", "b"): 10}),
                               resamples=0, min_battles=1)
    assert even["analysis"]["separation"]["decided_needed"] in (None,) or \
        even["analysis"]["separation"]["decided_needed"] > 10 ** 6
    clear = compute_leaderboard(_battles({("p", "q", "a"): 90, ("p", "q", "b"): 10}),
                                resamples=0, min_battles=1)
    assert clear["analysis"]["separation"]["more_votes_needed"] == 0


def test_the_page_says_the_position_bias_and_the_votes_still_needed():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard import (
        compute_leaderboard,
    )
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_render import (
        render_html,
    )

    board = compute_leaderboard(_battles({("p", "q", "a"): 55, ("p", "q", "b"): 45}),
                                resamples=50, min_battles=1)
    page = render_html(board)
    assert "the left side (Model A) won 55% of 100 decided battles" in page
    assert "decided votes between them part their 95% intervals" in page
    assert "more)" in page


# --- length control (issue 23: "an optional answer-length control") ---------------------

def _length_battles(effect, count=3000, seed=5):
    """Battles among three models of known strengths whose voters also prefer the longer
    answer by ``effect`` (nats per unit of (len_a - len_b) / (len_a + len_b)); "verbose"
    writes three times as long and is the weakest."""
    rng = np.random.default_rng(seed)
    strength = {"alpha": 0.3, "beta": 0.0, "verbose": -0.3}
    length = {"alpha": 300, "beta": 300, "verbose": 900}
    names = sorted(strength)
    out = []
    for _ in range(count):
        a, b = rng.choice(names, size=2, replace=False)
        la, lb = (int(length[m] * rng.uniform(0.5, 1.5)) for m in (a, b))
        d = (la - lb) / (la + lb)
        p = 1 / (1 + math.exp(-(strength[a] - strength[b] + effect * d)))
        out.append(Battle(str(a), str(b), "a" if rng.random() < p else "b", None, True, (la, lb)))
    return out


def test_length_control_recovers_a_hidden_length_preference_and_the_order_without_it():
    board = compute_leaderboard(_length_battles(1.2), resamples=200)
    plain = [m["model"] for m in board["models"]]
    length = board["analysis"]["length_control"]
    assert plain[0] == "alpha" and plain.index("verbose") < plain.index("beta")  # fooled
    assert [m["model"] for m in length["models"]] == ["alpha", "beta", "verbose"]
    assert length["ci_low"] < 1.2 < length["ci_high"] and length["ci_low"] > 0.5
    assert length["battles"] == 3000 and length["resamples"] == 100
    rows = {m["model"]: m for m in length["models"]}
    # The true strengths on the rating scale: 1000 +- 0.3 nats.
    for model, nats in (("alpha", 0.3), ("beta", 0.0), ("verbose", -0.3)):
        row = rows[model]
        assert row["ci_low"] < 1000 + nats * POINTS_PER_NAT < row["ci_high"], row
    assert length["points_for_twice_as_long"] == pytest.approx(
        length["coefficient"] / 3 * POINTS_PER_NAT, abs=0.1)


def test_without_a_length_preference_the_coefficients_interval_holds_zero():
    length = compute_leaderboard(_length_battles(0.0), resamples=200)["analysis"]["length_control"]
    assert length["ci_low"] < 0 < length["ci_high"]


def test_length_control_needs_lengths_and_two_ranked_models():
    assert compute_leaderboard(_battles({("p", "q", "a"): 30, ("p", "q", "b"): 20}),
                               resamples=10, min_battles=1)["analysis"]["length_control"] is None
    one = [Battle("p", "q", "a", None, True, (10, 5))] * 30
    assert compute_leaderboard(one, resamples=10, min_battles=40)["analysis"]["length_control"] is None
    # Empty answers on both sides (zero length) are left out, not divided by.
    zero = [Battle("p", "q", "a", None, True, (0, 0))] * 30
    assert compute_leaderboard(zero, resamples=10, min_battles=1)["analysis"]["length_control"] is None


def test_a_votes_answer_lengths_come_from_its_conversations(tmp_path):
    write_log(str(tmp_path), [vote("leftvote", QWEN, BAICHUAN, answer_a="Paris.",
                                   answer_b="It is Paris, of course.")])
    (battle,) = read_vote_logs([str(tmp_path)]).battles
    assert battle.lengths == (len("Paris."), len("It is Paris, of course."))


def test_the_page_says_what_length_is_worth_and_the_order_with_length_held_equal():
    page = render_html(compute_leaderboard(_length_battles(1.2, count=1500), resamples=50))
    assert "a twice-as-long answer is worth" in page
    assert "With length held equal: alpha" in page


def test_what_was_compared_per_model_from_the_plan_and_the_workers_images():
    from ansible_collections.fastchat_lab.lab.plugins.filter.leaderboard import FilterModule

    models = {"Qwen-7B-Chat": {"revision": "abc", "source": "hf.co/Qwen/Qwen-7B-Chat", "aliases": [],
                               "engine": "llama.cpp", "precision": "q8_0"},
              "Baichuan-13B-Chat": {"revision": "def", "source": "hf.co/baichuan-inc/Baichuan-13B-Chat",
                                    "aliases": ["baichuan"]}}
    images = [{"Qwen-7B-Chat": "fastchat-lab/fastchat:llamacpp-cuda-1"},
              {"Qwen-7B-Chat": "fastchat-lab/fastchat:llamacpp-cuda-1"},
              {"Qwen-7B-Chat": "fastchat-lab/fastchat:llamacpp-cuda-2"}, {}, None]
    got = FilterModule().filters()["leaderboard_models"](models, images)
    assert got["Qwen-7B-Chat"] == {
        "revision": "abc", "source": "hf.co/Qwen/Qwen-7B-Chat", "aliases": [], "engine": "llama.cpp",
        "precision": "q8_0",
        "image": "fastchat-lab/fastchat:llamacpp-cuda-1, fastchat-lab/fastchat:llamacpp-cuda-2"}
    # No worker of it seen, an older plan without engine and precision: said so.
    assert got["Baichuan-13B-Chat"]["image"] == "unknown"
    assert got["Baichuan-13B-Chat"]["engine"] == "unknown" == got["Baichuan-13B-Chat"]["precision"]
