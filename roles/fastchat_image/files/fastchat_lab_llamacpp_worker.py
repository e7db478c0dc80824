"""A FastChat model worker that serves a GGUF model through llama.cpp's llama-server.

    python3 -m fastchat_lab_llamacpp_worker --model-path /models/M.gguf --model-names M
        --host 0.0.0.0 --port 21002 --worker-address http://gpu01:21002
        --controller-address http://head:21001 [--conv-template T]
        [--limit-worker-concurrency N] [--stream-interval K] [--no-register]
        [--gguf-record M.gguf.json] --server-port 8090
        -- /opt/llamacpp/bin/llama-server --model /models/M.gguf --ctx-size C --parallel N ...

--gguf-record: the GGUF's record (model_weights writes it beside the file): its rules say how
FastChat's prompt text must reach llama-server so that it becomes the ids the model's own
tokenizer gives (one space in front for a sentencepiece model with the dummy prefix,
Baichuan's; NFC for a tokenizer that normalises, Qwen's) and which metadata llama-server
must override (--override-kv tokenizer.ggml.add_space_prefix=bool:false).

What it does, in order:
1. Checks its arguments and the llama-server command line (after ``--``); a bad one stops it
   (exit 2) with "error: <flag>: <what is wrong>. Fix: <what to do>." before anything starts.
2. Makes an API key (``secrets.token_urlsafe``) in a file of mode 0600 inside a private
   directory (``tempfile.mkdtemp``: mode 0700) and starts llama-server with the given argv
   plus ``--host 127.0.0.1 --port <server-port> --api-key-file <file>``. The key is in no
   argument list, environment or log; the file is deleted as soon as llama-server answers
   (it has read it by then). llama-server's environment loses LLAMA_API_KEY and every
   LLAMA_ARG_* variable (llama.cpp reads its options from those too, an API key among them).
3. Waits for llama-server's /health to answer 200 (503 while it loads), at most
   FASTCHAT_LAB_LLAMACPP_START_SECONDS (default 900) seconds; reads the context per slot
   (/props default_generation_settings.n_ctx, FastChat's context length), the slots
   (total_slots: FastChat's --limit-worker-concurrency must equal them, and defaults to
   them) and the vocabulary size (/v1/models).
4. Serves FastChat's worker API with FastChat's own app and routes
   (fastchat.serve.base_model_worker: /worker_generate_stream, /worker_generate,
   /worker_get_status, /count_token, /worker_get_conv_template, /model_details) under
   uvicorn, as FastChat's workers do, then registers with the controller (retrying every
   5 s while the controller does not answer, instead of FastChat's exit) and heartbeats.
5. When llama-server exits, logs its exit status and stops with status 1 (the container
   restarts; its health check sees the worker gone). On SIGTERM it stops llama-server.

Generation: FastChat's params become one streamed llama-server /completion request
("stream": true, "cache_prompt": true). The prompt is FastChat's text (the API server and
the web UI build it with the conversation template); llama-server tokenizes it with special
tokens parsed, so "<|im_start|>" written by the template becomes the special token.
max_new_tokens -> n_predict (at most the context), temperature (below 1e-5, or top_p below
1e-8: greedy, temperature 0 and top_k 1, as FastChat's transformers worker), top_p, top_k
(FastChat's -1, or any value <= 0: off, llama-server's 0), repetition_penalty ->
repeat_penalty, presence_penalty, frequency_penalty (all three over llama-server's last 64
tokens, its default; FastChat's transformers worker's repetition penalty looks at the whole
sequence, its vLLM worker's presence/frequency penalties at the answer). The samplers run in
the order FastChat's engines apply them: penalties, temperature, top_k, top_p (llama-server's
default chain also has min_p 0.05 and runs top_p before temperature; FastChat has no min_p).

Stop strings go to llama-server's "stop": it stops there, drops the stop string, and holds
back text that could be the start of one, as FastChat's workers do. (Its stream drops that
held-back text when max_new_tokens ends the answer; the worker adds it back, as FastChat's
answer has it.)

stop_token_ids (llama-server has no such field): each id is looked up once (cached) with
/detokenize and /tokenize.
- A special token (its text parses back to that one token with special tokens parsed, and
  to something else as plain text: <|im_end|>, <|im_start|>, <|endoftext|>) goes into
  "preserved_tokens" (so llama-server writes its text instead of nothing) and into "stop":
  llama-server stops on it by itself, drops it, and frees the slot at once.
- Any other token is recognised by id in the stream: every streamed chunk carries the id of
  the token it was made from ("tokens"). At a stop id the worker ends the answer before that
  token, adds back text llama-server was holding back as a possible stop string
  (/detokenize of those tokens, special ones left out as llama-server renders them), and
  closes the stream, which makes llama-server cancel the request. (A stop string for such a
  token would also stop on the same text made of other tokens.)
The model's end-of-generation tokens stop llama-server by itself (FastChat adds the EOS id).

The stream: b"<json>\\0" items as FastChat's model_worker yields them, one every
--stream-interval tokens (default 2, as FastChat's model_worker) and at the end: "text" is the whole
answer so far (with echo, the prompt first, as FastChat's vLLM worker does), "error_code"
0, "usage" {prompt_tokens, completion_tokens, total_tokens} from llama-server's counts,
"finish_reason" null until the last item, which repeats the text with "stop" (end token,
stop string or stop id) or "length" (max_new_tokens or the context is full). Errors are one
item with a FastChat ErrorCode and a text the web UI shows: CONTEXT_OVERFLOW when the
prompt does not fit the context (FastChat's API server's words; FastChat's transformers
worker would cut the prompt's start, template and system prompt with it), PARAM_OUT_OF_RANGE or
VALIDATION_TYPE_ERROR for parameters FastChat's engines would refuse, INTERNAL_ERROR (with
FastChat's SERVER_ERROR_MSG) when llama-server fails. logprobs are not produced (null), as
FastChat's vLLM worker; images are refused (a text model).
"""

