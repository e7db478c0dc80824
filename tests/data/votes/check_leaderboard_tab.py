#!/usr/bin/env python3
"""Build FastChat 0.2.36's Leaderboard tab from the lab's files with FastChat's own code.

    /tmp/fc-real/bin/python tests/data/votes/check_leaderboard_tab.py DIR

DIR holds elo_results.pkl and leaderboard_table.csv (``scripts/leaderboard --fastchat-tab
DIR``). Runs what ``gradio_web_server_multi --elo-results-file --leaderboard-table-file``
runs at start-up — ``monitor.build_leaderboard_tab`` inside a ``gr.Blocks`` (pickle.load,
``load_leaderboard_table_csv``, ``get_arena_table``, ``get_full_table``, the
``gr.Dataframe``s), also with ``show_plot=True`` as the stand-alone monitor has it — and
prints the rows of the "Arena Elo" table. Needs the web UI's packages (README.md here);
exit 0 when the tab builds.
"""

import os
import pickle
import shutil
import sys
import tempfile

# Importing the web UI opens its log files in LOGDIR (default: the current directory).
LOGDIR = tempfile.mkdtemp(prefix="fastchat-tab-")
os.environ["LOGDIR"] = LOGDIR

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from fastchat.serve.monitor import monitor  # noqa: E402


def main():
    directory = sys.argv[1]
    elo_file = os.path.join(directory, "elo_results.pkl")
    table_file = os.path.join(directory, "leaderboard_table.csv")
    with gr.Blocks():
        with gr.Tab("Leaderboard"):
            monitor.build_leaderboard_tab(elo_file, table_file)
        with gr.Tab("Leaderboard with plots"):
            monitor.build_leaderboard_tab(elo_file, table_file, show_plot=True)
    with open(elo_file, "rb") as handle:
        arena_df = pickle.load(handle)["leaderboard_table_df"]
    model_table_df = pd.DataFrame(monitor.load_leaderboard_table_csv(table_file,
                                                                     add_hyperlink=False))
    rows = monitor.get_arena_table(arena_df, model_table_df)
    sys.__stdout__.write("FastChat's Leaderboard tab built: %d ranked models\n" % len(rows))
    for row in rows:
        sys.__stdout__.write("  %s\n" % row)
    shutil.rmtree(LOGDIR)


if __name__ == "__main__":
    main()
