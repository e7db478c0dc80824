# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Render a leaderboard (the dict of :mod:`leaderboard`) for people and programs.

- :func:`format_table`  the fixed-width table ``scripts/leaderboard`` prints
- :func:`render_json`   leaderboard.json: the dict itself
- :func:`render_csv`    leaderboard.csv: one row per model
- :func:`render_html`   leaderboard.html: one self-contained page (no script, no external
                        asset): the table, the ratings with their 95% intervals and the
                        win-rate heat map as inline SVG, what was skipped, what was compared
- :func:`render_png`    leaderboard.png: the same two plots by matplotlib (Agg canvas)
- :func:`write_leaderboard` all four into a directory

Standard library, plus matplotlib for the PNG only (imported there).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from typing import Any, Iterable, Mapping

CSV_COLUMNS = ("rank", "model", "rating", "ci_low", "ci_high", "battles", "wins", "losses",
               "ties", "bothbad", "win_rate", "status")
TABLE_HEADER = ("rank", "model", "rating", "95% CI", "battles", "wins", "losses", "ties")
NO_VOTES = "No votes yet"
FILES = ("leaderboard.json", "leaderboard.csv", "leaderboard.html", "leaderboard.png")


def ranked(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ranked models, best first."""
    return [m for m in result["models"] if m["rank"] is not None]


def empty_message(result: Mapping[str, Any]) -> str | None:
    """Why there is nothing to rank ("No votes yet", or too few votes), or None."""
    if result["battles_used"] == 0:
        return NO_VOTES
    if not ranked(result):
        return ("No model has %d battles yet (%d battles counted)"
                % (result["min_battles"], result["battles_used"]))
    return None


def _number(value: float | None, digits: int = 0) -> str:
    """A rating or share for people: rounded, or '-' when absent."""
    if value is None:
        return "-"
    return "%.*f" % (digits, value)


def _interval(model: Mapping[str, Any]) -> str:
    """'1021 - 1060', or '-' without bootstrap."""
    if model["ci_low"] is None:
        return "-"
    return "%s - %s" % (_number(model["ci_low"]), _number(model["ci_high"]))


def skipped_summary(result: Mapping[str, Any]) -> str:
    """'identity_revealed 3, named 2' (non-zero reasons only), or 'none'."""
    parts = ["%s %d" % (k, v) for k, v in result["skipped"].items() if v]
    return ", ".join(parts) or "none"


def format_table(result: Mapping[str, Any]) -> str:
    """The fixed-width table: one row per model (too-few-votes last), then the counts."""
    message = empty_message(result)
    lines = [message.lower()] if message == NO_VOTES else []
    if result["models"]:
        rows = [(str(m["rank"]) if m["rank"] else "-", m["model"], _number(m["rating"]),
                 _interval(m) if m["rank"] else m["status"], str(m["battles"]),
                 str(m["wins"]), str(m["losses"]), str(m["ties"])) for m in result["models"]]
        widths = [max(len(r[i]) for r in rows + [TABLE_HEADER])
                  for i in range(len(TABLE_HEADER))]

        def line(cells: Iterable[str]) -> str:
            return " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        lines += [line(TABLE_HEADER), "-+-".join("-" * w for w in widths)]
        lines += [line(r) for r in rows]
        lines.append("")
    lines.append("battles used: %d (min battles to rank: %d); skipped: %s"
                 % (result["battles_used"], result["min_battles"], skipped_summary(result)))
    lines += ["warning: %s" % w for w in result["meta"].get("warnings", [])]
    return "\n".join(lines)


def render_json(result: Mapping[str, Any]) -> str:
    """leaderboard.json: the result, indented, UTF-8 (non-ASCII kept)."""
    return json.dumps(result, indent=2, ensure_ascii=False) + "\n"


def render_csv(result: Mapping[str, Any]) -> str:
    """leaderboard.csv: CSV_COLUMNS, one row per model; absent values are empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for model in result["models"]:
        writer.writerow(["" if model[c] is None else model[c] for c in CSV_COLUMNS])
    return out.getvalue()


# --- HTML -------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th:nth-child(2), td:nth-child(2) { text-align: left; }
tr.few td { color: #888; }
table.facts th, table.facts td { text-align: left; }
.note { color: #555; }
.warning { color: #a40; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #222; }
"""


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round ticks (steps of 1, 2, 2.5 or 5 times a power of ten) from <= low to >= high."""
    raw = max(high - low, 1e-9) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(n * step, 10) for n in range(first, last + 1)]


def _axis_range(models: list[dict[str, Any]]) -> tuple[float, float]:
    """The rating axis: every interval (or rating) inside, with round ends."""
    lows = [m["rating"] if m["ci_low"] is None else m["ci_low"] for m in models]
    highs = [m["rating"] if m["ci_high"] is None else m["ci_high"] for m in models]
    low, high = min(lows), max(highs)
    if high - low < 20:
        low, high = low - 10, high + 10
    ticks = nice_ticks(low, high)
    return ticks[0], ticks[-1]


def ratings_svg(models: list[dict[str, Any]]) -> str:
    """Inline SVG: one row per ranked model, its rating as a dot on its 95% interval."""
    label_w, plot_w, row_h, top = 190, 480, 26, 10
    low, high = _axis_range(models)
    height = top + row_h * len(models) + 40

    def x(value: float) -> float:
        return label_w + (value - low) / (high - low) * plot_w

    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" '
             'aria-label="Ratings with 95%% intervals">' % (label_w + plot_w + 30, height)]
    axis_y = top + row_h * len(models) + 5
    for tick in nice_ticks(low, high):
        parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>'
                     % (x(tick), top, x(tick), axis_y))
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                     % (x(tick), axis_y + 16, _number(tick)))
    for row, model in enumerate(models):
        y = top + row_h * row + row_h / 2
        parts.append('<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">'
                     '%s</text>' % (label_w - 10, y, html.escape(model["model"])))
        if model["ci_low"] is not None:
            parts.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#3b6ea8" '
                         'stroke-width="2"/>' % (x(model["ci_low"]), y, x(model["ci_high"]), y))
        parts.append('<circle cx="%.1f" cy="%.1f" r="4" fill="#1f3b63"><title>%s: %s (%s)'
                     '</title></circle>' % (x(model["rating"]), y, html.escape(model["model"]),
                                            _number(model["rating"]), _interval(model)))
    parts.append('<text x="%.1f" y="%d" text-anchor="middle">rating (95%% interval)</text>'
                 % (label_w + plot_w / 2, axis_y + 32))
    parts.append("</svg>")
    return "\n".join(parts)


