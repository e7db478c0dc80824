#!/usr/bin/env python3
"""Write real FastChat 0.2.36 vote logs with FastChat's own web UI code (README.md here).

Run with a Python that has fschat 0.2.36 and the web UI's packages (not the project's
.venv, which has fschat without them):

    /tmp/fc-real/bin/python tests/data/votes/make_votes.py tests/data/votes

Each battle goes through the functions the arena's buttons call: ``add_text`` (the
prompt), ``bot_response_multi`` (both answers, streamed over HTTP from a stand-in
controller and model worker on 127.0.0.1 that answer scripted texts) and a
``*vote_last_response`` (the vote), with real ``State`` objects and a ``gr.Request``.
FastChat writes the lines itself, to ``$LOGDIR/YYYY-MM-DD-conv.json``; this script then
copies that file to OUT_DIR.
"""

import glob
import json
import os
import shutil
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# FastChat reads LOGDIR when fastchat.constants is first imported.
LOGDIR = tempfile.mkdtemp(prefix="fastchat-votes-")
os.environ["LOGDIR"] = LOGDIR

import gradio as gr  # noqa: E402

from fastchat.serve import gradio_block_arena_anony as anony  # noqa: E402
from fastchat.serve import gradio_block_arena_named as named  # noqa: E402
from fastchat.serve import gradio_web_server as web  # noqa: E402
from fastchat.serve.gradio_web_server import State  # noqa: E402

QWEN, BAICHUAN = "Qwen-7B-Chat", "Baichuan-13B-Chat"
# The web UI's slider defaults (gradio_block_arena_anony.build_side_by_side_ui_anony).
DEFAULT_PARAMS = (0.7, 1.0, 1024)
CHANGED_PARAMS = (0.3, 0.9, 512)

# (ui, model A, model B, [(prompt, {model: answer}), ...], vote, (temperature, top_p, max
# tokens)). Expected use by the leaderboard: battles 1-5 count; 6 and 7 reveal a model's
# identity; 8 is a named side-by-side vote.
BATTLES = [
    ("anony", QWEN, BAICHUAN,
     [("What is the boiling point of water at sea level?",
       {QWEN: "100 degrees Celsius (212 degrees Fahrenheit).",
        BAICHUAN: "Water boils at about 100 °C at sea level."})],
     "leftvote", DEFAULT_PARAMS),
    ("anony", BAICHUAN, QWEN,
     [("Name a prime number greater than 10.",
       {BAICHUAN: "12 is a prime number.", QWEN: "11 is the smallest prime above 10."})],
     "rightvote", DEFAULT_PARAMS),
    ("anony", QWEN, BAICHUAN,
     [("用一句话介绍长城。",
       {QWEN: "长城是中国古代修建的军事防御工程。",
        BAICHUAN: "长城是中国古代的防御工事，绵延万里。"})],
     "tievote", DEFAULT_PARAMS),
    ("anony", BAICHUAN, QWEN,
     [("Translate 'good morning' into French.",
       {BAICHUAN: "Gute Nacht.", QWEN: "Buenas noches."})],
     "bothbad_vote", DEFAULT_PARAMS),
    ("anony", BAICHUAN, QWEN,
     [("Give me a word that rhymes with 'cat'.", {BAICHUAN: "Hat.", QWEN: "Dog."}),
      ("And one more?", {BAICHUAN: "Bat.", QWEN: "Cow."})],
     "leftvote", CHANGED_PARAMS),
    ("anony", QWEN, BAICHUAN,
     [("你是谁？",
       {QWEN: "我是通义千问，由阿里云开发的大语言模型。", BAICHUAN: "我是一个人工智能助手。"})],
     "leftvote", DEFAULT_PARAMS),
    ("anony", BAICHUAN, QWEN,
     [("Who trained you?",
       {BAICHUAN: "I was trained by Baichuan Intelligence.", QWEN: "I am an AI assistant."})],
     "rightvote", DEFAULT_PARAMS),
    ("named", QWEN, BAICHUAN,
     [("What is 2 + 2?", {QWEN: "2 + 2 = 4.", BAICHUAN: "4."})],
     "leftvote", DEFAULT_PARAMS),
]

ANSWERS = {}  # {model: answer} of the turn being generated


class StandIn(BaseHTTPRequestHandler):
    """The controller's /get_worker_address and the worker's /worker_generate_stream."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/get_worker_address":
            payload = json.dumps({"address": "http://127.0.0.1:%d" % self.server.server_port})
            self._reply(payload.encode())
        elif self.path == "/worker_generate_stream":
            answer = ANSWERS[body["model"]]
            half = answer[: len(answer) // 2]
            chunks = [json.dumps({"text": t, "error_code": 0}).encode() + b"\0"
                      for t in (half, answer)]
            self._reply(b"".join(chunks))
        else:
            self.send_error(404)

    def _reply(self, data):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def run_battle(ui, model_a, model_b, turns, vote, params, request):
    """One battle through the arena's functions, as the buttons call them."""
    module = anony if ui == "anony" else named
    # What the vote buttons pass as model_selectors: the anonymous tab's Markdown is
    # empty until the vote; the named tab's dropdowns hold the names.
    selectors = ("", "") if ui == "anony" else (model_a, model_b)
    states = [State(model_a), State(model_b)]
    for prompt, answers in turns:
        ANSWERS.clear()
        ANSWERS.update(answers)
        out = module.add_text(states[0], states[1], selectors[0], selectors[1], prompt,
                              request)
        states = list(out[:2])
        for out in module.bot_response_multi(states[0], states[1], *params, request):
            states = list(out[:2])
    handler = getattr(module, vote + "_last_response")
    list(handler(states[0], states[1], selectors[0], selectors[1], request))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    web.set_global_vars("http://127.0.0.1:%d" % server.server_port, False)
    anony.set_global_vars_anony(False)
    named.set_global_vars_named(False)
    request = gr.Request(headers={}, client={"host": "203.0.113.7"})
    try:
        for battle in BATTLES:
            run_battle(*battle, request)
    finally:
        server.shutdown()
    written = sorted(glob.glob(os.path.join(LOGDIR, "*-conv.json")))
    for path in written:
        shutil.copy(path, out_dir)
    sys.__stdout__.write("wrote %s\n" % ", ".join(os.path.join(out_dir, os.path.basename(p))
                                                 for p in written))
    shutil.rmtree(LOGDIR)


if __name__ == "__main__":
    main()
