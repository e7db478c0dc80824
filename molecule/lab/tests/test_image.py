"""The FastChat image in the lab: built once on the head, loaded where the plan needs it
(fcl-lab-gpu1 only loaded it), trusting the extra CA, every service importable, the
remote-code model loading in it, and a streaming chat completion through the lab's API.
(Was the fastchat scenario, which built the same image on a lab of its own.)"""

import json
import os
import subprocess

import pytest

testinfra_hosts = ["fcl-lab-head"]
API_KEY = "fcl-lab-key-27182818"
CA = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"),
                  "fastchat-lab-ca", "ca.crt")
IMAGE_REPO = "fastchat-lab/fastchat"


def image_tags(host, stack="cpu"):
    out = host.check_output("docker images %s --filter label=fastchat-lab.stack=%s "
                            "--format '{{.Repository}}:{{.Tag}}'" % (IMAGE_REPO, stack))
    return sorted(t for t in out.split() if t)


@pytest.fixture(scope="module")
def image(host):
    tags = image_tags(host)
    assert len(tags) == 1, tags
    return tags[0]


def docker(*args):
    return subprocess.run(["docker", *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize("name", ["fcl-lab-head", "fcl-lab-gpu1"])
def test_both_hosts_have_the_same_single_cpu_image(host, name):
    other = host.get_host("docker://" + name)
    tags = image_tags(other)
    assert len(tags) == 1 and tags == image_tags(host), tags
    stack, commit, inputs = tags[0].split(":", 1)[1].split("-")
    assert stack == "cpu" and len(commit) == 10 and len(inputs) == 12
    labels = json.loads(other.check_output("docker image inspect -f '{{json .Config.Labels}}' %s" % tags[0]))
    assert labels["fastchat-lab.stack"] == "cpu"
    assert labels["org.opencontainers.image.revision"].startswith(commit)


def test_the_llama_cpp_image_is_on_the_head_only(host):
    # The head's tiny-qwen runs on llama.cpp (stack llamacpp-cpu); gpu1 has no such worker.
    tags = image_tags(host, "llamacpp-cpu")
    assert len(tags) == 1 and tags[0].split(":", 1)[1].startswith("llamacpp-cpu-"), tags
    assert image_tags(host.get_host("docker://fcl-lab-gpu1"), "llamacpp-cpu") == []
    out = host.check_output("docker run --rm %s sh -c '/opt/llamacpp/bin/llama-server --version 2>&1; "
                            "cat /opt/llamacpp/commit'" % tags[0])
    assert "0c1e570" in out and "0c1e57098bba43ac29e6e3b677cdceebdd22334f" in out, out
    # What the worker containers run: no torch beside FastChat's worker.
    assert host.run("docker run --rm %s python3 -c 'import torch'" % tags[0]).rc != 0


def test_the_gguf_was_made_once_on_the_head_and_verifies(host):
    rev = host.file("/fixtures/tiny-qwen.rev").content_string.strip()
    name = "tiny-qwen-%s-q8_0-llamacpp-0c1e57098b.gguf" % rev[:12]
    path = "/srv/fastchat-lab/models/.gguf/" + name
    gguf = host.file(path)
    assert gguf.exists and gguf.size > 1000000
    record = json.loads(host.file(path + ".json").content_string)
    assert record["model"] == "tiny-qwen" and record["revision"] == rev
    assert record["quantization"] == "q8_0"
    assert host.run("cd /srv/fastchat-lab/models/.gguf && sha256sum -c %s.sha256" % name).rc == 0
    assert not host.get_host("docker://fcl-lab-gpu1").file(path).exists


def test_the_worker_host_only_loaded_the_image(host):
    # It never built anything: no clone, no build context, no base image.
    worker = host.get_host("docker://fcl-lab-gpu1")
    assert not worker.file("/var/lib/fastchat-lab/image/src").exists
    assert worker.run("docker image inspect fastchat-lab/rootfs:bookworm").rc != 0


def test_the_image_trusts_the_extra_ca(host, image):
    out = host.check_output(
        "docker run --rm %s sh -c 'test -s /usr/local/share/ca-certificates/fastchat-lab-extra-ca.crt"
        " && grep -c BEGIN /etc/ssl/certs/ca-certificates.crt'" % image)
    assert int(out) > 0


# Importing FastChat's servers sends sys.stdout to its logger (stderr): the checks
# below read the source without importing it, or print with sys.__stdout__.
def test_the_streaming_patch_is_applied(host, image):
    src = host.check_output(
        "docker run --rm %s python3 -c \"import importlib.util as u, sys;"
        " sys.stdout.write(open(u.find_spec('fastchat.serve.openai_api_server').origin).read())\"" % image)
    assert "import json" in src
    assert ".json(exclude_unset=True, ensure_ascii=False)" not in src
    assert "json.dumps(chunk.model_dump(exclude_unset=True), ensure_ascii=False)" in src


def test_every_service_module_imports(host, image):
    out = host.check_output(
        "docker run --rm %s python3 -c \"import sys, fastchat.serve.controller, fastchat.serve.openai_api_server,"
        " fastchat.serve.model_worker, fastchat.serve.gradio_web_server_multi, pydantic, gradio, transformers;"
        " sys.__stdout__.write('%%s %%s %%s' %% (pydantic.VERSION, gradio.__version__, transformers.__version__))\""
        % image)
    pydantic_v, gradio_v, transformers_v = out.split()[-3:]
    assert pydantic_v.startswith("2.") and gradio_v.startswith("4.") and transformers_v.startswith("4.33.")


def test_remote_code_model_loads_and_generates(host, image):
    worker = host.get_host("docker://fcl-lab-gpu1")
    out = worker.check_output(
        "docker run --rm -v /srv/fastchat-lab/models/tiny-remote:/models/tiny-remote:ro %s python3 -c "
        "\"from transformers import AutoModelForCausalLM, AutoTokenizer;"
        " t = AutoTokenizer.from_pretrained('/models/tiny-remote', trust_remote_code=True);"
        " m = AutoModelForCausalLM.from_pretrained('/models/tiny-remote', trust_remote_code=True);"
        " ids = m.generate(**t('hello world', return_tensors='pt'), max_new_tokens=4, do_sample=False);"
        " import sys; sys.__stdout__.write('%%s %%d' %% (type(m).__name__, ids.shape[1]))\"" % image)
    name, length = out.split()[-2:]
    assert name == "TinyRemoteForCausalLM" and int(length) > 2


def test_streaming_chat_completion_through_the_api_server():
    # Through the lab's own OpenAI API (the proxy, with the key), as a client streams.
    import ssl
    import urllib.request
    head = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  "fcl-lab-head").strip()
    # Greedy (temperature 0): the random-weight model's answer is then the same every run.
    # Sampled (the API's default 0.7), it now and then drew the end-of-text token before
    # 8 tokens and finished with "stop" (CI of d69cf6d).
    body = json.dumps({"model": "tiny-chat", "stream": True, "max_tokens": 8, "temperature": 0,
                       "messages": [{"role": "user", "content": "hello world"}]}).encode()
    req = urllib.request.Request("https://%s:8000/v1/chat/completions" % head, data=body,
                                 headers={"Authorization": "Bearer " + API_KEY,
                                          "Content-Type": "application/json"})
    context = ssl.create_default_context(cafile=CA)
    with urllib.request.urlopen(req, timeout=120, context=context) as resp:
        assert resp.status == 200
        out = resp.read().decode()
    events = [line[len("data: "):] for line in out.splitlines() if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", out
    chunks = [json.loads(e) for e in events[:-1]]
    assert len(chunks) >= 2, out
    assert all(c["id"].startswith("chatcmpl-") and c["model"] == "tiny-chat" for c in chunks), out
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert any(c["choices"][0]["delta"].get("content") for c in chunks), out
    assert chunks[-1]["choices"][0]["finish_reason"] == "length", out
    assert "error_code" not in out
    logs = subprocess.run(["docker", "exec", "fcl-lab-head", "sh", "-c",
                           "docker logs $(docker ps -q --filter label=fastchat-lab.service=openai-api) 2>&1"],
                          capture_output=True, text=True, check=True).stdout
    assert "Traceback" not in logs, logs[-2000:]


PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", ".")
STACKS = os.path.join(PROJECT, "roles", "fastchat_image", "files", "stacks")


def lock_tool():
    """scripts/lock as a module: its reader of the locks and its name normalisation."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("fastchat_lab_lock",
                                                  os.path.join(PROJECT, "scripts", "lock"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


LOCK = lock_tool()


def locked(stack, prefix=""):
    """{name: version} of a venv's hash locks (scripts/lock), the three files together."""
    result = {}
    for name in ("lock-build.txt", "lock-torch.txt", "lock.txt"):
        path = os.path.join(STACKS, stack, prefix + name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                result.update(LOCK.versions(fh.read()))
    return result


def frozen(host, image, path, local):
    """{name: version} of an image venv's freeze.txt; ``local`` (installed from the
    build context's tree, not an index) must be there as a file:// requirement."""
    result = {}
    for line in host.check_output("docker run --rm %s cat %s" % (image, path)).splitlines():
        if " @ file://" in line:
            package = LOCK.normalize(line.split(" @ ")[0])
            assert package == local, line
            result[package] = "local"
        elif "==" in line:
            package, version = line.split("==")
            result[LOCK.normalize(package)] = version
    assert result.pop(local, None) == "local", (path, local)
    return result


@pytest.mark.parametrize("stack,path,prefix,local", [
    ("cpu", "/opt/fastchat/freeze.txt", "", "fschat"),
    ("llamacpp-cpu", "/opt/fastchat/freeze.txt", "", "fschat"),
    ("llamacpp-cpu", "/opt/llamacpp/freeze.txt", "convert-", "gguf"),
])
def test_every_package_in_the_image_is_the_locked_one(host, stack, path, prefix, local):
    # The image holds exactly what the stack's hash locks list (installed with
    # --require-hashes), plus FastChat (or gguf) from the build's own tree.
    image = image_tags(host, stack)[0]
    assert frozen(host, image, path, local) == locked(stack, prefix)