def share_colour(share: float) -> str:
    """Heat-map colour: orange (0) through white (0.5) to blue (1)."""
    low, mid, high = (230, 120, 30), (255, 255, 255), (40, 100, 190)
    if share < 0.5:
        t, start, end = share / 0.5, low, mid
    else:
        t, start, end = (share - 0.5) / 0.5, mid, high
    return "#%02x%02x%02x" % tuple(round(s + (e - s) * t) for s, e in zip(start, end))


def heatmap_svg(order: list[str], win_rates: Mapping[str, Mapping[str, Mapping[str, Any]]]
                ) -> str:
    """Inline SVG: the share of battles the row model won against the column (ties half)."""
    label_w, cell, top = 190, 56, 120
    size = len(order)
    # The column labels lean right, past the last column: room for the longest.
    overhang = max([len(name) for name in order] + [0]) * 6
    width, height = label_w + cell * size + overhang, top + cell * size + 10
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" '
             'aria-label="Win-rate heat map">' % (width, height)]
    for col, name in enumerate(order):
        cx = label_w + cell * col + cell / 2
        parts.append('<text transform="translate(%.1f,%d) rotate(-45)">%s</text>'
                     % (cx, top - 8, html.escape(name)))
    for row, a in enumerate(order):
        y = top + cell * row
        parts.append('<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">'
                     '%s</text>' % (label_w - 10, y + cell / 2, html.escape(a)))
        for col, b in enumerate(order):
            x = label_w + cell * col
            pair = win_rates.get(a, {}).get(b)
            if a == b or pair is None:
                fill = "#777" if a == b else "#eee"
                parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s" '
                             'stroke="#fff"/>' % (x, y, cell, cell, fill))
                continue
            parts.append('<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="#fff">'
                         '<title>%s vs %s: %.1f%% of %d battles</title></rect>'
                         % (x, y, cell, cell, share_colour(pair["share"]), html.escape(a),
                            html.escape(b), 100 * pair["share"], pair["battles"]))
            parts.append('<text x="%.1f" y="%.1f" text-anchor="middle" '
                         'dominant-baseline="middle">%.0f%%</text>'
                         % (x + cell / 2, y + cell / 2, 100 * pair["share"]))
    parts.append("</svg>")
    return "\n".join(parts)


def _html_table(headers: Iterable[str], rows: Iterable[Iterable[Any]],
                row_classes: Iterable[str] | None = None, table_class: str = "") -> str:
    """A <table> of escaped cells."""
    attr = ' class="%s"' % table_class if table_class else ""
    out = ["<table%s>" % attr, "<tr>%s</tr>" % "".join("<th>%s</th>" % html.escape(str(h))
                                                        for h in headers)]
    classes = list(row_classes) if row_classes is not None else None
    for n, row in enumerate(rows):
        attr = ' class="%s"' % classes[n] if classes and classes[n] else ""
        out.append("<tr%s>%s</tr>" % (attr, "".join("<td>%s</td>" % html.escape(str(c))
                                                    for c in row)))
    out.append("</table>")
    return "\n".join(out)


