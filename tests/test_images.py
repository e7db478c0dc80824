"""fastchat_image's image lookup (module_utils/images.py): which images a host lacks, from
community.docker.docker_image_info's answer, and which some host of the lab lacks."""

import pytest

from ansible_collections.fastchat_lab.lab.plugins.filter.images import FilterModule
from ansible_collections.fastchat_lab.lab.plugins.module_utils.images import ImagesError, lacked, missing, wanted

IMAGES = {"cpu": "fastchat-lab/fastchat:cpu-1a2b3c", "cuda117": "fastchat-lab/fastchat:cuda117-1a2b3c",
          "llamacpp-cuda": "fastchat-lab/fastchat:llamacpp-cuda-9f8e7d"}
PLAN = {"hosts": {"head": {"stacks": ["cpu", "cuda117"]}, "p40": {"stacks": ["cuda117", "llamacpp-cuda"]},
                  "cpu-only": {"stacks": []}}}


def info(*refs, **extra):
    """What docker_image_info registers: the images found, with their tags (an image
    may carry several: a rebuilt stack's old tag and the new one)."""
    out = {"changed": False, "images": [{"Id": "sha256:%064x" % n, "RepoTags": [ref, ref + "-old"]}
                                        for n, ref in enumerate(refs)]}
    out.update(extra)
    return out


def test_the_stacks_a_host_needs_among_the_built_images():
    assert wanted(PLAN, "p40", IMAGES) == {"cuda117": IMAGES["cuda117"], "llamacpp-cuda": IMAGES["llamacpp-cuda"]}
    # A stack that was not built (or not recorded) is not looked up here: the role refuses it.
    assert wanted(PLAN, "p40", {"cuda117": IMAGES["cuda117"]}) == {"cuda117": IMAGES["cuda117"]}
    assert wanted(PLAN, "cpu-only", IMAGES) == {} and wanted(PLAN, "not-planned", IMAGES) == {}


def test_a_host_lacks_the_images_the_daemon_did_not_find():
    need = wanted(PLAN, "p40", IMAGES)
    assert missing(info(IMAGES["cuda117"], IMAGES["llamacpp-cuda"]), need) == []
    assert missing(info(IMAGES["cuda117"]), need) == ["llamacpp-cuda"]
    assert missing(info(), need) == ["cuda117", "llamacpp-cuda"]


def test_another_tag_of_the_stack_is_not_the_image():
    # Drift: the host has the stack's image of an earlier build only.
    need = {"cuda117": IMAGES["cuda117"]}
    found = {"images": [{"RepoTags": ["fastchat-lab/fastchat:cuda117-000000"]}]}
    assert missing(found, need) == ["cuda117"]
    # An untagged (dangling) image answers nothing.
    assert missing({"images": [{"RepoTags": []}, {"RepoTags": None}]}, need) == ["cuda117"]


def test_skipped_failed_and_malformed_answers():
    need = wanted(PLAN, "head", IMAGES)
    # The build host (lookup skipped) or a host needing no image: nothing lacked.
    assert missing({"skipped": True, "changed": False}, need) == [] and missing({}, need) == []
    # Check mode on a host without Docker yet (the role lets the lookup fail): all lacked.
    assert missing({"failed": True, "msg": "Error connecting"}, need) == ["cpu", "cuda117"]
    with pytest.raises(ImagesError, match="no images list"):
        missing({"changed": False}, need)


def test_the_images_some_host_lacks_once_each():
    infos = {"head": {"skipped": True}, "p40": info(IMAGES["cuda117"]), "cpu-only": {},
             "p40b": info()}
    plan = {"hosts": dict(PLAN["hosts"], p40b={"stacks": ["cuda117", "llamacpp-cuda"]})}
    assert lacked(infos, plan, IMAGES) == [IMAGES["cuda117"], IMAGES["llamacpp-cuda"]]
    assert lacked({"p40": info(*IMAGES.values())}, plan, IMAGES) == []


def test_the_role_reads_them_through_its_filters():
    filters = FilterModule().filters()
    need = filters["images_wanted"](PLAN, "p40", IMAGES)
    assert filters["images_missing"](info(IMAGES["cuda117"]), need) == ["llamacpp-cuda"]
    assert filters["images_lacked"]({"p40": info()}, PLAN, IMAGES) == sorted(need.values())


def test_a_stacks_build_context_as_lab_files_entries():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.images import context_files

    items = [{"src": "Dockerfile", "dest": "Dockerfile"}, {"src": "stacks/cpu/lock.txt", "dest": "build/lock.txt"}]
    got = context_files("/var/lib/fastchat-lab/image/ctx/cpu", items, ["FROM x\n", "a==1\n"], "-----BEGIN")
    assert got == [
        {"path": "/var/lib/fastchat-lab/image/ctx/cpu/build", "state": "directory", "mode": "0750"},
        {"path": "/var/lib/fastchat-lab/image/ctx/cpu/Dockerfile", "mode": "0644", "content": "FROM x\n"},
        {"path": "/var/lib/fastchat-lab/image/ctx/cpu/build/lock.txt", "mode": "0644", "content": "a==1\n"},
        {"path": "/var/lib/fastchat-lab/image/ctx/cpu/build/extra-ca.crt", "mode": "0644", "content": "-----BEGIN"}]
    # No extra CA: the file is there, empty (the build reads it either way).
    assert context_files("/c", [], [], "")[-1]["content"] == ""
    with pytest.raises(ImagesError, match="2 context files but 1 contents"):
        context_files("/c", items, ["x"])
    with pytest.raises(ImagesError, match="not a path inside the build context"):
        context_files("/c", [{"src": "x", "dest": "../etc/passwd"}], ["x"])


