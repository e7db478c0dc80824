"""The prompt FastChat's template builds, sent as text to llama-server, becomes the ids the
model's own tokenizer gives it (issue 22): special tokens as tokens, not as text.

For a conversation (system, user, assistant, user) and FastChat 0.2.36's conversation
templates (qwen-7b-chat: ChatML; baichuan-chat: <reserved_102>/<reserved_103>):

- the reference: the model's own tokenizer, loaded as FastChat's model adapters load it
  (AutoTokenizer, trust_remote_code) and called as its worker calls it
  (``tokenizer(prompt).input_ids``), run with the converter's Python of the fixtures;
- llama-server: the GGUF made by llama.cpp's converter and llama-quantize from the same
  model (tests/fixtures/build-llamacpp), served with the rules roles/fastchat_image/files/fastchat_lab_prepare.py wrote
  for it, and asked through /tokenize with add_special and parse_special on, which is the
  tokenisation /completion applies to a text prompt (tools/server: tokenize_input_prompts
  with add_special=true, parse_special=true); /completion's own count of evaluated prompt
  tokens is checked against it.

The models are random-weight models of the real architectures with the real tokenizers:
Qwen's qwen.tiktoken (from PyPI's dashscope wheel, hash-pinned) and a sentencepiece model
shaped as Baichuan-13B-Chat's (make_arch_model.py says what is known and what is made up).

Known divergences, not covered here (measured; a user would have to type them): a message
containing "</s>" for Qwen (llama.cpp retypes Qwen's ordinary BPE token 128247 "</s>" as a
control token and parses it from text; Qwen's tokenizer spells it "</", "s", ">"); a
message containing "<s>", "</s>" or "<unk>" for Baichuan (its tokenizer splits them off
only as whole words, single_word, and puts a new dummy prefix after them; llama.cpp
splits them anywhere and puts none).

Needs the fixtures (``tests/fixtures/build-llamacpp``; FASTCHAT_LAB_LLAMACPP_FIXTURES may
name the directory it printed); skips, saying so, without them.
"""

import json
import os
import secrets
import socket
import subprocess
import time
import unicodedata
import urllib.error
import urllib.request

import pytest
from fastchat.conversation import get_conv_template

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.environ.get("FASTCHAT_LAB_LLAMACPP_FIXTURES",
                          os.path.join(ROOT, ".cache", "llamacpp", "current"))

MODELS = {"qwen-tiny": "qwen-7b-chat", "baichuan-tiny": "baichuan-chat"}

REFERENCE = """
import json, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], trust_remote_code=True)
print(json.dumps([tok(p).input_ids for p in json.load(sys.stdin)]))
"""

# (system message or None for the template's own, [(role, text), ...])
CONVERSATIONS = {
    "plain": ("You are a helpful assistant.", [
        ("user", "Hello, who are you?"),
        ("assistant", "I am a language model."),
        ("user", "Which mountain is the second highest one in the world?")]),
    "mixed": ("你是一个有帮助的助手。Answer briefly.", [
        ("user", "你好！世界上第二高的山峰是哪座？"),
        ("assistant", "乔戈里峰，海拔8611米。 K2, 8,611 m."),
        ("user", "谢谢你！And the third?")]),
    "template_default_system": (None, [
        ("user", "Hi"),
        ("assistant", "Hello! How can I help?"),
        ("user", "Tell me a joke.")]),
    "whitespace_and_bytes": ("  two leading spaces, trailing space ", [
        ("user", "tabs\tand\n\nnewlines\n   x  y   z\u3000full-width space"),
        ("assistant", "emoji 😀🦙 and rare 𠀀 characters, café vs cafe\u0301"),
        ("user", "digits 1234567890, Ａ１！ and a trailing newline\n")]),
    "other_templates_markers_as_text": ("System: turn markers below are text", [
        ("user", "What does <|im_start|> or <reserved_102> mean?"),
        ("assistant", "They are turn markers: <|im_end|>, <reserved_103>, [INST]."),
        ("user", "<|endoftext|> <|extra_0|> and ### Human:")]),
}