def _leaderboard_table(result: Mapping[str, Any]) -> str:
    """The main table of the page."""
    rows, classes = [], []
    for m in result["models"]:
        rows.append([m["rank"] or "-", m["model"], _number(m["rating"]),
                     _interval(m) if m["rank"] else m["status"], m["battles"], m["wins"],
                     m["losses"], m["ties"],
                     "-" if m["win_rate"] is None else "%.1f%%" % (100 * m["win_rate"])])
        classes.append("" if m["rank"] else "few")
    return _html_table(("Rank", "Model", "Rating", "95% CI", "Battles", "Wins", "Losses",
                        "Ties", "Win rate"), rows, classes)


def _compared_table(result: Mapping[str, Any]) -> str:
    """What each model was: the caller's facts and the sampling parameters from the logs."""
    rows = []
    for m in result["models"]:
        facts = {k: v for k, v in m["compared"].items() if k != "sampling"}
        sampling = "; ".join("temperature %s, top_p %s, max_new_tokens %s (%d chats)"
                             % (s["temperature"], s["top_p"], s["max_new_tokens"], s["chats"])
                             for s in m["compared"].get("sampling", []))
        rows.append([m["model"], ", ".join("%s: %s" % kv for kv in sorted(facts.items())) or "-",
                     sampling or "-"])
    return _html_table(("Model", "Compared", "Sampling (from the logs)"), rows,
                       table_class="facts")


def _summary_html(result: Mapping[str, Any]) -> str:
    """The lines under the title: when, how many votes, what was skipped and why."""
    meta = result["meta"]
    lines = ["Generated %s from %d battles (last vote: %s). Models with fewer than %d "
             "battles are listed but not ranked." % (result["generated_at"],
                                                     result["battles_used"],
                                                     meta.get("last_vote") or "-",
                                                     result["min_battles"]),
             "Bradley–Terry ratings on the Elo scale (base %s, %s points; %s at %s); ties "
             "count half a win for each; both-bad votes: %s; 95%% intervals from %d "
             "bootstrap resamples (seed %d)." % (
                 _number(meta["scale"]["base"]), _number(meta["scale"]["scale"]),
                 meta["anchor"]["model"] or meta["anchor"]["of"],
                 _number(meta["anchor"]["rating"]), meta.get("bothbad", "tie"),
                 meta["resamples"], meta["seed"]),
             "Votes not counted: %s." % skipped_summary(result)]
    cap = meta.get("daily_cap")
    lines.append("One vote counts per battle, however often it was cast%s." % (
        "; at most %d per login (without a login: per address) and UTC day" % cap
        if cap else ""))
    analysis = result.get("analysis") or {}
    bias = analysis.get("position_bias") or {}
    if bias.get("decided"):
        lines.append("Position: the left side (Model A) won %.0f%% of %d decided battles "
                     "(95%% interval %.0f-%.0f%%; an interval without 50%% means the side "
                     "matters)." % (100 * bias["a_share"], bias["decided"],
                                    100 * bias["ci_low"], 100 * bias["ci_high"]))
    sep = analysis.get("separation")
    if sep and sep.get("decided_needed") is not None:
        lines.append("%s and %s are %s points apart after %d decided votes between them; "
                     "about %d decided votes between them part their 95%% intervals at this "
                     "gap (%s)." % (sep["models"][0], sep["models"][1], _number(sep["gap"], 1),
                                    sep["decided_between"], sep["decided_needed"],
                                    "reached" if not sep["more_votes_needed"] else
                                    "%d more" % sep["more_votes_needed"]))
    length = analysis.get("length_control")
    if length:
        lines.append("Length: over %d battles, a twice-as-long answer is worth %s points "
                     "(coefficient %s, 95%% interval %s to %s; above 0: longer answers win "
                     "more). With length held equal: %s." % (
                         length["battles"], _number(length["points_for_twice_as_long"], 1),
                         _number(length["coefficient"], 2), _number(length["ci_low"], 2),
                         _number(length["ci_high"], 2),
                         ", ".join("%s %s" % (m["model"], _number(m["rating"]))
                                   for m in length["models"])))
    named = meta.get("named_votes") or {}
    if named.get("battles"):
        lines.append("Named side-by-side votes, not in the ratings: %d." % named["battles"])
    lab = ", ".join("%s: %s" % (k, v) for k, v in sorted(meta.get("lab", {}).items())
                    if k != "title")
    if lab:
        lines.append("Lab: %s." % lab)
    out = ['<p class="note">%s</p>' % html.escape(line) for line in lines]
    out += ['<p class="warning">%s</p>' % html.escape(w) for w in meta.get("warnings", [])]
    return "\n".join(out)