import argparse
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import urllib.parse
import uuid

import requests

from fastchat.constants import ErrorCode, SERVER_ERROR_MSG

PROG = "fastchat_lab_llamacpp_worker"
# FastChat's worker logger (fastchat.utils.build_logger("model_worker", ...) configures it).
LOG = logging.getLogger("model_worker")

# FastChat's own defaults (fastchat/serve/inference.py, model_worker.py).
DEFAULT_MAX_NEW_TOKENS = 256
GREEDY_TEMPERATURE = 1e-5
GREEDY_TOP_P = 1e-8

START_SECONDS_ENV = "FASTCHAT_LAB_LLAMACPP_START_SECONDS"
DEFAULT_START_SECONDS = 900
MAX_START_SECONDS = 86400

# The lab's model names (module_utils/lab_plan/grammar.py MODEL_NAME_RE) and paths.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?\Z")
PATH_RE = re.compile(r"^/[A-Za-z0-9._@+/-]*\Z")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\Z")
CONV_TEMPLATE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z")
MAX_CONCURRENCY = 1024
# Tokens per streamed item: FastChat's model_worker's --stream-interval and its default.
# Each item is the whole answer so far, parsed and re-sent by the API server or web UI:
# with 8 or 32 answers streaming on a small host, one item per token is work for nothing.
STREAM_INTERVAL = 2
MAX_STREAM_INTERVAL = 64
MAX_STOP_TOKEN_IDS = 256

# llama-server options the worker sets itself, or that would serve elsewhere, serve another
# model, open the server or take keys: refused in the llama-server command line. llama.cpp
# reads "--a_b" as "--a-b" and knows no "--opt=value" form; both are checked as it reads them.
SERVER_OPTIONS_REFUSED = {
    "--host": "the worker makes llama-server listen on 127.0.0.1 only",
    "--port": "the worker sets llama-server's port from --server-port",
    "--reuse-port": "llama-server's port is the worker's alone",
    "--api-key": "the worker makes llama-server's key; a key on a command line is visible to every process",
    "--api-key-file": "the worker makes llama-server's key file",
    "--api-prefix": "the worker calls llama-server's routes at /",
    "--path": "llama-server serves no files here",
    "--ssl-key-file": "llama-server is reached over 127.0.0.1 only",
    "--ssl-cert-file": "llama-server is reached over 127.0.0.1 only",
    "--models-dir": "the worker serves the one model of --model (no router mode)",
    "--models-preset": "the worker serves the one model of --model (no router mode)",
    "--models-max": "the worker serves the one model of --model (no router mode)",
    "-hf": "the model is the local GGUF of --model (no download)",
    "-hfr": "the model is the local GGUF of --model (no download)",
    "--hf-repo": "the model is the local GGUF of --model (no download)",
    "-hff": "the model is the local GGUF of --model (no download)",
    "--hf-file": "the model is the local GGUF of --model (no download)",
    "-mu": "the model is the local GGUF of --model (no download)",
    "--model-url": "the model is the local GGUF of --model (no download)",
    "-dr": "the model is the local GGUF of --model (no download)",
    "--docker-repo": "the model is the local GGUF of --model (no download)",
}
MODEL_OPTIONS = ("-m", "--model")
PARALLEL_OPTIONS = ("-np", "--parallel")


class ConfigError(Exception):
    """A bad argument or setting, found before anything starts."""

    def __init__(self, what, problem, fix):
        super().__init__("%s: %s. Fix: %s." % (what, problem, fix))


class ParamError(Exception):
    """A generation parameter FastChat's engines would refuse."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class EngineError(Exception):
    """llama-server failed a request: ``code`` is a FastChat ErrorCode, ``text`` for the UI."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
        self.text = text


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def _printable(value):
    return json.dumps(value, ensure_ascii=True)


def _port(flag, text):
    if not re.fullmatch(r"[0-9]{1,5}", text or "") or not 1 <= int(text) <= 65535:
        raise ConfigError(flag, "%s is not a TCP port" % _printable(text),
                          "give an integer from 1 to 65535")
    return int(text)


def _host(text):
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    if not HOSTNAME_RE.match(text):
        raise ConfigError("--host", "%s is not an IP address or a host name" % _printable(text),
                          "give the address to listen on, e.g. 0.0.0.0")
    return text


def _base_url(flag, text):
    """An http(s)://host[:port] URL with nothing else (FastChat appends /register_worker...)."""
    fix = "give http://HOST:PORT (no path, user, query or fragment)"
    if not isinstance(text, str) or any(ord(c) < 0x21 or ord(c) == 0x7f for c in text):
        raise ConfigError(flag, "%s holds spaces or control characters" % _printable(text), fix)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(flag, "%s is not an http(s) URL" % _printable(text), fix)
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(flag, "%s has more than scheme, host and port" % _printable(text), fix)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(flag, "%s has a bad port" % _printable(text), fix) from None
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOSTNAME_RE.match(host):
            raise ConfigError(flag, "%s has a bad host name" % _printable(text), fix) from None
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(flag, "%s has a bad port" % _printable(text), fix)
    return text


def _path(flag, text):
    fix = "give an absolute path of letters, digits and ._@+/- without '..'"
    if not PATH_RE.match(text or "") or ".." in text.split("/") or text == "/":
        raise ConfigError(flag, "%s is not an absolute path of safe characters" % _printable(text), fix)
    return text


