"""The llama.cpp worker (roles/fastchat_image/files/fastchat_lab_llamacpp_worker.py): FastChat's
worker protocol in front of llama-server.

- Its checks and translations, in this process (the module imports no FastChat server code
  until it runs).
- The worker as the lab runs it: `python -m fastchat_lab_llamacpp_worker ... -- LLAMA_SERVER...`
  in a venv with FastChat 0.2.36 (--no-deps, as the image's llama.cpp stacks have it, no
  torch) and the image's fastapi/uvicorn/pydantic pins (the stack's constraints.txt), made
  once and kept under .cache/llamacpp-worker-venv/<hash of its inputs>; FastChat's real
  controller (fastchat.serve.controller); a stand-in llama-server
  (tests/fixtures/fake_llama_server.py) that checks the key and streams as the real one.
- The real llama-server (/tmp/llama/build/bin, the CPU build of the pinned commit) on a tiny
  random-weight GGUF made from llama.cpp's own Qwen vocabulary file
  (tests/fixtures/make_tiny_qwen2_gguf.py); skipped when the build or the sdist is absent.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = os.path.join(ROOT, "roles", "fastchat_image", "files")
WORKER_FILE = os.path.join(FILES, "fastchat_lab_llamacpp_worker.py")
STACKS = os.path.join(FILES, "stacks")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
FAKE_SERVER = os.path.join(FIXTURES, "fake_llama_server.py")
CACHE = os.path.join(ROOT, ".cache")

LLAMA_TREE = os.environ.get("FASTCHAT_LAB_LLAMACPP_TREE",
                            "/tmp/llama/llama_cpp_python-0.3.36/vendor/llama.cpp")
LLAMA_SERVER = os.environ.get("FASTCHAT_LAB_LLAMA_SERVER", "/tmp/llama/build/bin/llama-server")

MODEL = "tiny-chat"
MODEL_PATH = "/models/tiny-chat-0123456789ab-q8_0-llamacpp-0c1e57098b.gguf"
VENV_PACKAGES = ["fastapi", "uvicorn", "pydantic", "requests", "shortuuid", "numpy"]
DECOY_KEY = "decoy-key-from-the-environment"


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


W = load("fastchat_lab_llamacpp_worker", WORKER_FILE)
FAKE = load("fake_llama_server", FAKE_SERVER)


# ======================================================================================
# In this process: the command line, the environment, the parameters.
# ======================================================================================

TRUE = shutil.which("true")


def command(server=None, **flags):
    argv = ["--model-path", MODEL_PATH, "--model-names", MODEL, "--host", "0.0.0.0",
            "--port", "21002", "--worker-address", "http://gpu01:21002",
            "--controller-address", "http://head:21001", "--conv-template", "qwen-7b-chat",
            "--limit-worker-concurrency", "4", "--server-port", "8090"]
    for flag, value in flags.items():
        flag = "--" + flag.replace("_", "-")
        if flag in argv:
            index = argv.index(flag)
            if value is None:
                del argv[index:index + 2]
            else:
                argv[index + 1] = value
        elif value is not None:
            argv += [flag, value]
    if server is None:
        server = [TRUE, "--model", MODEL_PATH, "--ctx-size", "8192", "--parallel", "4", "--no-webui"]
    return argv + ["--"] + server


def test_the_lab_command_line_is_accepted():
    args, server = W.parse_command_line(command())
    assert (args.host, args.port, args.server_port, args.model_names, args.limit_worker_concurrency,
            args.conv_template, args.stream_interval) == (
        "0.0.0.0", 21002, 8090, [MODEL], 4, "qwen-7b-chat", 2)
    assert server == [TRUE, "--model", MODEL_PATH, "--ctx-size", "8192", "--parallel", "4", "--no-webui"]


DEFAULT = object()  # the lab's llama-server command line
HOSTILE = [
    # (what, worker flags, llama-server argv, expected text in the error)
    ("nothing after --", {}, [], "--: no llama-server command line follows '--'"),
    ("relative llama-server", {}, ["llama-server", "--model", MODEL_PATH], "is not an absolute path"),
    ("llama-server with ..", {}, ["/usr/../bin/true", "--model", MODEL_PATH], "is not an absolute path"),
    ("llama-server not executable", {}, [FAKE_SERVER, "--model", MODEL_PATH], "is not an executable file"),
    ("--host in llama-server", {}, [TRUE, "--model", MODEL_PATH, "--host", "0.0.0.0"],
     '"--host" is not allowed'),
    ("--host=", {}, [TRUE, "--model", MODEL_PATH, "--host=0.0.0.0"], '"--host=0.0.0.0" is not allowed'),
    ("--port in llama-server", {}, [TRUE, "--model", MODEL_PATH, "--port", "80"], '"--port" is not allowed'),
    ("--api-key", {}, [TRUE, "--model", MODEL_PATH, "--api-key", "k"], '"--api-key" is not allowed'),
    ("--api_key as llama.cpp reads it", {}, [TRUE, "--model", MODEL_PATH, "--api_key", "k"],
     '"--api_key" is not allowed'),
    ("--api-key-file", {}, [TRUE, "--model", MODEL_PATH, "--api-key-file", "/etc/passwd"],
     '"--api-key-file" is not allowed'),
    ("--api-prefix", {}, [TRUE, "--model", MODEL_PATH, "--api-prefix", "/x"],
     '"--api-prefix" is not allowed'),
    ("download -hf", {}, [TRUE, "-hf", "org/model"], '"-hf" is not allowed'),
    ("router mode", {}, [TRUE, "--models-dir", "/models"], '"--models-dir" is not allowed'),
    ("no --model", {}, [TRUE, "--ctx-size", "8192"], "it gives --model 0 times"),
    ("two --model", {}, [TRUE, "-m", MODEL_PATH, "--model", MODEL_PATH], "it gives --model 2 times"),
    ("--model is not --model-path", {}, [TRUE, "--model", "/models/other.gguf"], "is not --model-path"),
    ("--model without value", {}, [TRUE, "--model"], "--model has no value"),
    ("newline in a llama-server argument", {}, [TRUE, "--model", MODEL_PATH, "--alias", "a\nb"],
     "holds a NUL or a line break"),
    ("--parallel not a number", {}, [TRUE, "--model", MODEL_PATH, "--parallel", "4;reboot"],
     "is not a number of slots"),
    ("--parallel is not the concurrency", {}, [TRUE, "--model", MODEL_PATH, "--parallel", "8"],
     "--limit-worker-concurrency: 4 is not llama-server's --parallel 8"),
    ("port 0", {"port": "0"}, DEFAULT, "--port: \"0\" is not a TCP port"),
    ("port 65536", {"port": "65536"}, DEFAULT, "--port: \"65536\" is not a TCP port"),
    ("port with a newline", {"port": "21002\n"}, DEFAULT, "is not a TCP port"),
    ("server port is the worker's", {"server_port": "21002"}, DEFAULT,
     "--server-port: 21002 is also the worker's --port"),
    ("host with a space", {"host": "0.0.0.0 evil"}, DEFAULT,
     "--host: \"0.0.0.0 evil\" is not an IP address or a host name"),
    ("worker address with a path", {"worker_address": "http://gpu01:21002/x"}, DEFAULT,
     "has more than scheme, host and port"),
    ("worker address with credentials", {"worker_address": "http://u:p@gpu01:21002"}, DEFAULT,
     "has more than scheme, host and port"),
    ("controller address not http", {"controller_address": "file:///etc/passwd"}, DEFAULT,
     "is not an http(s) URL"),
    ("controller address with a space", {"controller_address": "http://head :21001"}, DEFAULT,
     "holds spaces or control characters"),
    ("controller address bad port", {"controller_address": "http://head:99999"}, DEFAULT, "has a bad port"),
    ("model path with ..", {"model_path": "/models/../etc/x.gguf"}, DEFAULT, "--model-path: "),
    ("model path with a semicolon", {"model_path": "/models/x;rm.gguf"}, DEFAULT, "--model-path: "),
    ("model path relative", {"model_path": "models/x.gguf"}, DEFAULT, "--model-path: "),
    ("model name with a slash", {"model_names": "org/model"}, DEFAULT,
     "--model-names: \"org/model\" is not a model name"),
    ("model name with ..", {"model_names": "a..b"}, DEFAULT, "is not a model name"),
    ("empty model name", {"model_names": "a,,b"}, DEFAULT, "is not a model name"),
    ("model named twice", {"model_names": "a,a"}, DEFAULT, "names a model twice"),
    ("unknown template", {"conv_template": "no-such-template"}, DEFAULT,
     "--conv-template: \"no-such-template\" is not one of"),
    ("concurrency 0", {"limit_worker_concurrency": "0"}, DEFAULT,
     "--limit-worker-concurrency: \"0\" is not a number"),
    ("concurrency huge", {"limit_worker_concurrency": "100000"}, DEFAULT, "is not a number of requests"),
    ("concurrency with a space", {"limit_worker_concurrency": "4 "}, DEFAULT, "is not a number of requests"),
    ("stream interval 0", {"stream_interval": "0"}, DEFAULT,
     "--stream-interval: \"0\" is not a number of tokens"),
    ("stream interval huge", {"stream_interval": "65"}, DEFAULT, "is not a number of tokens"),
    ("stream interval negative", {"stream_interval": "-2"}, DEFAULT, "is not a number of tokens"),
    ("stream interval with a newline", {"stream_interval": "2\n"}, DEFAULT, "is not a number of tokens"),
    ("unknown worker flag", {"seed": "1"}, DEFAULT, "arguments: argparse refused them"),
    ("abbreviated flag", {"no_reg": "x"}, DEFAULT, "arguments: argparse refused them"),
]


@pytest.mark.parametrize("what,flags,server,expected", HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_command_lines_are_refused(what, flags, server, expected, capsys):
    argv = command(server=None if server is DEFAULT else server, **flags)
    with pytest.raises(W.ConfigError) as error:
        W.parse_command_line(argv)
    message = str(error.value)
    assert expected in message
    assert ". Fix: " in message and message.endswith(".")


def test_a_command_line_without_llama_server_is_refused():
    argv = command()
    with pytest.raises(W.ConfigError, match="^--: the llama-server command line is missing. Fix: "):
        W.parse_command_line(argv[:argv.index("--")])


@pytest.mark.parametrize("value,expected", [
    (None, 900), ("1", 1), ("86400", 86400)])
def test_start_seconds(value, expected):
    env = {} if value is None else {W.START_SECONDS_ENV: value}
    assert W.start_seconds(env) == expected


@pytest.mark.parametrize("value", ["0", "86401", "nan", "1e3", "-5", " 60", "60\n", ""])
def test_bad_start_seconds_are_refused(value):
    expected = "^FASTCHAT_LAB_LLAMACPP_START_SECONDS: .* is not a number of seconds. Fix: "
    with pytest.raises(W.ConfigError, match=expected):
        W.start_seconds({W.START_SECONDS_ENV: value})


def test_llama_server_gets_no_key_or_option_from_the_environment():
    env, removed = W.child_environment({"PATH": "/bin", "LLAMA_API_KEY": "k", "LLAMA_ARG_HOST": "0.0.0.0",
                                        "LLAMA_ARG_API_KEY_FILE": "/f", "LLAMA_CACHE": "/c",
                                        "CUDA_VISIBLE_DEVICES": "0"})
    assert env == {"PATH": "/bin", "LLAMA_CACHE": "/c", "CUDA_VISIBLE_DEVICES": "0"}
    assert removed == ["LLAMA_API_KEY", "LLAMA_ARG_API_KEY_FILE", "LLAMA_ARG_HOST"]


def test_the_key_file_is_private():
    directory, path, key = W.make_key_file()
    try:
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as fh:
            assert fh.read() == key + "\n"
        assert len(key) >= 40
    finally:
        shutil.rmtree(directory)


def test_two_keys_differ():
    first, second = W.make_key_file(), W.make_key_file()
    try:
        assert first[2] != second[2] and first[0] != second[0]
    finally:
        shutil.rmtree(first[0])
        shutil.rmtree(second[0])


@pytest.mark.parametrize("params,expected", [
    # FastChat's defaults: temperature 1, top_p 1, top_k off, 256 new tokens.
    ({}, {"n_predict": 256, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "repeat_penalty": 1.0,
          "presence_penalty": 0.0, "frequency_penalty": 0.0}),
    ({"temperature": 0, "top_p": 0.5, "top_k": 40}, {"temperature": 0.0, "top_k": 1, "top_p": 1.0}),
    ({"temperature": 0.000009}, {"temperature": 0.0, "top_k": 1}),
    ({"temperature": 0.7, "top_p": 1e-9}, {"temperature": 0.0, "top_k": 1}),
    ({"temperature": 0.7, "top_p": 0.9, "top_k": -1}, {"temperature": 0.7, "top_k": 0, "top_p": 0.9}),
    ({"temperature": 0.7, "top_k": -1.0}, {"top_k": 0}),
    ({"temperature": 0.7, "top_k": "5"}, {"top_k": 5}),
    ({"temperature": 0.7, "top_k": 10 ** 12}, {"top_k": 1000}),
    ({"repetition_penalty": 1.2, "presence_penalty": -0.5, "frequency_penalty": 2}, {
        "repeat_penalty": 1.2, "presence_penalty": -0.5, "frequency_penalty": 2.0}),
    ({"max_new_tokens": 10 ** 30}, {"n_predict": 512}),
    ({"max_new_tokens": "17"}, {"n_predict": 17}),
    ({"temperature": None, "top_k": None, "max_new_tokens": None},
     {"temperature": 1.0, "top_k": 0, "n_predict": 256}),
])
def test_fastchat_params_become_llama_server_sampling(params, expected):
    fields = W.sampling(params, context_len=512, n_vocab=1000)
    assert {k: fields[k] for k in expected} == expected
    assert fields["samplers"] == ["penalties", "temperature", "top_k", "top_p"]


@pytest.mark.parametrize("params,code,text", [
    ({"temperature": float("nan")}, 40302, "temperature: nan is not a finite number"),
    ({"temperature": float("inf")}, 40302, "is not a finite number"),
    ({"temperature": -0.1}, 40302, "temperature: -0.1 is below the minimum of 0.0"),
    ({"temperature": True}, 40001, "temperature: true is not a number"),
    ({"temperature": "warm"}, 40001, "is not a number"),
    ({"temperature": [1]}, 40001, "is not a number"),
    ({"top_p": 1.5}, 40302, "top_p: 1.5 is above the maximum of 1.0"),
    ({"top_k": 1.5}, 40001, "top_k: 1.5 is not an integer"),
    ({"top_k": "1e9"}, 40001, "is not an integer"),
    ({"repetition_penalty": 0}, 40302, "repetition_penalty: 0.0 is below the minimum of 0.0"),
    ({"presence_penalty": 1e308}, 40302, "is above the maximum of 2.0"),
    ({"max_new_tokens": 0}, 40302, "max_new_tokens: 0 is less than the minimum of 1"),
    ({"max_new_tokens": -5}, 40302, "less than the minimum of 1"),
    ({"max_new_tokens": 3.5}, 40001, "max_new_tokens: 3.5 is not an integer"),
    ({"max_new_tokens": float("nan")}, 40001, "is not an integer"),
])
def test_params_fastchat_would_refuse_are_refused(params, code, text):
    with pytest.raises(W.ParamError) as error:
        W.sampling(params, context_len=512, n_vocab=1000)
    assert error.value.code == code
    assert text in str(error.value)


@pytest.mark.parametrize("params,strings,ids", [
    ({}, [], []),
    ({"stop": None, "stop_token_ids": None}, [], []),
    ({"stop": "###"}, ["###"], []),
    ({"stop": ["a", "", "b", "a"], "stop_token_ids": [5, 5, 7]}, ["a", "b"], [5, 7]),
    ({"stop_token_ids": [-1, 999, 1000, 10 ** 20]}, [], [999]),  # never generated: left out
])
def test_stop_conditions(params, strings, ids):
    assert W.stop_conditions(params, n_vocab=1000) == (strings, ids)


@pytest.mark.parametrize("params,text", [
    ({"stop": 5}, "stop: 5 is not a string or a list of strings"),
    ({"stop": ["a", None]}, "is not a string or a list of strings"),
    ({"stop_token_ids": "151643"}, "stop_token_ids: \"151643\" is not a list of integers"),
    ({"stop_token_ids": [1.0]}, "is not a list of integers"),
    ({"stop_token_ids": [True]}, "is not a list of integers"),
    ({"stop_token_ids": list(range(257))}, "stop_token_ids: 257 ids, more than 256"),
])
def test_bad_stop_conditions_are_refused(params, text):
    with pytest.raises(W.ParamError, match=".*") as error:
        W.stop_conditions(params, n_vocab=1000)
    assert text in str(error.value)


@pytest.mark.parametrize("status,payload,code,start", [
    (400, {"error": {"type": "exceed_context_size_error", "n_ctx": 512, "n_prompt_tokens": 600,
                     "message": "request (600 tokens) exceeds the available context size (512 tokens)"}},
     40303, "This model's maximum context length is 512 tokens. However, your messages resulted in "
            "600 tokens."),
    (503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}, 42903,
     "**NETWORK ERROR DUE TO HIGH TRAFFIC."),
    (401, {"error": {"code": 401, "message": "Invalid API Key"}}, 50001,
     "**NETWORK ERROR DUE TO HIGH TRAFFIC."),
    (500, None, 50001, "**NETWORK ERROR"),
])
def test_llama_server_errors_become_fastchat_errors(status, payload, code, start):
    error = W.engine_error(status, payload)
    assert error.code == code
    assert error.text.startswith(start)


@pytest.mark.parametrize("code,words", [
    (3, "exited with status 3"), (0, "exited with status 0"), (-9, "was killed by SIGKILL"),
    (-11, "was killed by SIGSEGV"), (-200, "was killed by signal 200")])
def test_how_llama_server_ended_in_words(code, words):
    assert W.exit_status(code) == words


# ======================================================================================
# The worker process, with a stand-in llama-server and FastChat's controller.
# ======================================================================================

def read_pins(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def fschat_requirement():
    with open(os.path.join(ROOT, "requirements-fastchat.txt"), encoding="utf-8") as fh:
        return next(line.strip() for line in fh if line.startswith("fschat=="))


def stack_constraints():
    """The llama.cpp stack's pins when its image files exist, else the cpu stack's (the same
    FastChat server libraries)."""
    for stack in ("llamacpp-cpu", "cpu"):
        path = os.path.join(STACKS, stack, "constraints.txt")
        if os.path.isfile(path):
            return path
    pytest.skip("no stack constraints.txt under %s" % STACKS)


def run_quietly(argv, timeout):
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stdout.decode(errors="replace")[-2000:])


@pytest.fixture(scope="session")
def worker_python():
    """The python of a venv with FastChat's worker libraries (no torch), made once per set
    of inputs and kept in .cache; skipped when it cannot be made (no package index)."""
    constraints = stack_constraints()
    recipe = json.dumps({"python": sys.version, "fschat": fschat_requirement(), "packages": VENV_PACKAGES,
                         "constraints": read_pins(constraints), "recipe": 1}, sort_keys=True)
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    target = os.path.join(CACHE, "llamacpp-worker-venv", digest)
    python = os.path.join(target, "bin", "python")
    if os.path.isfile(os.path.join(target, ".complete")):
        return python
    build = "%s.build-%d" % (target, os.getpid())
    shutil.rmtree(build, ignore_errors=True)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        run_quietly([sys.executable, "-m", "venv", build], 300)
        pip = [os.path.join(build, "bin", "python"), "-m", "pip", "install", "--quiet",
               "--disable-pip-version-check"]
        run_quietly(pip + ["--no-deps", fschat_requirement()], 600)
        run_quietly(pip + ["-c", constraints] + VENV_PACKAGES, 900)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(build, ignore_errors=True)
        pytest.skip("cannot make the worker's venv (FastChat %s and its server libraries): %s"
                    % (fschat_requirement(), str(exc)[-500:]))
    with open(os.path.join(build, ".complete"), "w", encoding="utf-8") as fh:
        fh.write(recipe)
    try:
        os.rename(build, target)
    except OSError:  # made meanwhile by another run
        shutil.rmtree(build, ignore_errors=True)
    return python


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http():
    session = requests.Session()
    session.trust_env = False
    return session


JSON = {"Content-Type": "application/json"}


def post(url, payload=None, timeout=30):
    with http() as session:
        response = session.post(url, data=json.dumps(payload or {}), headers=JSON, timeout=timeout)
        return response.status_code, response.json()


def wait_until(predicate, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail("timed out after %s s waiting for %s" % (timeout, what))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def stop(process, timeout=15):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_record(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class Service:
    """A process started by a test, its output in a file."""

    def __init__(self, argv, env, out):
        self.out = out
        with open(out, "wb") as fh:
            self.process = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    @property
    def pid(self):
        return self.process.pid

    def output(self):
        with open(self.out, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def stop(self):
        stop(self.process)


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A directory with safe path characters, and the stand-in llama-server in it as an
    executable (the worker wants an absolute executable)."""
    directory = tmp_path_factory.mktemp("llamacpp")
    fake = directory / "fake-llama-server"
    with open(FAKE_SERVER, encoding="utf-8") as fh:
        fake.write_text("#!%s\n%s" % (sys.executable, fh.read()))
    fake.chmod(0o755)
    return directory