def render_html(result: Mapping[str, Any]) -> str:
    """leaderboard.html: a self-contained page (see the module docstring)."""
    title = result["meta"].get("lab", {}).get("title") or "Arena leaderboard"
    body = ["<h1>%s</h1>" % html.escape(title)]
    message = empty_message(result)
    if message:
        body.append("<h2>%s</h2>" % html.escape(message))
    body.append(_summary_html(result))
    if result["models"]:
        body.append(_leaderboard_table(result))
    if not message:
        body += ["<h2>Ratings</h2>", ratings_svg(ranked(result))]
    if result["battles_used"]:
        body += ["<h2>Win rates</h2>",
                 '<p class="note">Share of battles the row model won against the column '
                 'model, ties counting half; grey: never met.</p>',
                 heatmap_svg([m["model"] for m in result["models"]], result["win_rates"])]
    if result["models"]:
        body += ["<h2>What was compared</h2>", _compared_table(result)]
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            "<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n%s\n</body>\n</html>\n"
            % (html.escape(title), CSS, "\n".join(body)))


# --- PNG --------------------------------------------------------------------------------

def render_png(result: Mapping[str, Any], path: str) -> None:
    """leaderboard.png: ratings with intervals and the win-rate heat map (matplotlib, Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    message = empty_message(result)
    models = ranked(result)
    if message:
        figure = Figure(figsize=(6, 2), dpi=100)
        figure.text(0.5, 0.5, message, ha="center", va="center", fontsize=16)
    else:
        order = [m["model"] for m in result["models"]]
        size = max(len(order), len(models))
        figure = Figure(figsize=(13, 1.5 + 0.55 * size), dpi=100)
        _plot_ratings(figure.add_subplot(1, 2, 1), models)
        _plot_heatmap(figure, figure.add_subplot(1, 2, 2), order, result["win_rates"])
        figure.tight_layout()
    FigureCanvasAgg(figure)
    figure.savefig(path, format="png", metadata={"Software": None})


def _plot_ratings(axes: Any, models: list[dict[str, Any]]) -> None:
    """Horizontal dots with 95% interval bars, best at the top."""
    ys = list(range(len(models)))[::-1]
    ratings = [m["rating"] for m in models]
    if models[0]["ci_low"] is not None:
        errors = [[m["rating"] - m["ci_low"] for m in models],
                  [m["ci_high"] - m["rating"] for m in models]]
        axes.errorbar(ratings, ys, xerr=errors, fmt="o", color="#1f3b63", ecolor="#3b6ea8",
                      capsize=3)
    else:
        axes.plot(ratings, ys, "o", color="#1f3b63")
    axes.set_yticks(ys, [m["model"] for m in models])
    axes.set_xlabel("rating (95% interval)")
    axes.grid(axis="x", color="#e5e5e5")
    axes.set_title("Ratings")


def _plot_heatmap(figure: Any, axes: Any, order: list[str],
                  win_rates: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
    """Row-beats-column shares as an image with the percentages written in."""
    from matplotlib.colors import LinearSegmentedColormap

    cmap = LinearSegmentedColormap.from_list(
        "share", [share_colour(0.0), share_colour(0.5), share_colour(1.0)])
    cmap.set_bad("#eeeeee")
    size = len(order)
    grid = [[math.nan] * size for _ in range(size)]
    for i, a in enumerate(order):
        for j, b in enumerate(order):
            pair = win_rates.get(a, {}).get(b)
            if pair is not None:
                grid[i][j] = pair["share"]
                axes.text(j, i, "%.0f%%" % (100 * pair["share"]), ha="center", va="center",
                          fontsize=9)
    image = axes.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0)
    axes.set_xticks(range(size), order, rotation=45, ha="right")
    axes.set_yticks(range(size), order)
    axes.set_title("Row beats column (ties half)")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)


def write_leaderboard(result: Mapping[str, Any], out_dir: str,
                      png: bool = True) -> dict[str, str]:
    """Write FILES into ``out_dir`` (made if missing; the PNG only with ``png``);
    returns {file name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {name: os.path.join(out_dir, name) for name in FILES
             if png or name != "leaderboard.png"}
    for name, text in (("leaderboard.json", render_json(result)),
                       ("leaderboard.csv", render_csv(result)),
                       ("leaderboard.html", render_html(result))):
        with open(paths[name], "w", encoding="utf-8") as handle:
            handle.write(text)
    if png:
        render_png(result, paths["leaderboard.png"])
    return paths