def _model_names(text):
    names = (text or "").split(",")
    for name in names:
        if not MODEL_NAME_RE.match(name) or ".." in name:
            raise ConfigError(
                "--model-names", "%s is not a model name" % _printable(name),
                "give comma-separated names of letters, digits and ._- (a letter or digit at "
                "each end, at most 64 characters)")
    if len(set(names)) != len(names):
        raise ConfigError("--model-names", "%s names a model twice" % _printable(text),
                          "give each name once")
    return names


def _count(flag, text, most, what, fix):
    """``text`` as an integer from 1 to ``most``: digits only (no sign, space or newline),
    no more of them than ``most`` has."""
    if not re.fullmatch(r"[0-9]{1,%d}" % len(str(most)), text or "") or not 1 <= int(text) <= most:
        raise ConfigError(flag, "%s is not a number of %s" % (_printable(text), what), fix)
    return int(text)


def _concurrency(text):
    return _count("--limit-worker-concurrency", text, MAX_CONCURRENCY, "requests",
                  "give llama-server's --parallel (its slots), an integer from 1 to %d"
                  % MAX_CONCURRENCY)


def _stream_interval(text):
    return _count("--stream-interval", text, MAX_STREAM_INTERVAL, "tokens",
                  "give an integer from 1 (every token) to %d; FastChat's model_worker takes %d"
                  % (MAX_STREAM_INTERVAL, STREAM_INTERVAL))


def _conv_template(text):
    from fastchat.conversation import conv_templates

    if not CONV_TEMPLATE_RE.match(text or "") or text not in conv_templates:
        raise ConfigError("--conv-template",
                          "%s is not one of FastChat's conversation templates" % _printable(text),
                          "give a name from fastchat.conversation (the catalogue's conv_template)")
    return text


def _option_name(arg):
    """How llama.cpp reads an argument: '--a_b' is '--a-b'; '--opt=value' kept whole."""
    if arg.startswith("--"):
        return "--" + arg[2:].replace("_", "-")
    return arg


def check_server_argv(server_argv, model_path):
    """The llama-server command line after ``--``: an absolute executable, one --model that
    is --model-path, nothing the worker sets itself (SERVER_OPTIONS_REFUSED). Returns the
    --parallel it gives, or None."""
    if not server_argv:
        raise ConfigError("--", "no llama-server command line follows '--'",
                          "end the worker's arguments with "
                          "-- /opt/llamacpp/bin/llama-server --model FILE ...")
    for arg in server_argv:
        if not isinstance(arg, str) or any(c in arg for c in "\0\n\r"):
            raise ConfigError("--", "the llama-server argument %s holds a NUL or a line break"
                              % _printable(arg), "remove it")
    program = server_argv[0]
    _path("-- (llama-server)", program)
    if not os.path.isfile(program) or not os.access(program, os.X_OK):
        raise ConfigError("-- (llama-server)", "%s is not an executable file" % _printable(program),
                          "give the llama-server binary of the image (/opt/llamacpp/bin/llama-server)")
    models, parallel = [], None
    args = server_argv[1:]
    for index, arg in enumerate(args):
        name = _option_name(arg)
        for refused, why in SERVER_OPTIONS_REFUSED.items():
            if name == refused or name.startswith(refused + "="):
                raise ConfigError("-- (llama-server)", "%s is not allowed: %s" % (_printable(arg), why),
                                  "remove it from the llama-server command line")
        if name in MODEL_OPTIONS or name in PARALLEL_OPTIONS:
            if index + 1 >= len(args):
                raise ConfigError("-- (llama-server)", "%s has no value" % arg, "give its value after it")
            value = args[index + 1]
            if name in MODEL_OPTIONS:
                models.append(value)
            else:
                if not re.fullmatch(r"[0-9]{1,4}", value) or not 1 <= int(value) <= MAX_CONCURRENCY:
                    raise ConfigError("-- (llama-server)",
                                      "--parallel %s is not a number of slots" % _printable(value),
                                      "give an integer from 1 to %d" % MAX_CONCURRENCY)
                parallel = int(value)
    if len(models) != 1:
        raise ConfigError("-- (llama-server)", "it gives --model %d times" % len(models),
                          "give --model FILE once, the GGUF of --model-path")
    if models[0] != model_path:
        raise ConfigError("-- (llama-server)",
                          "--model %s is not --model-path %s"
                          % (_printable(models[0]), _printable(model_path)),
                          "give the same GGUF path to both")
    return parallel


# What the worker does with prompts when the GGUF's record says nothing.
NO_RULES = {"prompt_prefix": "", "prompt_normalization": None, "server_args": []}
# llama-server arguments a record may add: metadata overrides only.
OVERRIDE_RE = re.compile(r"[a-z0-9_.]{1,96}=(bool|int|float|str):[A-Za-z0-9_.+-]{1,64}")