# ---------------------------------------------------------------------------
# The build host's source clones: the git task runs only where a clone is not already
# what the build needs (it would ask the remote just to find nothing to do)
# ---------------------------------------------------------------------------

COMMIT = "1" * 40
URL = "https://github.com/lm-sys/FastChat.git"


def clone_probe(head=COMMIT, status="", origin=URL, rc=None, name="fastchat"):
    """host_probe's answers to the clone questions of one clone (rc: {question: rc})."""
    rc = rc or {}
    out = {"head": head, "status": status, "origin": origin}
    return {"commands": {"%s.%s" % (name, q): {"rc": rc.get(q, 0), "stdout": out[q], "stderr": ""}
                         for q in ("head", "status", "origin")}}


def test_the_clone_questions_are_read_only_offline_argv_lists():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.images import clone_probe_commands

    got = clone_probe_commands({"fastchat": "/var/lib/fastchat-lab/image/src/FastChat"})
    assert got == {
        "fastchat.head": ["git", "-C", "/var/lib/fastchat-lab/image/src/FastChat", "rev-parse", "--verify",
                          "HEAD^{commit}"],
        "fastchat.status": ["git", "-C", "/var/lib/fastchat-lab/image/src/FastChat", "status", "--porcelain",
                            "--untracked-files=no"],
        "fastchat.origin": ["git", "-C", "/var/lib/fastchat-lab/image/src/FastChat", "remote", "get-url", "origin"]}
    # Nothing that reaches the network (fetch, ls-remote, pull, clone).
    assert not {"fetch", "ls-remote", "pull", "clone"} & {a for argv in got.values() for a in argv}
    with pytest.raises(ImagesError, match="not absolute"):
        clone_probe_commands({"fastchat": "src/FastChat"})
    with pytest.raises(ImagesError, match="mapping"):
        clone_probe_commands(["/src"])


def test_a_clone_at_the_commit_unchanged_from_the_url_is_current():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.images import clone_current, clone_head

    assert clone_current(clone_probe(), "fastchat", URL, COMMIT) is True
    assert clone_head(clone_probe(), "fastchat") == COMMIT
    # Trailing newlines of the answers do not matter.
    assert clone_current(clone_probe(head=COMMIT + "\n", origin=URL + "\n"), "fastchat", URL, COMMIT)


@pytest.mark.parametrize("probe, url, commit, why", [
    (clone_probe(head="2" * 40), URL, COMMIT, "another commit checked out"),
    (clone_probe(status=" M fastchat/serve/openai_api_server.py"), URL, COMMIT, "a tracked file changed"),
    (clone_probe(status="D  fastchat/__init__.py"), URL, COMMIT, "a tracked file deleted and staged"),
    (clone_probe(origin="https://mirror.example/FastChat.git"), URL, COMMIT, "the clone is of another URL"),
    (clone_probe(), "https://mirror.example/FastChat.git", COMMIT, "the URL setting changed"),
    (clone_probe(rc={"head": 128}, head=""), URL, COMMIT, "no clone (or no commit)"),
    (clone_probe(rc={"head": 127, "status": 127, "origin": 127}), URL, COMMIT, "git is not installed"),
    (clone_probe(rc={"origin": 2}), URL, COMMIT, "no remote called origin"),
    (clone_probe(rc={"status": 128}), URL, COMMIT, "status failed"),
    (clone_probe(), URL, "", "no commit known yet (a ref's first build)"),
    (clone_probe(), URL, None, "no commit given"),
    (clone_probe(name="llamacpp"), URL, COMMIT, "only the other clone was asked"),
    ({}, URL, COMMIT, "nothing asked"),
    (None, URL, COMMIT, "no probe (check mode before it ran)"),
    ({"commands": {"fastchat.head": "x"}}, URL, COMMIT, "a malformed answer"),
])
def test_a_clone_that_drifted_or_is_unknown_is_not_current(probe, url, commit, why):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.images import clone_current

    assert clone_current(probe, "fastchat", url, commit) is False, why


def test_the_clone_head_of_a_failed_question_is_empty():
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.images import clone_head

    assert clone_head(clone_probe(rc={"head": 128}), "fastchat") == ""
    assert clone_head({}, "fastchat") == "" and clone_head(None, "llamacpp") == ""


def test_the_role_reads_the_clones_through_its_filters():
    filters = FilterModule().filters()
    commands = filters["image_clone_probe"]({"fastchat": "/w/src/FastChat", "llamacpp": "/w/src/llama.cpp"})
    assert sorted(commands) == ["fastchat.head", "fastchat.origin", "fastchat.status",
                                "llamacpp.head", "llamacpp.origin", "llamacpp.status"]
    assert filters["image_clone_current"](clone_probe(), "fastchat", URL, COMMIT) is True
    assert filters["image_clone_head"](clone_probe(name="llamacpp"), "llamacpp") == COMMIT