def fixtures_or_skip():
    server = os.path.join(FIXTURES, "bin", "llama-server")
    if not os.path.isfile(os.path.join(FIXTURES, ".done")) or not os.access(server, os.X_OK):
        # scripts/test makes them: under CI their absence is a failure, not a skip.
        (pytest.fail if os.environ.get("CI") else pytest.skip)("no llama.cpp fixtures in %s (make them with tests/fixtures/build-llamacpp, "
                    "or set FASTCHAT_LAB_LLAMACPP_FIXTURES)" % FIXTURES)
    return FIXTURES


def fastchat_prompt(template, system, turns):
    conv = get_conv_template(template)
    if system is not None:
        conv.set_system_message(system)
    for role, text in turns:
        conv.append_message(conv.roles[0 if role == "user" else 1], text)
    conv.append_message(conv.roles[1], None)
    return conv.get_prompt()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """llama-server on 127.0.0.1 with an API key from a file, as the lab runs it."""

    def __init__(self, fixtures, gguf, args, workdir):
        self.key = secrets.token_hex(16)
        key_file = os.path.join(workdir, "api-key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(self.key + "\n")
        self.port = free_port()
        self.log_path = os.path.join(workdir, os.path.basename(gguf) + ".log")
        argv = [os.path.join(fixtures, "bin", "llama-server"), "-m", gguf,
                "--host", "127.0.0.1", "--port", str(self.port), "--api-key-file", key_file,
                "-c", "2048", "-np", "1", "--fit", "off", "-t", "2"] + list(args)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.port,
                                            timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("llama-server did not come up:\n" + self.log_tail())
            time.sleep(0.2)

    def log_tail(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-30:])

    def post(self, path, body, key=True):
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = "Bearer " + self.key
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path),
                                     data=json.dumps(body).encode(), headers=headers)
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.load(r)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def fixtures():
    return fixtures_or_skip()