def read_rules(path):
    """The serving rules of a GGUF (its record, written by model_weights' fastchat_gguf.py
    from fastchat_lab_prepare.py): how the prompt text must reach llama-server so that it
    gives the model's own token ids. Checked by shape; ConfigError when bad."""
    try:
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ConfigError("--gguf-record", "%s cannot be read as JSON (%s)" % (_printable(path), exc),
                          "re-run the play: model_weights writes it beside the GGUF") from None
    rules = ((record.get("prepare") or {}).get("rules") if isinstance(record, dict) else None) or {}
    if not isinstance(rules, dict):
        raise ConfigError("--gguf-record", "its rules are not a mapping", "re-make the GGUF")
    out = dict(NO_RULES)
    prefix = rules.get("prompt_prefix") or ""
    if prefix not in ("", " "):
        raise ConfigError("--gguf-record", "prompt_prefix %s is not empty or one space"
                          % _printable(prefix), "re-make the GGUF")
    norm = rules.get("prompt_normalization")
    if norm not in (None, "NFC"):
        raise ConfigError("--gguf-record", "prompt_normalization %s is not NFC" % _printable(norm),
                          "re-make the GGUF")
    args = rules.get("server_args") or []
    if not isinstance(args, list) or len(args) % 2 or any(
            args[i] != "--override-kv" or not isinstance(args[i + 1], str)
            or not OVERRIDE_RE.fullmatch(args[i + 1]) for i in range(0, len(args), 2)):
        raise ConfigError("--gguf-record", "server_args %s are not --override-kv KEY=TYPE:VALUE "
                          "pairs" % _printable(args), "re-make the GGUF")
    out.update(prompt_prefix=prefix, prompt_normalization=norm, server_args=list(args))
    return out


def parse_command_line(argv):
    """(args, llama-server argv) from the worker's command line; ConfigError when bad."""
    argv = list(argv)
    if "--" not in argv:
        raise ConfigError("--", "the llama-server command line is missing",
                          "end the worker's arguments with "
                          "-- /opt/llamacpp/bin/llama-server --model FILE ...")
    split = argv.index("--")
    own, server_argv = argv[:split], argv[split + 1:]

    parser = argparse.ArgumentParser(prog=PROG, allow_abbrev=False, add_help=True)
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", default="21002")
    parser.add_argument("--worker-address", default="http://localhost:21002")
    parser.add_argument("--controller-address", default="http://localhost:21001")
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--model-names", default=None)
    parser.add_argument("--conv-template", default=None)
    parser.add_argument("--limit-worker-concurrency", default=None)
    parser.add_argument("--stream-interval", default=str(STREAM_INTERVAL))
    parser.add_argument("--no-register", action="store_true")
    parser.add_argument("--server-port", required=True)
    parser.add_argument("--gguf-record", default=None)
    try:
        args = parser.parse_args(own)
    except SystemExit as exc:
        raise ConfigError("arguments", "argparse refused them (see above)",
                          "give the flags of `%s --help`" % PROG) from exc

    args.host = _host(args.host)
    args.port = _port("--port", args.port)
    args.server_port = _port("--server-port", args.server_port)
    if args.server_port == args.port:
        raise ConfigError("--server-port", "%d is also the worker's --port" % args.port,
                          "give llama-server a port of its own (the plan uses 8090)")
    args.worker_address = _base_url("--worker-address", args.worker_address)
    args.controller_address = _base_url("--controller-address", args.controller_address)
    args.model_path = _path("--model-path", args.model_path)
    args.model_names = _model_names(args.model_names) if args.model_names is not None else None
    if args.conv_template is not None:
        args.conv_template = _conv_template(args.conv_template)
    else:
        try:
            import fastchat.model.model_adapter  # noqa: F401  (needs torch and transformers)
        except Exception as exc:  # ImportError, or what a half-installed torch raises
            raise ConfigError(
                "--conv-template",
                "it is not given, and FastChat chooses a template by model path only through "
                "fastchat.model.model_adapter, which cannot be imported here (%s)" % type(exc).__name__,
                "give --conv-template NAME (the catalogue's conv_template)") from None
    if args.limit_worker_concurrency is not None:
        args.limit_worker_concurrency = _concurrency(args.limit_worker_concurrency)
    args.stream_interval = _stream_interval(args.stream_interval)
    args.rules = read_rules(_path("--gguf-record", args.gguf_record)) \
        if args.gguf_record is not None else dict(NO_RULES)
    parallel = check_server_argv(server_argv, args.model_path)
    server_argv = server_argv + args.rules["server_args"]
    if (parallel is not None and args.limit_worker_concurrency is not None
            and parallel != args.limit_worker_concurrency):
        raise ConfigError("--limit-worker-concurrency",
                          "%d is not llama-server's --parallel %d"
                          % (args.limit_worker_concurrency, parallel),
                          "give both the same number: FastChat queues requests beyond llama-server's slots")
    return args, server_argv


def start_seconds(environ):
    text = environ.get(START_SECONDS_ENV)
    if text is None:
        return DEFAULT_START_SECONDS
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= MAX_START_SECONDS:
        raise ConfigError(START_SECONDS_ENV, "%s is not a number of seconds" % _printable(text),
                          "give an integer from 1 to %d, or unset it (default %d)"
                          % (MAX_START_SECONDS, DEFAULT_START_SECONDS))
    return int(text)


def child_environment(environ):
    """llama-server's environment: the worker's, less what llama.cpp would read as options
    (LLAMA_ARG_*) or as an API key (LLAMA_API_KEY). Returns (env, names removed)."""
    removed = sorted(k for k in environ if k == "LLAMA_API_KEY" or k.startswith("LLAMA_ARG_"))
    return {k: v for k, v in environ.items() if k not in removed}, removed


# --------------------------------------------------------------------------------------
# llama-server
# --------------------------------------------------------------------------------------

def make_key_file():
    """(directory, path, key): a fresh key in a 0600 file inside a new 0700 directory."""
    key = secrets.token_urlsafe(32)
    directory = tempfile.mkdtemp(prefix="fastchat-lab-llamacpp-")
    path = os.path.join(directory, "api-key")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key + "\n")
    return directory, path, key