def base_env(place, **extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(place), "LANG": "C.UTF-8",
           "PYTHONPATH": FILES, "PYTHONUNBUFFERED": "1", "LOGDIR": str(place / "logs")}
    env.update(extra)
    return env


def start_controller(python, place, port, name):
    service = Service([python, "-m", "fastchat.serve.controller", "--host", "127.0.0.1", "--port", str(port)],
                      base_env(place), str(place / ("%s.out" % name)))
    url = "http://127.0.0.1:%d" % port

    def up():
        if service.process.poll() is not None:
            pytest.fail("the controller exited:\n" + service.output()[-3000:])
        try:
            with http() as session:
                return session.get(url + "/test_connection", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(up, 60, "FastChat's controller")
    except BaseException:
        service.stop()
        raise
    return service


_counter = [0]


def worker_argv(python, place, controller_url, port, server_port, fake_args=(), worker_args=(),
                server_args=None, limit="2", template="qwen-7b-chat"):
    """The lab's worker command line with the stand-in llama-server; (argv, record file)."""
    _counter[0] += 1
    record = str(place / ("record-%d.jsonl" % _counter[0]))
    if server_args is None:
        server_args = ["--model", MODEL_PATH, "--ctx-size", "512", "--parallel", "2", "--alias", MODEL,
                       "--no-webui", "--metrics"]
    argv = [python, "-m", "fastchat_lab_llamacpp_worker", "--model-path", MODEL_PATH,
            "--model-names", MODEL, "--host", "127.0.0.1", "--port", str(port),
            "--worker-address", "http://127.0.0.1:%d" % port,
            "--controller-address", controller_url, "--server-port", str(server_port)]
    if template is not None:
        argv += ["--conv-template", template]
    if limit is not None:
        argv += ["--limit-worker-concurrency", limit]
    argv += list(worker_args) + ["--", str(place / "fake-llama-server")] + server_args
    return argv + ["--fake-record", record] + list(fake_args), record


def start_worker(python, place, controller_url, env=None, wait=True, **options):
    port, server_port = free_port(), free_port()
    argv, record = worker_argv(python, place, controller_url, port, server_port, **options)
    service = Service(argv, env or base_env(place), str(place / ("worker-%d.out" % _counter[0])))
    service.url = "http://127.0.0.1:%d" % port
    service.server_port = server_port
    service.record = record
    if wait:
        def up():
            if service.process.poll() is not None:
                pytest.fail("the worker exited (%s):\n%s"
                            % (service.process.returncode, service.output()[-4000:]))
            try:
                with http() as session:
                    return session.post(service.url + "/worker_get_status", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(up, 90, "the worker's API")
        except BaseException:
            service.stop()
            raise
    return service


@pytest.fixture(scope="module")
def lab(worker_python, place):
    """FastChat's controller, and the worker with the stand-in llama-server. The worker's
    environment has a decoy LLAMA_API_KEY and LLAMA_ARG_HOST, and a proxy that does not
    exist for every host but localhost (the controller's address here): its calls to
    llama-server must neither pass on the one nor go through the other."""
    controller_port = free_port()
    controller = start_controller(worker_python, place, controller_port, "controller")
    env = base_env(place, LLAMA_API_KEY=DECOY_KEY, LLAMA_ARG_HOST="0.0.0.0",
                   HTTP_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9",
                   NO_PROXY="localhost", no_proxy="localhost", FASTCHAT_WORKER_HEART_BEAT_INTERVAL="2")
    worker = None
    try:
        worker = start_worker(worker_python, place, "http://localhost:%d" % controller_port, env=env,
                              fake_args=["--fake-token-delay", "0.005"])
        worker.controller_url = "http://127.0.0.1:%d" % controller_port
        wait_until(lambda: post(worker.controller_url + "/list_models")[1]["models"], 30,
                   "the worker to register (it does once its API is up)")
        yield worker
    finally:
        if worker is not None:
            worker.stop()
        controller.stop()


def started(service):
    return next(e for e in read_record(service.record) if e["event"] == "start")


def completions(service):
    return [e for e in read_record(service.record) if e["event"] == "completion"]


def stream(url, params, timeout=60):
    """FastChat's web UI's way: the worker's stream split at NUL bytes. (json.dumps: NaN
    goes through, as FastChat's JSON reader takes it.)"""
    with http() as session:
        with session.post(url + "/worker_generate_stream", data=json.dumps(params), headers=JSON,
                          stream=True, timeout=timeout) as response:
            assert response.status_code == 200
            return [json.loads(chunk.decode()) for chunk in response.iter_lines(delimiter=b"\0") if chunk]


def chat_params(url, message, **overrides):
    """What FastChat's OpenAI API server sends for one user message (get_gen_params): the
    worker's conversation template, its stop string and stop ids."""
    from fastchat.conversation import Conversation, SeparatorStyle

    _, payload = post(url + "/worker_get_conv_template", {"model": MODEL})
    conv = payload["conv"]
    conversation = Conversation(
        name=conv["name"], system_template=conv["system_template"], system_message=conv["system_message"],
        roles=conv["roles"], messages=list(conv["messages"]), offset=conv["offset"],
        sep_style=SeparatorStyle(conv["sep_style"]), sep=conv["sep"], sep2=conv["sep2"],
        stop_str=conv["stop_str"], stop_token_ids=conv["stop_token_ids"])
    conversation.append_message(conversation.roles[0], message)
    conversation.append_message(conversation.roles[1], None)
    stops = {conv["stop_str"]} if isinstance(conv["stop_str"], str) else set(conv["stop_str"] or [])
    params = {"model": MODEL, "prompt": conversation.get_prompt(), "temperature": 0.0, "logprobs": None,
              "top_p": 1.0, "top_k": -1, "presence_penalty": 0.0, "frequency_penalty": 0.0,
              "max_new_tokens": 64, "echo": False, "stop_token_ids": conv["stop_token_ids"],
              "stop": sorted(stops)}
    params.update(overrides)
    return params


def plain(text, **overrides):
    """Params for a bare prompt, without the template's stops; greedy, as chat_params (the
    stand-in's sampling is random otherwise)."""
    params = {"model": MODEL, "prompt": text, "temperature": 0.0, "max_new_tokens": 64, "echo": False}
    params.update(overrides)
    return params


def test_the_worker_registers_with_fastchats_controller(lab):
    _, models = post(lab.controller_url + "/list_models")
    assert models == {"models": [MODEL]}
    _, address = post(lab.controller_url + "/get_worker_address", {"model": MODEL})
    assert address == {"address": lab.url}


def test_the_worker_reports_status_context_template_and_tokens(lab):
    assert post(lab.url + "/worker_get_status") == (
        200, {"model_names": [MODEL], "speed": 1, "queue_length": 0})
    # The context of one llama-server slot: --ctx-size 512 / --parallel 2.
    assert post(lab.url + "/model_details", {"model": MODEL}) == (200, {"context_length": 256})
    _, conv = post(lab.url + "/worker_get_conv_template", {"model": MODEL})
    assert (conv["conv"]["name"], conv["conv"]["stop_token_ids"]) == (
        "qwen-7b-chat", [151643, 151644, 151645])
    prompt = "<|im_start|>user\nhi<|im_end|>\n"
    # The stand-in's tokens: <|im_start|> u s e r \n h i <|im_end|> \n (special tokens parsed).
    assert post(lab.url + "/count_token", {"model": MODEL, "prompt": prompt}) == (
        200, {"count": 10, "error_code": 0})


def test_a_streamed_answer_accumulates_with_usage_and_finish_reason(lab):
    params = chat_params(lab.url, "SAY:Hello, world/SAY")
    items = stream(lab.url, params)
    texts = [item["text"] for item in items]
    assert texts[-1] == "Hello, world"
    assert len(items) >= 5, "streamed token by token, not at once"
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    assert [item["finish_reason"] for item in items[:-1]] == [None] * (len(items) - 1)
    assert items[-1]["finish_reason"] == "stop"
    assert {item["error_code"] for item in items} == {0}
    prompt_tokens = len(FAKE.tokenize(params["prompt"]))
    # "Hello, world" is 12 tokens of the stand-in, then <|endoftext|>.
    assert items[-1]["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": 13,
                                  "total_tokens": prompt_tokens + 13}
    _, counted = post(lab.url + "/count_token", {"model": MODEL, "prompt": params["prompt"]})
    assert counted["count"] == prompt_tokens


def test_items_come_every_stream_interval_tokens(worker_python, place, lab):
    # The lab's worker streams an item every 2 tokens (FastChat's model_worker's default):
    # "Hello, world" is 12 tokens, so 6 items and the last one with its finish reason.
    params = chat_params(lab.url, "SAY:Hello, world/SAY")
    counts = [item["usage"]["completion_tokens"] for item in stream(lab.url, params)]
    assert counts == [2, 4, 6, 8, 10, 12, 13]
    # --stream-interval 1: every token; 5: every fifth, and the rest at the end.
    for interval, expected in (("1", list(range(1, 13)) + [13]), ("5", [5, 10, 13, 13])):
        worker = start_worker(worker_python, place, lab.controller_url,
                              worker_args=["--stream-interval", interval, "--no-register"])
        try:
            items = stream(worker.url, chat_params(worker.url, "SAY:Hello, world/SAY"))
        finally:
            worker.stop()
        assert [item["usage"]["completion_tokens"] for item in items] == expected
        assert items[-1]["text"] == "Hello, world"


def test_the_request_to_llama_server(lab):
    stream(lab.url, chat_params(lab.url, "SAY:ok/SAY", temperature=0.5, top_p=0.9, top_k=20,
                                presence_penalty=0.5, frequency_penalty=0.25, max_new_tokens=32))
    body = completions(lab)[-1]["body"]
    assert {k: v for k, v in body.items() if k not in ("prompt", "stop", "preserved_tokens")} == {
        "stream": True, "cache_prompt": True, "return_tokens": True, "n_predict": 32,
        "temperature": 0.5, "top_k": 20, "top_p": 0.9, "repeat_penalty": 1.0, "presence_penalty": 0.5,
        "frequency_penalty": 0.25, "samplers": ["penalties", "temperature", "top_k", "top_p"]}
    # Qwen's template: stop string <|endoftext|>, stop ids 151643-151645, all special tokens.
    assert sorted(body["stop"]) == ["<|endoftext|>", "<|im_end|>", "<|im_start|>"]
    assert sorted(body["preserved_tokens"]) == ["<|endoftext|>", "<|im_end|>", "<|im_start|>"]


def test_max_new_tokens_ends_with_length(lab):
    items = stream(lab.url, plain("no script", max_new_tokens=5))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == ("xxxxx", "length")
    assert items[-1]["usage"]["completion_tokens"] == 5


def test_a_full_context_ends_with_length(lab):
    prompt = "no script " * 20  # 200 tokens of the 256 a slot holds
    items = stream(lab.url, plain(prompt, max_new_tokens=100000))
    assert completions(lab)[-1]["body"]["n_predict"] == 256, "max_new_tokens is capped at the context"
    assert items[-1]["finish_reason"] == "length"
    assert items[-1]["text"] == "x" * (256 - 200 - 1)


def test_stop_strings_end_the_answer_and_are_never_shown_in_part(lab):
    items = stream(lab.url, plain("SAY:alpha END beta/SAY", stop=["END"]))
    texts = [item["text"] for item in items]
    assert (texts[-1], items[-1]["finish_reason"]) == ("alpha ", "stop")
    assert not any(text.endswith(("E", "EN")) for text in texts)


def test_a_stop_string_in_the_web_uis_form(lab):
    # The web UI sends conv.stop_str as it is: a string, or None.
    items = stream(lab.url, plain("SAY:one###two/SAY", stop="###", stop_token_ids=None))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == ("one", "stop")


def test_a_special_stop_token_stops_llama_server_itself(lab):
    items = stream(lab.url, chat_params(lab.url, "SAY:Hi<|im_start|>more text/SAY"))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == ("Hi", "stop")
    done = [e for e in read_record(lab.record) if e["event"] == "done"][-1]
    assert (done["stop_type"], done["cancelled"]) == ("word", False)


def test_a_special_stop_token_the_template_does_not_name(lab):
    # <ctl> is written as nothing by llama-server unless preserved: without the worker's
    # preserved_tokens it would never match a stop string.
    items = stream(lab.url, plain("SAY:ab<ctl>cd/SAY", stop_token_ids=[FAKE.SPECIALS["<ctl>"]]))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == ("ab", "stop")


def test_a_plain_stop_token_is_caught_by_id_and_cancels_the_generation(lab):
    bang = FAKE.PLAIN_BASE + ord("!")
    items = stream(lab.url, plain("SAY:Hey!" + "world" * 40 + "/SAY", stop_token_ids=[bang]))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == ("Hey", "stop")
    assert completions(lab)[-1]["body"].get("stop") is None, "no stop string for a plain token"
    number = completions(lab)[-1]["id"]

    def ended():
        return next((e for e in read_record(lab.record) if e["event"] == "done" and e["id"] == number), None)

    done = wait_until(ended, 20, "llama-server to see the stream closed")
    assert done["cancelled"] is True
    assert done["n_gen"] < 4 + 5 * 40


def test_a_plain_stop_token_after_text_held_back(lab):
    bang = FAKE.PLAIN_BASE + ord("!")
    # "X" is held back (it may begin "X!Q"); "!" arrives as "" too: both are recovered.
    items = stream(lab.url, plain("SAY:abX!rest/SAY", stop=["X!Q"], stop_token_ids=[bang]))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == ("abX", "stop")
    # "X" is held back, then released with "!" in one piece of text.
    items = stream(lab.url, plain("SAY:abX!rest/SAY", stop=["XYZ"], stop_token_ids=[bang]))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == ("abX", "stop")


def test_text_held_back_when_the_tokens_run_out_is_kept(lab):
    # FastChat's answer keeps a possible start of a stop string when max_new_tokens ends it.
    items = stream(lab.url, plain("SAY:abcEN/SAY", stop=["END"], max_new_tokens=5))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == ("abcEN", "length")


def test_temperature_zero_is_greedy(lab):
    first = stream(lab.url, plain("SAY:MiXeD CaSe WoRdS/SAY", temperature=0, top_k=-1))
    second = stream(lab.url, plain("SAY:MiXeD CaSe WoRdS/SAY", temperature=0.0, top_k=50))
    assert first[-1]["text"] == second[-1]["text"] == "MiXeD CaSe WoRdS"
    body = completions(lab)[-1]["body"]
    assert (body["temperature"], body["top_k"], body["top_p"]) == (0.0, 1, 1.0)


def test_echo_puts_the_prompt_first(lab):
    items = stream(lab.url, plain("SAY:yes/SAY", echo=True))
    assert items[-1]["text"] == "SAY:yes/SAY" + "yes"
    assert all(item["text"].startswith("SAY:yes/SAY") for item in items)
    default = stream(lab.url, {"prompt": "SAY:yes/SAY", "temperature": 0})
    assert default[-1]["text"] == "SAY:yes/SAYyes", "FastChat echoes when echo is not given"


def test_the_non_streamed_answer_is_the_last_item(lab):
    status, answer = post(lab.url + "/worker_generate", plain("SAY:Bye/SAY", temperature=0))
    assert status == 200
    assert (answer["text"], answer["error_code"], answer["finish_reason"]) == ("Bye", 0, "stop")
    assert answer["usage"]["completion_tokens"] == 4


def test_a_prompt_longer_than_the_context_is_fastchats_context_overflow(lab):
    prompt = "a" * 300
    expected = ("This model's maximum context length is 256 tokens. However, your messages resulted "
                "in 300 tokens. Please reduce the length of the messages.")
    assert stream(lab.url, plain(prompt)) == [{"text": expected, "error_code": 40303}]
    assert post(lab.url + "/worker_generate", plain(prompt)) == (200, {"text": expected, "error_code": 40303})


@pytest.mark.parametrize("params,code,text", [
    ({"temperature": float("nan")}, 40302, "temperature: nan is not a finite number"),
    ({"top_p": 1.5}, 40302, "top_p: 1.5 is above the maximum of 1.0"),
    ({"max_new_tokens": 0}, 40302, "max_new_tokens: 0 is less than the minimum of 1"),
    ({"stop": 5}, 40001, "stop: 5 is not a string or a list of strings"),
    ({"stop_token_ids": ["a"]}, 40001, "stop_token_ids: [\"a\"] is not a list of integers"),
    ({"echo": "yes"}, 40001, "echo: \"yes\" is not true or false"),
    ({"images": ["data:image/png;base64,AAAA"]}, 40302, "images: this model reads text only"),
    ({"prompt": ["a", "b"]}, 40001, "prompt: not a string"),
])
def test_bad_params_get_fastchat_errors_and_reach_no_llama_server(lab, params, code, text):
    before = len(completions(lab))
    assert stream(lab.url, plain("SAY:x/SAY", **params)) == [{"text": text, "error_code": code}]
    assert len(completions(lab)) == before


def test_fastchats_semaphore_lets_as_many_requests_through_as_llama_server_has_slots(lab):
    before = len(completions(lab))
    results = []

    def ask():
        results.append(stream(lab.url, plain("go", max_new_tokens=200))[-1]["finish_reason"])

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == ["length"] * 3
    events = read_record(lab.record)
    ids = [e["id"] for e in events if e["event"] == "completion"][before:]
    spans = [(next(e["time"] for e in events if e["event"] == "completion" and e["id"] == i),
              next(e["time"] for e in events if e["event"] == "done" and e["id"] == i)) for i in ids]
    overlapping = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert overlapping == 2, "two slots at once, the third request waits: %s" % spans
    wait_until(lambda: post(lab.url + "/worker_get_status")[1]["queue_length"] == 0, 10,
               "FastChat's semaphore to be released")


def test_the_key_is_in_no_argv_environment_or_log(lab, place):
    first = started(lab)
    key = first["keys"][0]
    assert len(first["keys"]) == 1 and len(key) >= 40
    assert (first["key_file_mode"], first["key_dir_mode"]) == (0o600, 0o700)
    argv = first["argv"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--port") + 1] == str(lab.server_port)
    key_file = argv[argv.index("--api-key-file") + 1]
    assert not os.path.exists(key_file) and not os.path.exists(os.path.dirname(key_file)), \
        "the key file is deleted once llama-server has read it"
    for pid in (lab.pid, first["pid"]):
        for name in ("cmdline", "environ"):
            with open("/proc/%d/%s" % (pid, name), "rb") as fh:
                assert key.encode() not in fh.read(), "the key is in /proc/%d/%s" % (pid, name)
    logs = [lab.out] + [str(p) for p in (place / "logs").iterdir()]
    for path in logs:
        with open(path, "rb") as fh:
            assert key.encode() not in fh.read(), path
    assert "LLAMA_API_KEY" not in first["environ"] and "LLAMA_ARG_HOST" not in first["environ"]
    assert ("not passed to llama-server (llama.cpp would read them as options): "
            "LLAMA_API_KEY, LLAMA_ARG_HOST") in lab.output()
    assert not [e for e in read_record(lab.record) if e["event"] == "unauthorized"]


def test_llama_server_is_reached_past_the_environments_proxy(lab):
    # The lab fixture's worker has HTTP_PROXY=http://127.0.0.1:9 (nothing listens there)
    # for 127.0.0.1: only a client that ignores the environment reaches llama-server.
    items = stream(lab.url, plain("SAY:direct/SAY"))
    assert items[-1]["text"] == "direct"
    with open("/proc/%d/environ" % lab.pid, "rb") as fh:
        assert b"HTTP_PROXY=http://127.0.0.1:9" in fh.read()


# ----- the worker's life -----

def test_a_hostile_command_line_starts_nothing(worker_python, place):
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", wait=False,
                          server_args=["--model", MODEL_PATH, "--host", "0.0.0.0"])
    try:
        assert worker.process.wait(60) == 2
    finally:
        worker.stop()
    assert ('fastchat_lab_llamacpp_worker: error: -- (llama-server): "--host" is not allowed: the '
            "worker makes llama-server listen on 127.0.0.1 only. Fix: remove it from the "
            "llama-server command line.") in worker.output()
    assert read_record(worker.record) == []


def test_without_a_template_and_torch_the_worker_asks_for_one(worker_python, place):
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", wait=False, template=None)
    try:
        assert worker.process.wait(60) == 2
    finally:
        worker.stop()
    assert "--conv-template: it is not given, and FastChat chooses a template by model path only " \
           "through fastchat.model.model_adapter, which cannot be imported here" in worker.output()
    assert read_record(worker.record) == []


def test_concurrency_other_than_the_slots_is_refused(worker_python, place):
    # No --parallel in the llama-server command line: the slots come from /props.
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", wait=False, limit="3",
                          worker_args=["--no-register"],
                          server_args=["--model", MODEL_PATH, "--ctx-size", "512"])
    try:
        assert worker.process.wait(60) == 2
    finally:
        worker.stop()
    assert "--limit-worker-concurrency 3 is not llama-server's 2 slots" in worker.output()
    assert not alive(started(worker)["pid"])


def test_the_concurrency_defaults_to_the_slots(worker_python, place):
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", limit=None,
                          worker_args=["--no-register"])
    try:
        assert "llama-server is ready: 2 slots of 256 tokens" in worker.output()
        items = stream(worker.url, plain("SAY:fine/SAY"))
        assert items[-1]["text"] == "fine"
    finally:
        worker.stop()


