"""The private leaderboard (module_utils/leaderboard*.py, scripts/leaderboard).

Simulated voters with known Bradley–Terry strengths check the fit and its intervals; vote
lines in FastChat's format check which votes count; tests/data/votes/ holds lines that
FastChat 0.2.36's own web UI code wrote (see its README.md)."""

import ast
import csv
import glob
import importlib.util
import io
import json
import math
import os
import pickle
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest

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
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_logs import (
    Battle,
    read_vote_logs,
)
from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_render import (
    format_table,
    nice_ticks,
    render_csv,
    render_html,
    write_leaderboard,
)

from labs import ROOT

REAL_VOTES = os.path.join(ROOT, "tests", "data", "votes")
SCRIPT = os.path.join(ROOT, "scripts", "leaderboard")
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
QWEN, BAICHUAN = "Qwen-7B-Chat", "Baichuan-13B-Chat"
ROLES = {QWEN: ["<|im_start|>user", "<|im_start|>assistant"],
         BAICHUAN: ["<reserved_102>", "<reserved_103>"]}
NO_SKIPS = {"malformed": 0, "truncated": 0, "missing_states": 0, "invalid_models": 0,
            "same_model": 0, "no_answer": 0, "error_answer": 0, "identity_revealed": 0,
            "named": 0, "bothbad_excluded": 0}


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

def state(model, turns, offset=0):
    """A ``State.dict()`` as FastChat 0.2.36 logs it: turns are (question, answer) pairs."""
    user, assistant = ROLES.get(model, ["USER", "ASSISTANT"])
    messages = []
    for question, answer in turns:
        messages += [[user, question], [assistant, answer]]
    return {"template_name": "t", "system_message": "", "roles": [user, assistant],
            "messages": messages, "offset": offset, "conv_id": "c0ffee", "model_name": model}


def vote(kind, model_a, model_b, answer_a="Paris.", answer_b="It is Paris.", named=False,
         question="Capital of France?"):
    """One vote line as gradio_block_arena_anony/_named.vote_last_response writes it."""
    return {"tstamp": 1714560000.5, "type": kind,
            "models": [model_a, model_b] if named else ["", ""],
            "states": [state(model_a, [(question, answer_a)]),
                       state(model_b, [(question, answer_b)])],
            "ip": "203.0.113.7"}


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