def _die_with_parent():
    """In llama-server, before exec: SIGTERM when the worker dies, however it dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the worker's own cleanup still stops it
        pass


class LlamaServer:
    """The llama-server process and its HTTP API on 127.0.0.1, with the key."""

    def __init__(self, port, key):
        self.base = "http://127.0.0.1:%d" % port
        self.__key = key
        self._local = threading.local()
        self._public = requests.Session()
        self._public.trust_env = False
        self.process = None

    def __repr__(self):
        return "LlamaServer(%s)" % self.base

    def _session(self):
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxy from the environment sees the key
            session.headers["Authorization"] = "Bearer " + self.__key
            self._local.session = session
        return session

    def start(self, argv, key_path, environ):
        command = list(argv) + ["--host", "127.0.0.1", "--port", self.base.rsplit(":", 1)[1],
                                "--api-key-file", key_path]
        self.process = subprocess.Popen(command, env=environ, stdin=subprocess.DEVNULL,
                                        close_fds=True, preexec_fn=_die_with_parent)
        return command

    def health(self):
        """The HTTP status of /health (public, no key), or None when nothing answers."""
        try:
            return self._public.get(self.base + "/health", timeout=5).status_code
        except requests.RequestException:
            return None

    def get(self, path, timeout=30):
        response = self._session().get(self.base + path, timeout=timeout)
        return response.status_code, _json_or_none(response)

    def post(self, path, body, timeout=30):
        response = self._session().post(self.base + path, json=body, timeout=timeout)
        return response.status_code, _json_or_none(response)

    def stream(self, body, timeout=(10, 600)):
        return self._session().post(self.base + "/completion", json=body, stream=True, timeout=timeout)

    def stop(self, grace=10):
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def sse_events(response):
    """The JSON objects of a llama-server SSE stream ("data: {...}" lines; ':' pings and
    blank lines skipped), as they arrive."""
    buffer = b""
    for chunk in response.iter_content(chunk_size=None):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            line = line.rstrip(b"\r")
            if line.startswith(b"data:"):
                yield json.loads(line[5:].decode("utf-8"))
    line = buffer.strip()
    if line.startswith(b"data:"):
        yield json.loads(line[5:].decode("utf-8"))


def engine_error(status, payload):
    """EngineError for a llama-server error answer ({"error": {...}} or anything else)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {"message": "HTTP %s" % status}
    if error.get("type") == "exceed_context_size_error":
        return EngineError(
            ErrorCode.CONTEXT_OVERFLOW,
            "This model's maximum context length is %s tokens. However, your messages resulted "
            "in %s tokens. Please reduce the length of the messages."
            % (error.get("n_ctx", "?"), error.get("n_prompt_tokens", "?")))
    text = "%s\n\n(llama-server: %s)" % (SERVER_ERROR_MSG, str(error.get("message", ""))[:500])
    if status == 503:
        return EngineError(ErrorCode.ENGINE_OVERLOADED, text)
    return EngineError(ErrorCode.INTERNAL_ERROR, text)


# --------------------------------------------------------------------------------------
# FastChat params -> /completion
# --------------------------------------------------------------------------------------

def _number(params, name, default, low=None, high=None, low_open=False):
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:  # FastChat's transformers worker reads float(...): "0.7" is a number
            value = float(value) if isinstance(value, str) and value.strip() else None
        except ValueError:
            value = None
        if value is None:
            raise ParamError(ErrorCode.VALIDATION_TYPE_ERROR,
                             "%s: %s is not a number" % (name, _printable(params.get(name))))
    value = float(value)
    out_of_range = ErrorCode.PARAM_OUT_OF_RANGE
    if not math.isfinite(value):
        raise ParamError(out_of_range, "%s: %s is not a finite number" % (name, value))
    if low is not None and (value <= low if low_open else value < low):
        raise ParamError(out_of_range, "%s: %s is below the minimum of %s" % (name, value, low))
    if high is not None and value > high:
        raise ParamError(out_of_range, "%s: %s is above the maximum of %s" % (name, value, high))
    return value


def _integer(params, name, default):
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)  # FastChat's vLLM worker defaults top_k to -1.0
    elif isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]{1,10}\s*", value):
        value = int(value)  # FastChat's transformers worker reads int(...)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(ErrorCode.VALIDATION_TYPE_ERROR,
                         "%s: %s is not an integer" % (name, _printable(value)))
    return value