def test_llama_server_exiting_stops_the_worker(worker_python, place):
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", worker_args=["--no-register"],
                          fake_args=["--fake-exit-after", "6"])
    try:
        assert worker.process.wait(20) == 1, "at once, not by the 30 s backstop"
    finally:
        worker.stop()
    assert "llama-server exited with status 3; the worker stops" in worker.output()


def test_llama_server_exiting_while_it_loads_stops_the_worker(worker_python, place):
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", wait=False,
                          worker_args=["--no-register"],
                          fake_args=["--fake-load-seconds", "60", "--fake-exit-after", "2"])
    try:
        assert worker.process.wait(60) == 1
    finally:
        worker.stop()
    assert "llama-server exited with status 3 before it was ready" in worker.output()


def test_the_wait_for_llama_server_is_bounded(worker_python, place):
    env = base_env(place, FASTCHAT_LAB_LLAMACPP_START_SECONDS="3")
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", wait=False, env=env,
                          worker_args=["--no-register"], fake_args=["--fake-load-seconds", "120"])
    try:
        assert worker.process.wait(60) == 1
    finally:
        worker.stop()
    assert "llama-server did not become ready within 3 s" in worker.output()
    assert not alive(started(worker)["pid"]), "the worker stops the llama-server it started"


def end(pid):
    """Ends a stand-in llama-server a failed test left behind (it is this test's)."""
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_sigterm_stops_the_worker_and_llama_server(worker_python, place):
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", worker_args=["--no-register"])
    server_pid = started(worker)["pid"]
    try:
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 128 + signal.SIGTERM
        assert not alive(server_pid)
        assert "llama-server exited" not in worker.output()
    finally:
        worker.stop()
        end(server_pid)