@pytest.fixture(scope="module")
def served(fixtures, tmp_path_factory):
    """One llama-server per model (its q8_0 GGUF, the lab's default), started on demand."""
    servers = {}

    def get(model, quant="q8_0", rules=True):
        if (model, quant, rules) not in servers:
            args = rules_of(fixtures, model)["server_args"] if rules else []
            servers[model, quant, rules] = Server(
                fixtures, os.path.join(fixtures, "gguf", "%s-%s.gguf" % (model, quant)), args,
                str(tmp_path_factory.mktemp("llama-server")))
        return servers[model, quant, rules]

    yield get
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="module")
def reference(fixtures, tmp_path_factory):
    """The model's own tokenizer, in the converter's Python (transformers 4.57.6)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1",
               HF_HOME=str(tmp_path_factory.mktemp("hf-home")))

    def ids(model, prompts):
        out = subprocess.run(
            [os.path.join(fixtures, "venv", "bin", "python"), "-c", REFERENCE,
             os.path.join(fixtures, "models", model)],
            input=json.dumps(prompts), capture_output=True, text=True, env=env, timeout=600,
            check=False)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    return ids


def rules_of(fixtures, model):
    with open(os.path.join(fixtures, "gguf", model + ".rules.json"), encoding="utf-8") as f:
        return json.load(f)


def as_sent(rules, prompt):
    """What the lab's worker sends to /completion for FastChat's prompt text."""
    if rules["prompt_normalization"] == "NFC":
        prompt = unicodedata.normalize("NFC", prompt)
    return rules["prompt_prefix"] + prompt


def llama_ids(server, text):
    return server.post("/tokenize", {"content": text, "add_special": True,
                                     "parse_special": True})["tokens"]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_fastchat_prompts_tokenize_to_the_models_own_ids(model, fixtures, served, reference):
    template = MODELS[model]
    names = sorted(CONVERSATIONS)
    prompts = [fastchat_prompt(template, *CONVERSATIONS[n]) for n in names]
    want = reference(model, prompts)
    rules = rules_of(fixtures, model)
    server = served(model)
    for name, prompt, expected in zip(names, prompts, want):
        got = llama_ids(server, as_sent(rules, prompt))
        assert got == expected, "%s / %s:\nprompt %r\nllama.cpp %s\ntokenizer %s" % (
            model, name, prompt, got, expected)


def test_chatml_turn_markers_are_single_qwen_tokens(fixtures, served, reference):
    prompt = fastchat_prompt("qwen-7b-chat", *CONVERSATIONS["plain"])
    assert prompt.count("<|im_start|>") == 5 and prompt.count("<|im_end|>") == 4
    got = llama_ids(served("qwen-tiny"), as_sent(rules_of(fixtures, "qwen-tiny"), prompt))
    assert got == reference("qwen-tiny", [prompt])[0]
    assert got.count(151644) == 5 and got.count(151645) == 4
    # Qwen's real vocabulary: "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n".
    short = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
    assert llama_ids(served("qwen-tiny"), short) == [151644, 872, 198, 9707, 151645, 198,
                                                     151644, 77091, 198]


def test_baichuan_turn_tokens_are_195_and_196(fixtures, served, reference):
    prompt = fastchat_prompt("baichuan-chat", *CONVERSATIONS["template_default_system"])
    assert prompt.startswith("<reserved_102>Hi<reserved_103>")
    got = llama_ids(served("baichuan-tiny"), as_sent(rules_of(fixtures, "baichuan-tiny"), prompt))
    assert got == reference("baichuan-tiny", [prompt])[0]
    # As Baichuan-13B-Chat's tokenizer gives it: the dummy prefix "▁" (31106), then 195;
    # no BOS; two user turns, two assistant turns (the last one open).
    assert got[:2] == [31106, 195]
    assert got.count(195) == 2 and got.count(196) == 2 and got[-1] == 196
    assert 1 not in got


def test_without_the_prefix_rule_baichuan_ids_differ(fixtures, served, reference):
    """The rule is needed: llama.cpp's own space prefix goes after every turn token."""
    prompt = fastchat_prompt("baichuan-chat", *CONVERSATIONS["template_default_system"])
    want = reference("baichuan-tiny", [prompt])[0]
    plain = llama_ids(served("baichuan-tiny", rules=False), prompt)
    assert want[:2] == [31106, 195] and plain[0] == 195   # no leading "▁" from llama.cpp
    assert plain != want


@pytest.mark.parametrize("model", sorted(MODELS))
def test_completion_evaluates_exactly_those_tokens(model, fixtures, served, reference):
    prompt = fastchat_prompt(MODELS[model], *CONVERSATIONS["mixed"])
    rules = rules_of(fixtures, model)
    server = served(model)
    n = len(reference(model, [prompt])[0])
    out = server.post("/completion", {"prompt": as_sent(rules, prompt), "n_predict": 1,
                                      "cache_prompt": False, "temperature": 0})
    assert out["tokens_evaluated"] == n
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.post("/completion", {"prompt": "x", "n_predict": 1}, key=False)
    assert refused.value.code == 401
    refused.value.close()


@pytest.mark.parametrize("quant", ["f16", "q8_0", "q4_k_m"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_quantization_loads_and_generates(model, quant, fixtures, served):
    rules = rules_of(fixtures, model)
    prompt = fastchat_prompt(MODELS[model], *CONVERSATIONS["plain"])
    out = served(model, quant).post("/completion", {
        "prompt": as_sent(rules, prompt), "n_predict": 4, "ignore_eos": True,
        "cache_prompt": False, "temperature": 0})
    assert out["tokens_predicted"] == 4
