"""Verify the FastChat image on the test hosts: built once, loaded where the plan
needs it, trusting the extra CA, every service importable, and a streaming chat
completion through the OpenAI API server from a worker serving the tiny model."""

import json
import time

import pytest

testinfra_hosts = ["fcl-fc-head"]
IMAGE_REPO = "fastchat-lab/fastchat"


def image_tags(host):
    out = host.check_output("docker images %s --format '{{.Repository}}:{{.Tag}}'" % IMAGE_REPO)
    return sorted(t for t in out.split() if t)


@pytest.fixture(scope="module")
def image(host):
    tags = image_tags(host)
    assert len(tags) == 1, tags
    return tags[0]


@pytest.mark.parametrize("name", ["fcl-fc-head", "fcl-fc-worker"])
def test_both_hosts_have_the_same_single_cpu_image(host, name):
    other = host.get_host("docker://" + name)
    tags = image_tags(other)
    assert len(tags) == 1 and tags == image_tags(host), tags
    stack, commit, inputs = tags[0].split(":", 1)[1].split("-")
    assert stack == "cpu" and len(commit) == 10 and len(inputs) == 12
    labels = json.loads(other.check_output("docker image inspect -f '{{json .Config.Labels}}' %s" % tags[0]))
    assert labels["fastchat-lab.stack"] == "cpu"
    assert labels["org.opencontainers.image.revision"].startswith(commit)


def test_the_worker_host_only_loaded_the_image(host):
    # It never built anything: no clone, no build context, no base image.
    worker = host.get_host("docker://fcl-fc-worker")
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
    worker = host.get_host("docker://fcl-fc-worker")
    out = worker.check_output(
        "docker run --rm -v /srv/fastchat-lab/models/tiny-remote:/models/tiny-remote:ro %s python3 -c "
        "\"from transformers import AutoModelForCausalLM, AutoTokenizer;"
        " t = AutoTokenizer.from_pretrained('/models/tiny-remote', trust_remote_code=True);"
        " m = AutoModelForCausalLM.from_pretrained('/models/tiny-remote', trust_remote_code=True);"
        " ids = m.generate(**t('hello world', return_tensors='pt'), max_new_tokens=4, do_sample=False);"
        " import sys; sys.__stdout__.write('%%s %%d' %% (type(m).__name__, ids.shape[1]))\"" % image)
    name, length = out.split()[-2:]
    assert name == "TinyRemoteForCausalLM" and int(length) > 2


def test_streaming_chat_completion_through_the_api_server(host, image):
    models = "/srv/fastchat-lab/models"
    run = "docker run -d --network host --name {name} -v %s:/models:ro %s python3 -m " % (models, image)
    names = ["fcl-controller", "fcl-worker", "fcl-api"]
    host.run("docker rm -f %s" % " ".join(names))
    try:
        host.check_output(run.format(name="fcl-controller")
                          + "fastchat.serve.controller --host 127.0.0.1 --port 21001")
        time.sleep(3)
        host.check_output(run.format(name="fcl-worker")
                          + "fastchat.serve.model_worker --host 127.0.0.1 --port 21002"
                          " --worker-address http://127.0.0.1:21002 --controller-address http://127.0.0.1:21001"
                          " --model-path /models/tiny-chat --model-names tiny-chat --device cpu"
                          " --conv-template vicuna_v1.1")
        host.check_output(run.format(name="fcl-api")
                          + "fastchat.serve.openai_api_server --host 127.0.0.1 --port 8000"
                          " --controller-address http://127.0.0.1:21001")
        deadline = time.time() + 120
        listed = ""
        while time.time() < deadline:
            listed = host.run("curl -fsS http://127.0.0.1:8000/v1/models").stdout
            if "tiny-chat" in listed:
                break
            time.sleep(2)
        assert "tiny-chat" in listed, host.run("docker logs --tail 30 fcl-worker").stderr
        body = json.dumps({"model": "tiny-chat", "stream": True, "max_tokens": 8,
                           "messages": [{"role": "user", "content": "hello world"}]})
        out = host.check_output(
            "curl -fsS -N -H 'Content-Type: application/json' -d '%s'"
            " http://127.0.0.1:8000/v1/chat/completions" % body)
        events = [line[len("data: "):] for line in out.splitlines() if line.startswith("data: ")]
        assert events and events[-1] == "[DONE]", out
        chunks = [json.loads(e) for e in events[:-1]]
        assert len(chunks) >= 2, out
        assert all(c["id"].startswith("chatcmpl-") and c["model"] == "tiny-chat" for c in chunks), out
        assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
        assert any(c["choices"][0]["delta"].get("content") for c in chunks), out
        assert chunks[-1]["choices"][0]["finish_reason"] == "length", out
        assert "error_code" not in out
        logs = host.run("docker logs fcl-api 2>&1").stdout
        assert "Traceback" not in logs, logs[-2000:]
    finally:
        host.run("docker rm -f %s" % " ".join(names))
