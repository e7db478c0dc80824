# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The two files FastChat 0.2.36's web UI reads for its "Leaderboard" tab.

``python3 -m fastchat.serve.gradio_web_server_multi --elo-results-file elo_results.pkl
--leaderboard-table-file leaderboard_table.csv`` adds the tab (without
``--elo-results-file`` there is no tab; without the CSV the tab has no table). Both files
are read once, when the web UI starts: a new leaderboard shows after a restart.
What ``fastchat/serve/monitor/monitor.py`` (``build_leaderboard_tab``) needs:

``elo_results.pkl``  a pickled dict with the keys ``win_fraction_heatmap``,
    ``battle_count_heatmap``, ``bootstrap_elo_rating``, ``average_win_rate_bar`` (plotly
    figures, shown only by the stand-alone monitor's ``show_plot``; ``None`` here: the
    multi-tab web UI never shows them) and ``leaderboard_table_df``: a pandas DataFrame
    indexed by model name with the columns ``rating``, ``rating_q975``, ``rating_q025``
    and ``num_battles`` (``variance`` too, as FastChat's own ``elo_analysis`` writes).
    Every model of the DataFrame must have a CSV row (``get_arena_table`` looks each up).
``leaderboard_table.csv``  a header line and one line per model, split on bare commas
    (no quoting: commas and newlines in a value are replaced by spaces here; a model name
    with one is refused). Columns read: ``key`` (the model name), ``Model`` (the name
    shown, made a link to ``Link``), ``Link``, ``MT-bench (score)`` and ``MMLU`` (``-`` or
    a number), ``Organization``, ``License``; ``Arena Elo rating`` is parsed if present.

The DataFrame is written as a pickle of ``pandas.DataFrame(columns, index)`` built
from pickle opcodes, so writing needs no pandas (the web UI, which has pandas, builds the
frame when it loads the file). Only ranked models enter the DataFrame; every model,
ranked or with too few votes, has a CSV row (the "Full Leaderboard" sub-tab shows the
latter without a rating). Per-model ``display_name``, ``organization``, ``license`` and
``link`` come from ``compared`` (the caller's ``meta["models"]``).

``judge_table.json`` (the lab's page patch reads it, ``lab_page.judge_tab``)  the judge's
    verdict as the tab's "Judge" table: ``judge``, ``generated_at``, the counts
    (``questions``, ``pairs``, ``parsed``, ``unparseable``, ``inconsistent``, ``agree``,
    ``agree_pairs``), ``headers`` and ``rows`` (strings only, shown as plain text).
    ``write_fastchat_judge_tab`` also writes an unranked human table for the same models:
    the tab exists only with the human files, so a lab that has no leaderboard yet gets
    one that says so (the publishing step never replaces a human table that exists).
"""

from __future__ import annotations

import json
import os
import pickle
import pickletools
import re
from typing import Any, Mapping

ELO_RESULTS_FILE = "elo_results.pkl"
TABLE_FILE = "leaderboard_table.csv"
JUDGE_TABLE_FILE = "judge_table.json"
JUDGE_HEADERS = ("Rank", "Model", "Judge rating", "95% CI", "Wins-losses-ties",
                 "Arena Elo (votes)", "Tokens/s", "First token (s)")
PLOT_KEYS = ("win_fraction_heatmap", "battle_count_heatmap", "bootstrap_elo_rating",
             "average_win_rate_bar")
DATAFRAME_COLUMNS = ("rating", "variance", "rating_q975", "rating_q025", "num_battles")
CSV_COLUMNS = ("key", "Model", "Arena Elo rating", "MT-bench (score)", "MMLU",
               "Organization", "License", "Link")

_PROTO_2 = b"\x80\x02"
_STOP = b"."
_MARK = pickle.MARK
_EMPTY_DICT = pickle.EMPTY_DICT
_SETITEMS = pickle.SETITEMS
_REDUCE = pickle.REDUCE
_DATAFRAME_GLOBAL = pickle.GLOBAL + b"pandas\nDataFrame\n"


def _opcodes(value: Any) -> bytes:
    """The pickle opcodes that push ``value`` (plain data), without PROTO and STOP.

    Each fragment numbers its memo from 0; fragments are concatenated in order, so a
    fragment only ever reads back what it stored itself.
    """
    data = pickletools.optimize(pickle.dumps(value, protocol=2))
    assert data.startswith(_PROTO_2) and data.endswith(_STOP)
    return data[len(_PROTO_2):-len(_STOP)]


def _dataframe_opcodes(columns: Mapping[str, list], index: list[str]) -> bytes:
    """Opcodes that push ``pandas.DataFrame(columns, index)`` when unpickled."""
    return _DATAFRAME_GLOBAL + _opcodes((dict(columns), list(index))) + _REDUCE


def _variance(model: Mapping[str, Any]) -> float:
    """A variance matching the 95% interval as if normal (FastChat stores the bootstrap's)."""
    if model["ci_low"] is None:
        return 0.0
    return ((model["ci_high"] - model["ci_low"]) / (2 * 1.959964)) ** 2


def _last_updated(result: Mapping[str, Any]) -> str:
    """When the newest counted vote was cast (else when the leaderboard was made)."""
    return result["meta"].get("last_vote") or result["generated_at"]


def leaderboard_markdown(result: Mapping[str, Any]) -> str:
    """FastChat's ``leaderboard_table`` markdown (used by the live monitor only)."""
    lines = ["| Rank | Model | Elo Rating | Description |", "| --- | --- | --- | --- |"]
    for model in result["models"]:
        if model["rank"] is not None:
            lines.append("| %d | %s | %.0f | %s |" % (model["rank"], model["model"],
                                                      model["rating"], "-"))
    return "\n".join(lines) + "\n"


def fastchat_elo_results(result: Mapping[str, Any]) -> bytes:
    """The bytes of ``elo_results.pkl`` (see the module docstring)."""
    models = [m for m in result["models"] if m["rank"] is not None]
    columns = {
        "rating": [float(m["rating"]) for m in models],
        "variance": [_variance(m) for m in models],
        "rating_q975": [float(m["rating"] if m["ci_high"] is None else m["ci_high"])
                        for m in models],
        "rating_q025": [float(m["rating"] if m["ci_low"] is None else m["ci_low"])
                        for m in models],
        "num_battles": [int(m["battles"]) for m in models],
    }
    plain = {
        "rating_system": "bt",
        "elo_rating_final": {m["model"]: float(m["rating"]) for m in models},
        "leaderboard_table": leaderboard_markdown(result),
        "last_updated_datetime": _last_updated(result),
        **dict.fromkeys(PLOT_KEYS),
    }
    items = b"".join(_opcodes(k) + _opcodes(v) for k, v in plain.items())
    items += _opcodes("leaderboard_table_df") + _dataframe_opcodes(columns,
                                                                   [m["model"] for m in models])
    return _PROTO_2 + _EMPTY_DICT + _MARK + items + _SETITEMS + _STOP


def _csv_text(value: Any) -> str:
    """A CSV cell FastChat's comma split reads back: no comma, no newline, no edge spaces."""
    text = re.sub(r"\s*[,\r\n]+\s*", " ", "-" if value in (None, "") else str(value)).strip()
    return text or "-"


def fastchat_leaderboard_table(result: Mapping[str, Any]) -> str:
    """The text of ``leaderboard_table.csv`` (see the module docstring)."""
    lines = [",".join(CSV_COLUMNS)]
    for model in result["models"]:
        name = model["model"]
        if re.search(r"[,\r\n]", name) or name != name.strip():
            raise ValueError("model name %r cannot be written to FastChat's leaderboard "
                             "table (it splits lines on commas)" % name)
        facts = model.get("compared", {})
        elo = "-" if model["rating"] is None else "%d" % round(model["rating"])
        cells = [name, _csv_text(facts.get("display_name") or name), elo, "-", "-",
                 _csv_text(facts.get("organization")), _csv_text(facts.get("license")),
                 _csv_text(facts.get("link") or "#")]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def write_fastchat_leaderboard(result: Mapping[str, Any], out_dir: str) -> dict[str, str]:
    """Write ELO_RESULTS_FILE and TABLE_FILE into ``out_dir``; returns {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {ELO_RESULTS_FILE: os.path.join(out_dir, ELO_RESULTS_FILE),
             TABLE_FILE: os.path.join(out_dir, TABLE_FILE)}
    table = fastchat_leaderboard_table(result)
    with open(paths[ELO_RESULTS_FILE], "wb") as handle:
        handle.write(fastchat_elo_results(result))
    with open(paths[TABLE_FILE], "w", encoding="utf-8") as handle:
        handle.write(table)
    return paths


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return ("%%.%df" % digits) % value


def fastchat_judge_table(result: Mapping[str, Any],
                         human: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of JUDGE_TABLE_FILE for judge.json's ``result`` (module_utils/judge.py)
    and the human leaderboard.json (``human``, optional): one row per model, ranked ones
    first in the judge's order."""
    human_rating = {row["model"]: row.get("rating")
                    for row in (human or {}).get("models", [])
                    if isinstance(row, Mapping) and isinstance(row.get("model"), str)}
    rows = []
    for row in sorted(result["models"], key=lambda r: (r["rank"] is None, r["rank"] or 0,
                                                       r["model"])):
        speed = result.get("speed", {}).get(row["model"], {})
        interval = "-"
        if row["rating"] is not None and row["ci_low"] is not None:
            interval = "+%d/-%d" % (round(row["ci_high"] - row["rating"]),
                                    round(row["rating"] - row["ci_low"]))
        rows.append(["-" if row["rank"] is None else str(row["rank"]), row["model"],
                     _number(row["rating"]), interval,
                     "%d-%d-%d" % (row["wins"], row["losses"], row["ties"]),
                     _number(human_rating.get(row["model"])),
                     _number(speed.get("tokens_per_s"), 1), _number(speed.get("ttft_s"), 2)])
    verdicts = result["verdicts"]
    agreement = result.get("agreement") or {}
    return {
        "judge": str(result["judge"].get("model")),
        "generated_at": str(result.get("judged_at") or result["generated_at"]),
        "questions": int(result["questions"]["count"]),
        "pairs": int(verdicts["pairs"]), "parsed": int(verdicts["parsed"]),
        "unparseable": int(verdicts["unparseable"]),
        "inconsistent": int(verdicts["inconsistent"]),
        "agree": agreement.get("agree"), "agree_pairs": agreement.get("pairs"),
        "headers": list(JUDGE_HEADERS),
        "rows": rows,
    }


def write_fastchat_judge_tab(result: Mapping[str, Any], out_dir: str,
                             human: Mapping[str, Any] | None = None) -> dict[str, str]:
    """JUDGE_TABLE_FILE in ``out_dir``, with an unranked human table (ELO_RESULTS_FILE,
    TABLE_FILE) of the judged models for a head that has none; returns {name: path}."""
    unranked = {"models": [{"model": row["model"], "rank": None, "rating": None,
                            "ci_low": None, "ci_high": None, "battles": 0}
                           for row in result["models"]],
                "meta": {}, "generated_at": result.get("judged_at") or result["generated_at"]}
    paths = write_fastchat_leaderboard(unranked, out_dir)
    paths[JUDGE_TABLE_FILE] = os.path.join(out_dir, JUDGE_TABLE_FILE)
    with open(paths[JUDGE_TABLE_FILE], "w", encoding="utf-8") as handle:
        handle.write(json.dumps(fastchat_judge_table(result, human), indent=2,
                                ensure_ascii=False) + "\n")
    return paths
