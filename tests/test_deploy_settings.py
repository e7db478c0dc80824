"""module_utils/deploy_settings.py: the API keys, web UI logins and page settings are
checked before any host changes, and no message ever quotes a secret."""

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.deploy_settings import (
    api_keys_file,
    deploy_problems,
    web_ui_auth_file,
)

KEY = "sk-" + "k" * 30
GOOD = {"where": "head", "api_keys": [{"name": "alice", "key": KEY}], "open_api": False,
        "has_api": True, "users": [{"name": "alice", "password": "s3cret-passw0rd"}],
        "open_web_ui": False, "has_web_ui": True, "page": {}, "lab_name": "GPU lab",
        "models": ["Qwen-7B-Chat"]}


def problems(**override):
    return deploy_problems(**dict(GOOD, **override))


def test_good_settings_have_no_problem():
    assert problems() == []


@pytest.mark.parametrize("override, expected", [
    ({"api_keys": []}, "head: fastchat_deploy_api_keys is empty, so the OpenAI API server "
                       "would answer anyone. Fix: set fastchat_deploy_api_keys"),
    ({"api_keys": [], "open_api": "yes"}, "fastchat_deploy_open_api: must be a boolean"),
    ({"api_keys": [KEY]}, "fastchat_deploy_api_keys[0]: must be a mapping with exactly name "
                          "and key"),
    ({"api_keys": [{"name": "a b", "key": KEY}]}, "fastchat_deploy_api_keys[0].name:"),
    ({"api_keys": [{"name": "bob", "key": "short"}]}, "the key of bob is not 16-256"),
    ({"api_keys": [{"name": "bob", "key": KEY + ",x"}]}, "splits keys on commas"),
    ({"api_keys": [{"name": "a", "key": KEY}, {"name": "a", "key": KEY + "x"}]},
     "fastchat_deploy_api_keys[1].name: a is given twice"),
    ({"users": []}, "head: fastchat_deploy_web_ui_users is empty, so the web UI would let "
                    "anyone"),
    ({"users": [{"name": "bob", "password": "pass:word1"}]}, "the password of bob is not"),
    ({"users": [{"name": "bob", "password": "pass,word1"}]}, "the password of bob is not"),
    ({"users": [{"name": "bob", "password": "short"}]}, "the password of bob is not"),
    ({"users": "alice:pw"}, "fastchat_deploy_web_ui_users: must be a list"),
    # 8-11 characters were accepted before: the login can be guessed at nginx's rate.
    ({"users": [{"name": "bob", "password": "eight888"}]},
     "the password of bob is not 12-128 characters"),
    ({"users": [{"name": "bob", "password": "elevenchars"}]}, "the password of bob is not 12"),
    ({"users": [{"name": "bob", "password": "a-long-password\n"}]}, "the password of bob is not"),
    ({"api_keys": [{"name": "bob", "key": KEY + "\n"}]}, "the key of bob is not 16-256"),
    ({"api_keys": [{"name": "bob", "key": "-" + KEY}]}, "that does not begin with '-'"),
    ({"api_keys": [{"name": "a", "key": KEY}, {"name": "b", "key": KEY}]},
     "fastchat_deploy_api_keys[1].key: b has the same key as a, so revoking one would revoke "
     "both. Fix: give each name its own key."),
    ({"log_days": 0}, "fastchat_deploy_log_days: must be a whole number of days from 1 to 3650"),
    ({"log_days": "14"}, "fastchat_deploy_log_days: must be a whole number"),
    ({"log_days": True}, "fastchat_deploy_log_days: must be a whole number"),
    ({"log_days": 99999}, "fastchat_deploy_log_days: must be a whole number"),
    ({"page": {"titel": "x"}}, "fastchat_deploy_page / fastchat_deploy_lab_name: "
                               "settings.titel: unknown"),
])
def test_each_problem_is_named_with_its_fix(override, expected):
    found = problems(**override)
    assert any(expected in p for p in found), found
    secrets = [entry.get("key") or entry.get("password")
               for entry in list(override.get("api_keys") or []) + list(override.get("users") or [])
               if isinstance(entry, dict)]
    for problem in found:
        assert problem.startswith("head: ") and " Fix: " in problem, problem
        for secret in secrets + [KEY]:
            assert secret not in problem, problem


def test_open_on_purpose_needs_no_secrets():
    assert problems(api_keys=[], open_api=True, users=[], open_web_ui=True) == []


def test_hosts_without_the_services_are_not_asked():
    assert problems(api_keys=[], users=[], has_api=False, has_web_ui=False) == []


def test_the_files_the_services_read():
    assert api_keys_file([{"name": "a", "key": "k1"}, {"name": "b", "key": "k2"}]) == "k1\nk2\n"
    assert web_ui_auth_file([{"name": "a", "password": "p1"}]) == "a:p1\n"


def test_the_page_the_lab_deploys_does_not_change_when_a_model_joins():
    """A host joining with a new model must restart nothing elsewhere: the page points at
    its live model lists instead of naming the models."""
    from ansible_collections.fastchat_lab.lab.plugins.filter.deploy import FilterModule
    lab_page = FilterModule().filters()["lab_page"]
    two = lab_page({}, ["tiny-chat", "tiny-remote"], "Rehearsal lab")
    three = lab_page({}, ["tiny-chat", "tiny-joined", "tiny-remote"], "Rehearsal lab")
    assert two == three
    assert "Rehearsal lab" in two["intro_md"] and "model lists on this page" in two["intro_md"]