def sampling(params, context_len, n_vocab):
    """The /completion sampling fields and n_predict for FastChat's ``params``. Bounds:
    FastChat's API server's (temperature >= 0, top_p in [0, 1]) and its vLLM worker's
    (presence and frequency penalties in [-2, 2]); repetition_penalty > 0 as transformers
    wants it, at most 10."""
    temperature = _number(params, "temperature", 1.0, low=0.0)
    top_p = _number(params, "top_p", 1.0, low=0.0, high=1.0)
    top_k = _integer(params, "top_k", -1)
    repetition_penalty = _number(params, "repetition_penalty", 1.0, low=0.0, high=10.0, low_open=True)
    presence_penalty = _number(params, "presence_penalty", 0.0, low=-2.0, high=2.0)
    frequency_penalty = _number(params, "frequency_penalty", 0.0, low=-2.0, high=2.0)
    max_new_tokens = _integer(params, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    if max_new_tokens < 1:
        raise ParamError(ErrorCode.PARAM_OUT_OF_RANGE,
                         "max_new_tokens: %d is less than the minimum of 1" % max_new_tokens)
    greedy = temperature < GREEDY_TEMPERATURE or top_p < GREEDY_TOP_P
    fields = {
        "n_predict": min(max_new_tokens, context_len),
        "temperature": 0.0 if greedy else temperature,
        "top_k": 1 if greedy else (min(top_k, n_vocab) if top_k > 0 else 0),
        "top_p": 1.0 if greedy else top_p,
        "repeat_penalty": repetition_penalty,
        "presence_penalty": presence_penalty,
        "frequency_penalty": frequency_penalty,
        "samplers": ["penalties", "temperature", "top_k", "top_p"],
    }
    return fields


def stop_conditions(params, n_vocab):
    """(stop strings, stop token ids) of FastChat's ``params``; ids outside the vocabulary
    can never be generated and are left out."""
    stop = params.get("stop")
    if stop is None:
        strings = []
    elif isinstance(stop, str):
        strings = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop):
        strings = list(stop)
    else:
        raise ParamError(ErrorCode.VALIDATION_TYPE_ERROR,
                         "stop: %s is not a string or a list of strings" % _printable(stop)[:200])
    strings = list(dict.fromkeys(s for s in strings if s))
    ids = params.get("stop_token_ids")
    if ids is None:
        ids = []
    if (not isinstance(ids, (list, tuple))
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        raise ParamError(ErrorCode.VALIDATION_TYPE_ERROR,
                         "stop_token_ids: %s is not a list of integers" % _printable(ids)[:200])
    if len(ids) > MAX_STOP_TOKEN_IDS:
        raise ParamError(ErrorCode.PARAM_OUT_OF_RANGE,
                         "stop_token_ids: %d ids, more than %d" % (len(ids), MAX_STOP_TOKEN_IDS))
    ids = list(dict.fromkeys(i for i in ids if 0 <= i < n_vocab))
    return strings, ids


def echo_flag(params):
    echo = params.get("echo", True)  # FastChat's default
    if echo is None:
        return False  # FastChat: bool(None)
    if not isinstance(echo, bool):
        raise ParamError(ErrorCode.VALIDATION_TYPE_ERROR, "echo: %s is not true or false" % _printable(echo))
    return echo


def _item(payload):
    return json.dumps(payload).encode() + b"\0"


def _answer(text, usage, finish_reason):
    return _item({"text": text, "error_code": 0, "usage": usage, "finish_reason": finish_reason})


def unreachable_text(exc):
    return "%s\n\n(llama-server: %s)" % (SERVER_ERROR_MSG, type(exc).__name__)


def error_item(code, text):
    return _item({"text": text, "error_code": int(code)})


class Engine:
    """FastChat's generation API over one llama-server. Mixed into BaseModelWorker."""

    def init_engine(self, server, context_len, n_vocab, rules=None, stream_interval=1):
        self.rules = dict(NO_RULES, **(rules or {}))
        self.stream_interval = stream_interval
        self.server = server
        self.context_len = context_len
        self.n_vocab = n_vocab
        self._tokens = {}  # token id -> (text, special)
        self._tokens_lock = threading.Lock()

    def make_conv_template(self, conv_template=None, model_path=None):
        """BaseModelWorker's choice without its unconditional import of
        fastchat.model.model_adapter (torch): the named template, else FastChat's choice by
        model path (main refuses to start without a name where that cannot be imported)."""
        if conv_template:
            from fastchat.conversation import get_conv_template

            return get_conv_template(conv_template)
        from fastchat.model.model_adapter import get_conversation_template

        return get_conversation_template(model_path)

    # ----- tokens -----
    def token_info(self, token):
        """(text, special) of a token id: its text as /detokenize writes it, and whether it
        is a special token (the text parses back to it only with special tokens parsed)."""
        with self._tokens_lock:
            if token in self._tokens:
                return self._tokens[token]
        text = self.detokenize([token])
        special = False
        if text:
            special = (self.tokenize(text, parse_special=True) == [token]
                       and self.tokenize(text, parse_special=False) != [token])
        with self._tokens_lock:
            self._tokens[token] = (text, special)
        return text, special

    def tokenize(self, text, parse_special=True, add_special=False):
        status, payload = self.server.post("/tokenize", {"content": text, "add_special": add_special,
                                                         "parse_special": parse_special})
        if status != 200 or not isinstance(payload, dict) or not isinstance(payload.get("tokens"), list):
            raise engine_error(status, payload)
        return payload["tokens"]

    def detokenize(self, tokens):
        status, payload = self.server.post("/detokenize", {"tokens": list(tokens)})
        if status != 200 or not isinstance(payload, dict) or not isinstance(payload.get("content"), str):
            raise engine_error(status, payload)
        return payload["content"]

    # ----- FastChat's worker API -----
    def count_token(self, params):
        prompt = params.get("prompt")
        if not isinstance(prompt, str):
            return {"count": 0, "error_code": int(ErrorCode.VALIDATION_TYPE_ERROR)}
        # As /completion tokenizes a prompt: BOS when the model wants one, specials parsed.
        return {"count": len(self.tokenize(self.as_sent(prompt), parse_special=True,
                                           add_special=True)), "error_code": 0}

    def as_sent(self, prompt):
        """FastChat's prompt text as llama-server must get it to tokenize it as the model's own
        tokenizer does (the GGUF's record: fastchat_lab_prepare.py's rules)."""
        if self.rules["prompt_normalization"] == "NFC":
            prompt = unicodedata.normalize("NFC", prompt)
        return self.rules["prompt_prefix"] + prompt

    def completion_body(self, params):
        """(the /completion request, the stop ids the worker checks itself, echo prefix)."""
        prompt = params.get("prompt")
        if not isinstance(prompt, str):
            raise ParamError(ErrorCode.VALIDATION_TYPE_ERROR, "prompt: not a string")
        if params.get("images"):
            raise ParamError(ErrorCode.PARAM_OUT_OF_RANGE, "images: this model reads text only")
        fields = sampling(params, self.context_len, self.n_vocab)
        strings, ids = stop_conditions(params, self.n_vocab)
        prefix = prompt if echo_flag(params) else ""
        preserved, local_ids = [], set()
        for token in ids:
            text, special = self.token_info(token)
            if special:
                preserved.append(text)
                if text not in strings:
                    strings.append(text)
            else:
                local_ids.add(token)
        body = {"prompt": self.as_sent(prompt), "stream": True, "cache_prompt": True,
                "return_tokens": True}
        body.update(fields)
        if strings:
            body["stop"] = strings
        if preserved:
            body["preserved_tokens"] = preserved
        return body, local_ids, prefix

    def generate_stream_gate(self, params):
        self.call_ct += 1
        try:
            body, local_ids, prefix = self.completion_body(params)
        except ParamError as exc:
            yield error_item(exc.code, str(exc))
            return
        except EngineError as exc:
            yield error_item(exc.code, exc.text)
            return
        except requests.RequestException as exc:
            LOG.error("llama-server did not answer: %s: %s", type(exc).__name__, exc)
            yield error_item(ErrorCode.INTERNAL_ERROR, unreachable_text(exc))
            return
        try:
            yield from self._stream(body, local_ids, prefix)
        except EngineError as exc:
            yield error_item(exc.code, exc.text)
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            LOG.error("llama-server stream failed: %s: %s", type(exc).__name__, exc)
            yield error_item(ErrorCode.INTERNAL_ERROR, unreachable_text(exc))

    def _stream(self, body, local_ids, prefix):
        response = self.server.stream(body)
        try:
            if response.status_code != 200:
                error = engine_error(response.status_code, _json_or_none(response))
                if error.code != ErrorCode.CONTEXT_OVERFLOW:
                    LOG.error("llama-server refused a completion: HTTP %s: %s", response.status_code,
                              error.text.rsplit("\n\n", 1)[-1])
                raise error
            text, sent = "", None
            unsent = 0  # tokens streamed since the last item
            usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
            withheld = []  # tokens whose text llama-server holds back (possible stop string)
            finish_reason = None
            for event in sse_events(response):
                if "error" in event:
                    LOG.error("llama-server failed a completion: %s", json.dumps(event)[:500])
                    raise engine_error(500, event)
                prompt_tokens = int(event.get("tokens_evaluated") or 0)
                completion_tokens = int(event.get("tokens_predicted") or 0)
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens}
                content = event.get("content") or ""
                tokens = event.get("tokens") or []
                unsent += len(tokens) or 1
                hit = next((i for i, t in enumerate(tokens) if t in local_ids), None)
                if hit is not None:
                    text += self._text_before_stop(content, tokens[:hit], tokens[hit], withheld)
                    finish_reason = "stop"
                    break
                if content:
                    text += content
                    withheld = []
                else:
                    withheld.extend(tokens)
                if event.get("stop"):
                    if event.get("stop_type") == "limit":
                        # llama-server's stream drops what it held back as a possible stop
                        # string when the tokens run out; FastChat's answer has it.
                        text += self._withheld_text(withheld)
                        finish_reason = "length"
                    else:
                        finish_reason = "stop"
                    break
                if text != sent and unsent >= self.stream_interval:
                    sent, unsent = text, 0
                    yield _answer(prefix + text, usage, None)
            if finish_reason is None:  # the stream ended without its last event
                raise EngineError(ErrorCode.INTERNAL_ERROR,
                                  "%s\n\n(llama-server ended the answer early)" % SERVER_ERROR_MSG)
            if text != sent:
                yield _answer(prefix + text, usage, None)
            yield _answer(prefix + text, usage, finish_reason)
        finally:
            response.close()  # before the end: llama-server sees the connection go and cancels

    def _text_before_stop(self, content, before, stop_token, withheld):
        """The answer's text that precedes a stop id: what llama-server held back, then the
        event's text without the stop token's own."""
        if not content:
            return self._withheld_text(list(withheld) + list(before))
        stop_text = self.token_info(stop_token)[0]
        if stop_text and content.endswith(stop_text):
            return content[:-len(stop_text)]
        return content

    def _withheld_text(self, tokens):
        """The text of tokens llama-server streamed as "" (held back), less special tokens,
        which it writes as nothing."""
        plain = [t for t in tokens if not self.token_info(t)[1]]
        return self.detokenize(plain) if plain else ""

    def generate_gate(self, params):
        for item in self.generate_stream_gate(params):
            pass
        return json.loads(item[:-1].decode())


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------

