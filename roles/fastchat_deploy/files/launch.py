#!/usr/bin/env python3
"""Start a FastChat service the way the lab needs, or check its health.

    launch.py run [--wait-for CONTROLLER_URL] -- python3 -m fastchat.serve.X ARGS...
    launch.py health URL [GET|POST] [--api-key]

run:    waits (bounded by FASTCHAT_LAB_WAIT_SECONDS, default 300) until the controller
        answers — FastChat's workers register once and exit if it is down — then runs
        the FastChat module in this process. The OpenAI API server reads its keys itself
        from the root-only file FASTCHAT_LAB_API_KEYS_FILE names (one per line; the
        project's hardening patch), so they pass through no argument list, command line,
        environment or log. The web UI gets what its directory FASTCHAT_LAB_WEB_UI_DIR
        holds (WEB_UI_FILES): the page (FASTCHAT_LAB_PAGE, read by the lab's page patch),
        the logins file (--gradio-auth-path) and the leaderboard tab's files.
        Fail closed: a service told to have keys (FASTCHAT_LAB_API_KEYS_FILE) or logins
        (FASTCHAT_LAB_REQUIRE_LOGIN=1) does not start while that file is missing or empty
        (a restore, a full disk): it exits naming the file.
health: exit 0 when URL answers 200 (POST sends {}); with --api-key the first key of
        that file is sent as a bearer token.
"""

import json
import os
import runpy
import sys
import time
import urllib.error
import urllib.request


def request(url, method="GET", api_key=None, timeout=5.0):
    data = b"{}" if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if api_key:
        req.add_header("Authorization", "Bearer " + api_key)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status


# The web UI's files, in FASTCHAT_LAB_WEB_UI_DIR (fastchat_deploy writes them).
WEB_UI_FILES = {"page": "page.json", "auth": "auth",
                "elo": "leaderboard/elo_results.pkl",
                "table": "leaderboard/leaderboard_table.csv"}


def web_ui_args(directory):
    """FastChat's web UI flags for the files in ``directory`` (and FASTCHAT_LAB_PAGE)."""
    args = []
    if not directory:
        return args
    path = {key: os.path.join(directory, name) for key, name in WEB_UI_FILES.items()}
    if os.path.isfile(path["page"]):
        os.environ["FASTCHAT_LAB_PAGE"] = path["page"]
    if os.path.isfile(path["auth"]):
        args += ["--gradio-auth-path", path["auth"]]
    if os.path.isfile(path["elo"]) and os.path.isfile(path["table"]):
        args += ["--elo-results-file", path["elo"], "--leaderboard-table-file", path["table"]]
    return args


def read_lines(path):
    """The non-empty lines of ``path``; [] when it cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError):
        return []


def api_keys():
    path = os.environ.get("FASTCHAT_LAB_API_KEYS_FILE")
    return read_lines(path) if path else []


def secrets_problem(module, environ):
    """Why ``module`` must not start with the secrets it was told to have, or None.
    Names the file, never its content."""
    if module == "fastchat.serve.openai_api_server":
        path = environ.get("FASTCHAT_LAB_API_KEYS_FILE")
        if path and not read_lines(path):
            return ("the API keys file %s is missing or empty: refusing to serve the API "
                    "without its keys. Fix: re-run the play (it writes the keys), or restore "
                    "the file" % path)
    if module == "fastchat.serve.gradio_web_server_multi" and environ.get("FASTCHAT_LAB_REQUIRE_LOGIN") == "1":
        directory = environ.get("FASTCHAT_LAB_WEB_UI_DIR") or ""
        path = os.path.join(directory, WEB_UI_FILES["auth"])
        if not directory or not read_lines(path):
            return ("the web UI's logins file %s is missing or empty: refusing to serve the "
                    "arena without a login. Fix: re-run the play (it writes the logins), or "
                    "restore the file" % path)
    return None


def wait_for(controller, seconds):
    deadline = time.monotonic() + seconds
    url = controller.rstrip("/") + "/test_connection"
    while True:
        try:
            if request(url) == 200:
                return True
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(2)


def run(args):
    wait = None
    if args[:1] == ["--wait-for"]:
        wait, args = args[1], args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if len(args) < 3 or args[1] != "-m":
        sys.exit("launch.py run: expected -- python3 -m MODULE ARGS..., got %r" % args)
    module, module_args = args[2], args[3:]
    problem = secrets_problem(module, os.environ)
    if problem:
        sys.exit("launch.py: " + problem)
    if wait:
        seconds = float(os.environ.get("FASTCHAT_LAB_WAIT_SECONDS", "300"))
        print("launch.py: waiting up to %.0f s for the controller at %s" % (seconds, wait), flush=True)
        if not wait_for(wait, seconds):
            sys.exit("launch.py: the controller at %s did not answer within %.0f s" % (wait, seconds))
    if module == "fastchat.serve.gradio_web_server_multi":
        module_args = module_args + web_ui_args(os.environ.get("FASTCHAT_LAB_WEB_UI_DIR"))
    sys.argv = [module] + module_args
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def health(args):
    url = args[0]
    method = args[1] if len(args) > 1 and args[1] in ("GET", "POST") else "GET"
    key = (api_keys() or [None])[0] if "--api-key" in args else None
    try:
        status = request(url, method, key)
    except (OSError, urllib.error.URLError) as exc:
        print(json.dumps({"url": url, "error": str(exc)}))
        return 1
    print(json.dumps({"url": url, "status": status}))
    return 0 if status == 200 else 1


def main(argv):
    if argv[:1] == ["run"]:
        run(argv[1:])
        return 0
    if argv[:1] == ["health"] and len(argv) >= 2:
        return health(argv[1:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
