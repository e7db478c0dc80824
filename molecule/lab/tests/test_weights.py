"""The model weights in the lab: on the hosts that need them, verified, with one fetch
from the hub per model (counted by the git wrapper on the head, the only host that can
reach the hub, over converge, idempotence and the join), an interrupted download
resumed without its finished object, and the hub token nowhere on disk.
(Was the fastchat scenario, which fetched the same weights on a lab of its own.)"""

import json

import pytest

testinfra_hosts = ["fcl-lab-head"]
MODELS = "/srv/fastchat-lab/models"
TOKEN = "fcl-secret-token-4711"


def marker(host, model):
    return json.loads(host.file("%s/%s/.fastchat-lab-weights.json" % (MODELS, model)).content_string)


@pytest.mark.parametrize("name,models", [
    ("fcl-lab-head", ["tiny-chat", "tiny-remote"]),
    ("fcl-lab-gpu1", ["tiny-chat", "tiny-remote"]),
])
def test_weights_are_where_the_plan_needs_them(host, name, models):
    target = host.get_host("docker://" + name)
    for model in models:
        rev = host.file("/fixtures/%s.rev" % model).content_string.strip()
        assert marker(target, model)["revision"] == rev
        out = target.run("/usr/local/libexec/fastchat-lab/fastchat_weights.py check %s/%s --revision %s"
                         % (MODELS, model, rev))
        assert out.rc == 0, out.stdout
        # Real weights, not git-lfs pointers.
        assert target.file("%s/%s/model.safetensors" % (MODELS, model)).size > 100000


def test_the_worker_host_has_no_way_to_the_hub(host):
    worker = host.get_host("docker://fcl-lab-gpu1")
    assert not worker.file("/fixtures").exists and not worker.file("/srv/hub").exists
    assert not worker.file("%s/tiny-chat/.git" % MODELS).exists


def test_each_model_was_fetched_from_the_hub_once(host):
    # The wrapper logs "DIRECTORY ARGS..." of each fetch (prepare.yml).
    log = [line.split(" ", 1) for line in
           host.file("/var/log/fcl-upstream-git.log").content_string.splitlines()]
    chat_rev = host.file("/fixtures/tiny-chat.rev").content_string.strip()
    remote_rev = host.file("/fixtures/tiny-remote.rev").content_string.strip()

    def fetches(model, kind, rev):
        return [args for cwd, args in log
                if cwd == "%s/%s" % (MODELS, model) and args.startswith(kind) and rev in args]

    # tiny-chat: its commit once, its LFS objects once, over converge, idempotence and
    # the join (tiny-joined, the same weights under another name, has a cache of its own).
    assert len(fetches("tiny-chat", "fetch ", chat_rev)) == 1, log
    assert len(fetches("tiny-chat", "lfs fetch", chat_rev)) == 1, log
    # tiny-remote had its commit already (interrupted download): no git fetch again.
    assert not fetches("tiny-remote", "fetch ", remote_rev), log
    assert len(fetches("tiny-remote", "lfs fetch", remote_rev)) == 1, log


def test_the_interrupted_download_resumed_without_its_finished_object(host):
    oid = host.file("/srv/tiny-remote-resumed-oid").content_string.strip()
    # The hub no longer has that object: the copy in the cache is the one fetched before.
    assert not host.run("find /srv/hub -name %s | grep -q ." % oid).rc == 0
    assert host.file("%s/tiny-remote/tokenizer.json" % MODELS).size > 1000
    assert host.run("cd %s/tiny-remote && git lfs fsck" % MODELS).rc == 0


def test_the_hub_token_is_nowhere_on_disk(host):
    for name in ("fcl-lab-head", "fcl-lab-gpu1", "fcl-lab-gpu2"):
        target = host.get_host("docker://" + name)
        found = target.run("grep -rl %s %s /root/.gitconfig /etc/gitconfig /run/fastchat-lab /var/log"
                           % (TOKEN, MODELS))
        assert found.stdout.strip() == "", found.stdout
    assert not host.file("/run/fastchat-lab/hub-token").exists
