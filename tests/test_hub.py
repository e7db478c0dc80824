"""module_utils/hub.py: each model's clone URL, and the hub token only to the hosts that
model_weights_token_hosts allows, over https; URLs with credentials refused."""

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.hub import clone_url, hub_problems

HUB = "https://huggingface.co"
ALLOWED = ["huggingface.co"]
SOURCES = {"Qwen-7B-Chat": "Qwen/Qwen-7B-Chat"}


def test_clone_urls():
    assert clone_url(HUB + "//", "Qwen/Qwen-7B-Chat") == "https://huggingface.co/Qwen/Qwen-7B-Chat"
    assert clone_url(HUB, "file:///srv/hub/x") == "file:///srv/hub/x"


@pytest.mark.parametrize("hub_url, token, sources", [
    (HUB, True, SOURCES),
    (HUB, False, SOURCES),
    # A mirror without a token: public models, nothing to leak.
    ("https://hf-mirror.com", False, SOURCES),
    ("http://mirror.lab:8080/hub", False, SOURCES),
    # A local hub: git sends nothing over the network.
    ("file:///srv/hub", True, SOURCES),
])
def test_good_settings(hub_url, token, sources):
    assert hub_problems(hub_url, token, ALLOWED, sources) == []


@pytest.mark.parametrize("hub_url, token, hosts, sources, expected", [
    # The China preset (fastchat_china_mirror: true) with a token: the mirror would get it.
    ("https://hf-mirror.com", True, ALLOWED, SOURCES,
     "all: model_weights_hub_url: the hub token would be sent to hf-mirror.com (for "
     "Qwen-7B-Chat), which is not in model_weights_token_hosts (huggingface.co). Fix: leave "
     "model_weights_hub_token empty for a mirror"),
    ("http://huggingface.co", True, ALLOWED, SOURCES,
     "all: model_weights_hub_url: the hub token would be sent over plain http to huggingface.co"),
    ("https://evil.example/huggingface.co", True, ALLOWED, SOURCES, "sent to evil.example"),
    ("https://huggingface.co.evil.example", True, ALLOWED, SOURCES,
     "sent to huggingface.co.evil.example"),
    (HUB, True, ALLOWED, {"M": "https://gitlab.example/m.git"},
     "all: fastchat_models[M].source: the hub token would be sent to gitlab.example"),
    (HUB, False, ALLOWED, {"M": "https://user:s3cr3t-tok@gitlab.example/m.git"},
     "all: fastchat_models[M].source: https://gitlab.example/... carries credentials"),
    ("https://user:s3cr3t-tok@huggingface.co", False, ALLOWED, SOURCES,
     "all: model_weights_hub_url: https://huggingface.co/... carries credentials"),
    ("https://hub.example/$(reboot)", False, ALLOWED, SOURCES,
     "all: model_weights_hub_url: 'https://hub.example/$(reboot)' is not an http(s)://"),
    ("https://huggingface.co\n", False, ALLOWED, SOURCES, "all: model_weights_hub_url: "),
    ("ext::sh -c reboot", False, ALLOWED, SOURCES, "all: model_weights_hub_url: "),
    ("ssh://git@huggingface.co/x", False, ALLOWED, SOURCES, "all: model_weights_hub_url: "),
    ("https://u:s3cr3t-tok @huggingface.co", False, ALLOWED, SOURCES,
     "'https://***@huggingface.co' is not an http(s)://"),
    (HUB, True, "huggingface.co", SOURCES, "all: model_weights_token_hosts: must be a list"),
    (HUB, True, ["huggingface.co\nx"], SOURCES, "all: model_weights_token_hosts: must be a list"),
])
def test_refusals_name_the_variable_and_the_fix(hub_url, token, hosts, sources, expected):
    found = hub_problems(hub_url, token, hosts, sources)
    assert any(expected in p for p in found), found
    assert all(p.startswith("all: ") and " Fix: " in p for p in found), found
    assert not any("s3cr3t-tok" in p for p in found), found


def test_a_trusted_mirror_may_be_given_the_token():
    assert hub_problems("https://hf.mirror.lab", True, ["huggingface.co", "hf.mirror.lab"],
                        SOURCES) == []