def test_a_killed_worker_takes_llama_server_along(worker_python, place):
    worker = start_worker(worker_python, place, "http://127.0.0.1:9", worker_args=["--no-register"])
    server_pid = started(worker)["pid"]
    try:
        worker.process.kill()
        worker.process.wait(30)
        wait_until(lambda: not alive(server_pid), 20, "llama-server to end with its worker")
    finally:
        end(server_pid)


def test_the_worker_registers_when_the_controller_comes_and_again_after_a_restart(worker_python, place):
    port = free_port()
    env = base_env(place, FASTCHAT_WORKER_HEART_BEAT_INTERVAL="2")
    worker = start_worker(worker_python, place, "http://127.0.0.1:%d" % port, env=env)
    controller = None
    try:
        time.sleep(1)
        assert "cannot register with the controller" in worker.output()
        url = "http://127.0.0.1:%d" % port

        def listed():
            return post(url + "/list_models")[1] == {"models": [MODEL]}

        controller = start_controller(worker_python, place, port, "late-controller")
        wait_until(listed, 30, "the worker to register with a controller that came late", interval=0.5)
        controller.stop()
        controller = start_controller(worker_python, place, port, "restarted-controller")
        wait_until(listed, 40, "the worker to register again after the controller restarted", interval=0.5)
    finally:
        worker.stop()
        if controller is not None:
            controller.stop()