def wait_until_ready(server, deadline, on_first_answer):
    """Until /health answers 200: True; False at the deadline; raises ServerExited."""
    answered = False
    while True:
        code = server.process.poll()
        if code is not None:
            raise ServerExited(code)
        status = server.health()
        if status is not None and not answered:
            answered = True
            on_first_answer()
        if status == 200:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


def exit_status(code):
    """How a process ended, in words: "exited with status 3", "was killed by SIGKILL"."""
    if code is not None and code < 0:
        try:
            return "was killed by %s" % signal.Signals(-code).name
        except ValueError:
            return "was killed by signal %d" % -code
    return "exited with status %s" % code


class ServerExited(Exception):
    def __init__(self, code):
        super().__init__("llama-server %s" % exit_status(code))
        self.code = code


def server_facts(server):
    """(context per slot, slots, vocabulary size) from /props and /v1/models."""
    status, props = server.get("/props")
    if status != 200 or not isinstance(props, dict):
        raise RuntimeError("llama-server /props answered %s" % status)
    context = props.get("default_generation_settings", {}).get("n_ctx")
    slots = props.get("total_slots")
    status, models = server.get("/v1/models")
    if status != 200 or not isinstance(models, dict):
        raise RuntimeError("llama-server /v1/models answered %s" % status)
    try:
        n_vocab = models["data"][0]["meta"]["n_vocab"]
    except (KeyError, IndexError, TypeError):
        n_vocab = None
    for name, value in (("n_ctx", context), ("total_slots", slots), ("n_vocab", n_vocab)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RuntimeError("llama-server gave no usable %s (%r)" % (name, value))
    return context, slots, n_vocab


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def main(argv):
    own = argv[:argv.index("--")] if "--" in argv else list(argv)
    if "-h" in own or "--help" in own:
        print(__doc__.strip())
        return 0
    try:
        args, server_argv = parse_command_line(argv)
        start_limit = start_seconds(os.environ)
    except ConfigError as exc:
        print("%s: error: %s" % (PROG, exc), file=sys.stderr, flush=True)
        return 2
    try:
        import uvicorn
        from fastchat.serve import base_model_worker
        from fastchat.utils import build_logger
    except ImportError as exc:
        print("%s: error: FastChat's worker needs %s, which is not installed. Fix: run it in "
              "the image's /opt/fastchat/venv." % (PROG, exc.name), file=sys.stderr, flush=True)
        return 2

    worker_id = str(uuid.uuid4())[:8]
    log = build_logger("model_worker", "model_worker_%s.log" % worker_id)
    base_model_worker.logger = log
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGINT, _raise_exit)

    environ, removed = child_environment(os.environ)
    if removed:
        log.warning("not passed to llama-server (llama.cpp would read them as options): %s",
                    ", ".join(removed))
    key_dir, key_path, key = make_key_file()
    server = LlamaServer(args.server_port, key)
    del key
    exit_code = 0
    state = {"stopping": False, "died": None}
    try:
        command = server.start(server_argv, key_path, environ)
        log.info("started llama-server (pid %d): %s", server.process.pid, " ".join(command))
        deadline = time.monotonic() + start_limit

        def forget_key_file():
            shutil.rmtree(key_dir, ignore_errors=True)

        if not wait_until_ready(server, deadline, forget_key_file):
            log.error("llama-server did not become ready within %d s (%s); stopping. Fix: give "
                      "it more time with %s, or look above for why it is slow", start_limit,
                      START_SECONDS_ENV, START_SECONDS_ENV)
            return 1
        try:
            context, slots, n_vocab = server_facts(server)
        except (RuntimeError, requests.RequestException) as exc:
            log.error("cannot read llama-server's settings: %s; stopping", exc)
            return 1
        log.info("llama-server is ready: %d slots of %d tokens, vocabulary %d", slots, context, n_vocab)
        limit = args.limit_worker_concurrency
        if limit is None:
            limit = slots
        elif limit != slots:
            log.error("--limit-worker-concurrency %d is not llama-server's %d slots. Fix: give "
                      "llama-server --parallel %d, or the worker --limit-worker-concurrency %d",
                      limit, slots, limit, slots)
            return 2

        class LlamaCppWorker(Engine, base_model_worker.BaseModelWorker):
            def __init__(self):
                super().__init__(args.controller_address, args.worker_address, worker_id,
                                 args.model_path, args.model_names, limit,
                                 conv_template=args.conv_template)
                self.init_engine(server, context, n_vocab, args.rules, args.stream_interval)

        worker = LlamaCppWorker()
        base_model_worker.worker = worker
        log.info("serving %s (template %s) on %s:%d", worker.model_names, worker.conv.name,
                 args.host, args.port)
        for token in worker.conv.stop_token_ids or []:
            if not 0 <= token < n_vocab:
                log.warning("stop token %d of template %s is not in the model's vocabulary (%d tokens)",
                            token, worker.conv.name, n_vocab)
                continue
            try:
                text, special = worker.token_info(token)
            except (EngineError, requests.RequestException) as exc:
                log.warning("cannot look up stop token %d yet (%s)", token, exc)
                continue
            log.info("stop token %d %s: %s", token, json.dumps(text),
                     "a stop string for llama-server" if special else "checked by id in the stream")

        config = uvicorn.Config(base_model_worker.app, host=args.host, port=args.port, log_level="info")
        web = uvicorn.Server(config)

        def watch_llama_server():
            code = server.process.wait()
            if state["stopping"]:
                return
            state["died"] = code
            log.error("llama-server %s; the worker stops (the container restarts it). Look above "
                      "for llama-server's last lines.", exit_status(code))
            web.should_exit = True
            time.sleep(30)
            os._exit(1)  # uvicorn did not stop in time

        def register():
            while not web.started and not web.should_exit:
                time.sleep(0.1)
            if args.no_register:
                return
            while not web.should_exit:
                try:
                    worker.init_heart_beat()
                    return
                except Exception as exc:  # FastChat asserts 200; requests raises when down
                    log.error("cannot register with the controller %s (%s: %s); retrying in 5 s",
                              args.controller_address, type(exc).__name__, str(exc)[:200])
                    time.sleep(5)

        threading.Thread(target=watch_llama_server, name="llama-server", daemon=True).start()
        threading.Thread(target=register, name="register", daemon=True).start()
        web.run()
        if state["died"] is not None:
            exit_code = 1
        elif not web.started:
            exit_code = 1
        return exit_code
    except ServerExited as exc:
        log.error("%s before it was ready; the worker stops. Look above for llama-server's "
                  "last lines.", exc)
        return 1
    finally:
        state["stopping"] = True
        shutil.rmtree(key_dir, ignore_errors=True)
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