# ======================================================================================
# The real llama-server (the CPU build of the pinned commit), on a tiny random GGUF.
# ======================================================================================

MAKE_GGUF = os.path.join(FIXTURES, "make_tiny_qwen2_gguf.py")
VOCAB_GGUF = os.path.join(LLAMA_TREE, "models", "ggml-vocab-qwen2.gguf")
GGUF_PY = os.path.join(LLAMA_TREE, "gguf-py")


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def tiny_gguf():
    if not (os.access(LLAMA_SERVER, os.X_OK) and os.path.isfile(VOCAB_GGUF) and os.path.isdir(GGUF_PY)):
        # scripts/test makes them: under CI their absence is a failure, not a skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)("the real llama-server (%s) or llama.cpp's tree (%s) is not here"
                    % (LLAMA_SERVER, LLAMA_TREE))
    digest = hashlib.sha256((file_sha256(MAKE_GGUF) + file_sha256(VOCAB_GGUF)).encode()).hexdigest()[:16]
    path = os.path.join(CACHE, "llamacpp-worker-gguf", "tiny-qwen2-%s.gguf" % digest)
    if not os.path.isfile(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = "%s.part-%d" % (path, os.getpid())
        env = dict(os.environ, PYTHONPATH=GGUF_PY)
        done = subprocess.run([sys.executable, MAKE_GGUF, VOCAB_GGUF, partial], env=env, check=False,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if done.returncode != 0:
            if os.path.exists(partial):
                os.unlink(partial)
            pytest.skip("cannot make the tiny GGUF: %s" % done.stdout.decode(errors="replace")[-500:])
        os.rename(partial, path)
    return path


def llama_server_argv(gguf):
    return [LLAMA_SERVER, "--model", gguf, "--ctx-size", "1024", "--parallel", "2", "--n-gpu-layers", "0",
            "--threads", "2", "--no-webui", "--metrics"]


@pytest.fixture(scope="module")
def reference(tiny_gguf, place):
    """A llama-server of the test's own, with a key the test knows: what the engine does."""
    key_file = place / "reference-key"
    key_file.write_text("reference-key-for-the-test\n")
    port = free_port()
    service = Service(llama_server_argv(tiny_gguf) + ["--host", "127.0.0.1", "--port", str(port),
                                                      "--api-key-file", str(key_file)],
                      base_env(place), str(place / "reference.out"))
    service.url = "http://127.0.0.1:%d" % port
    service.headers = {"Authorization": "Bearer reference-key-for-the-test"}

    def up():
        if service.process.poll() is not None:
            pytest.fail("the reference llama-server exited:\n" + service.output()[-3000:])
        try:
            with http() as session:
                return session.get(service.url + "/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(up, 120, "the reference llama-server")
        yield service
    finally:
        service.stop()


def reference_completion(reference, body):
    with http() as session:
        response = session.post(reference.url + "/completion", json=body, headers=reference.headers,
                                timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def reference_stream(reference, body):
    with http() as session:
        with session.post(reference.url + "/completion", json=dict(body, stream=True),
                          headers=reference.headers, stream=True, timeout=120) as response:
            assert response.status_code == 200, response.text
            return [json.loads(line[5:]) for line in response.iter_lines() if line.startswith(b"data:")]


@pytest.fixture(scope="module")
def real(worker_python, tiny_gguf, place):
    port, server_port = free_port(), free_port()
    argv = [worker_python, "-m", "fastchat_lab_llamacpp_worker", "--model-path", tiny_gguf,
            "--model-names", MODEL, "--host", "127.0.0.1", "--port", str(port),
            "--worker-address", "http://127.0.0.1:%d" % port, "--controller-address", "http://127.0.0.1:9",
            "--conv-template", "qwen-7b-chat", "--limit-worker-concurrency", "2", "--no-register",
            "--server-port", str(server_port), "--"] + llama_server_argv(tiny_gguf)
    worker = Service(argv, base_env(place), str(place / "real-worker.out"))
    worker.url = "http://127.0.0.1:%d" % port
    worker.server_port = server_port

    def up():
        if worker.process.poll() is not None:
            pytest.fail("the worker exited:\n" + worker.output()[-4000:])
        try:
            return post(worker.url + "/worker_get_status", timeout=2)[0] == 200
        except requests.RequestException:
            return False

    try:
        wait_until(up, 120, "the worker with the real llama-server")
        yield worker
    finally:
        worker.stop()


GREEDY = {"temperature": 0.0, "top_k": 1, "samplers": ["penalties", "temperature", "top_k", "top_p"]}


def test_real_greedy_answer_is_the_engines(real, reference):
    params = chat_params(real.url, "Hello", temperature=0, max_new_tokens=12)
    first, second = stream(real.url, params), stream(real.url, params)
    assert first[-1]["text"] == second[-1]["text"]
    expected = reference_completion(reference, dict(GREEDY, prompt=params["prompt"], n_predict=12,
                                                    stop=params["stop"]))
    assert first[-1]["text"] == expected["content"]
    assert first[-1]["finish_reason"] == ("length" if expected["stop_type"] == "limit" else "stop")
    usage = first[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (expected["tokens_evaluated"],
                                                                    expected["tokens_predicted"])
    assert post(real.url + "/count_token", {"prompt": params["prompt"]})[1]["count"] == usage["prompt_tokens"]
    assert post(real.url + "/model_details")[1] == {"context_length": 512}


def test_real_plain_stop_token(real, reference):
    prompt = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    answer = reference_completion(reference, dict(GREEDY, prompt=prompt, n_predict=24, return_tokens=True))
    tokens = answer["tokens"]
    choice = None
    for k in range(1, len(tokens)):
        if tokens[k] in tokens[:k] or tokens[k] >= 151643:
            continue
        before = reference_completion(reference, dict(GREEDY, prompt=prompt, n_predict=k))["content"]
        if "\ufffd" not in before:
            choice = (k, before)
            break
    if choice is None:
        pytest.skip("the tiny model's greedy answer has no token to stop on: %s" % tokens)
    k, before = choice
    items = stream(real.url, plain(prompt, temperature=0, max_new_tokens=24, stop_token_ids=[tokens[k]]))
    assert (items[-1]["text"], items[-1]["finish_reason"]) == (before, "stop")


def test_real_llama_server_stops_on_a_preserved_special_token(reference):
    """What the worker's special stop ids rely on at the pinned commit: a control token
    (<|im_start|>, forced here by a logit bias) is written as nothing and does not stop;
    preserved and given as a stop string, it stops the generation, as a stop word."""
    forced = dict(GREEDY, prompt="hi", n_predict=3, logit_bias=[[151644, 100]])
    events = reference_stream(reference, forced)
    assert [e["content"] for e in events] == ["", "", "", ""]
    assert events[-1]["stop_type"] == "limit"
    events = reference_stream(reference, dict(forced, preserved_tokens=["<|im_start|>"],
                                              stop=["<|im_start|>"]))
    assert (events[-1]["stop_type"], events[-1]["tokens_predicted"]) == ("word", 1)
    assert "".join(e["content"] for e in events) == ""


def test_real_token_lookup(worker_python, reference, place):
    """The worker's own lookup (Engine.token_info) against the real llama-server."""
    script = (
        "import json, sys\n"
        "import fastchat_lab_llamacpp_worker as w\n"
        "server = w.LlamaServer(int(sys.argv[1]), sys.argv[2])\n"
        "engine = w.Engine()\n"
        "engine.init_engine(server, 512, 151936)\n"
        "print(json.dumps([engine.token_info(t) for t in (151643, 151644, 151645, 198, 9707)]))\n")
    port = reference.url.rsplit(":", 1)[1]
    done = subprocess.run([worker_python, "-c", script, port, "reference-key-for-the-test"],
                          env=base_env(place), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout.decode()
    assert json.loads(done.stdout) == [["<|endoftext|>", True], ["<|im_start|>", True], ["<|im_end|>", True],
                                       ["\n", False], ["Hello", False]]


def test_real_prompt_longer_than_the_context(real):
    items = stream(real.url, plain("hello " * 600))
    assert len(items) == 1 and items[0]["error_code"] == 40303
    assert items[0]["text"].startswith("This model's maximum context length is 512 tokens. However, your "
                                       "messages resulted in ")


def listeners(port):
    """The addresses listening on ``port`` (/proc/net/tcp and tcp6, state 0A)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if os.path.exists(table):
            with open(table) as fh:
                for line in fh.readlines()[1:]:
                    local, state = line.split()[1], line.split()[3]
                    if state == "0A" and local.endswith(":%04X" % port):
                        found.append(local.rsplit(":", 1)[0])
    return found


def test_real_llama_server_listens_on_loopback_and_wants_the_key(real):
    with open("/proc/%d/task/%d/children" % (real.pid, real.pid)) as fh:
        children = fh.read().split()
    assert len(children) == 1
    with open("/proc/%s/cmdline" % children[0], "rb") as fh:
        argv = fh.read().decode().split("\0")[:-1]
    assert argv[0] == LLAMA_SERVER
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and "--api-key" not in argv
    assert not os.path.exists(argv[argv.index("--api-key-file") + 1])
    assert listeners(real.server_port) == ["0100007F"]
    base = "http://127.0.0.1:%d" % real.server_port
    with http() as session:
        assert session.get(base + "/health", timeout=5).status_code == 200
        assert session.get(base + "/props", timeout=5).status_code == 401
        completion = session.post(base + "/completion", json={"prompt": "hi", "n_predict": 1}, timeout=5)
        assert completion.status_code == 401
        wrong = session.get(base + "/props", headers={"Authorization": "Bearer wrong"}, timeout=5)
        assert wrong.status_code == 401


# --- the GGUF's record: how prompts reach llama-server ---------------------------------------

def record(tmp_path, rules):
    path = tmp_path / "m.gguf.json"
    path.write_text(json.dumps({"model": "m", "prepare": {"sha256": "x", "rules": rules}}))
    return str(path)


def test_the_records_rules_shape_what_llama_server_gets(tmp_path):
    rules = W.read_rules(record(tmp_path, {
        "prompt_prefix": " ", "prompt_normalization": "NFC", "tokenizer": "sentencepiece",
        "server_args": ["--override-kv", "tokenizer.ggml.add_space_prefix=bool:false"]}))
    assert rules == {"prompt_prefix": " ", "prompt_normalization": "NFC",
                     "server_args": ["--override-kv", "tokenizer.ggml.add_space_prefix=bool:false"]}
    engine = W.Engine()
    engine.init_engine(server=None, context_len=64, n_vocab=10, rules=rules)
    assert engine.as_sent("e\u0301<reserved_102>") == " \u00e9<reserved_102>"
    plain = W.Engine()
    plain.init_engine(server=None, context_len=64, n_vocab=10)
    assert plain.as_sent("e\u0301") == "e\u0301"
    assert W.read_rules(record(tmp_path, None)) == W.NO_RULES


@pytest.mark.parametrize("rules", [
    {"prompt_prefix": "  "}, {"prompt_prefix": "\n"}, {"prompt_normalization": "NFKC"},
    {"server_args": ["--host", "0.0.0.0"]}, {"server_args": ["--override-kv"]},
    {"server_args": ["--override-kv", "a=bool:false\n--api-key x"]},
    {"server_args": ["--override-kv", "a=str:$(reboot)"]}, {"server_args": "x"}, "x"])
def test_a_bad_record_is_refused(tmp_path, rules):
    with pytest.raises(W.ConfigError):
        W.read_rules(record(tmp_path, rules))


def test_an_unreadable_record_is_refused(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(W.ConfigError, match="cannot be read as JSON"):
        W.read_rules(str(tmp_path / "bad.json"))


def test_help_answers_without_a_llama_server_command_line(capsys):
    # The image's own check runs `python3 -m fastchat_lab_llamacpp_worker --help`.
    assert W.main(["--help"]) == 0
    assert "--gguf-record" in capsys.readouterr().out
