"""tests/fixtures/image-cache: the lab images a rehearsal head built, kept by their tag and
given to the next rehearsal head. Run against a stand-in for docker that plays a test host
with Docker inside (its images, its fastchat_image record): what is saved (the record's
tag of each stack, once; a new tag replaces the old), what is loaded (only what the host
lacks), and what is refused (bad names, bad record entries)."""

import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "fixtures", "image-cache")

# docker as image-cache uses it, for one running container "fcl-head" whose own Docker
# holds the images listed in $FAKE/images (one tag a line); "docker save TAG" writes
# "IMAGE TAG", "docker load" adds the tag it reads. Every call is logged in $FAKE/log.
FAKE_DOCKER = r"""#!/usr/bin/env python3
import json, os, sys
fake = os.environ["FAKE"]
args = sys.argv[1:]
with open(os.path.join(fake, "log"), "a") as f:
    f.write(json.dumps(args) + "\n")
images_file = os.path.join(fake, "images")
images = open(images_file).read().split() if os.path.exists(images_file) else []
if args[0] == "ps":
    print("abc123" if "name=^fcl-head$" in args else "")
    sys.exit(0)
if args[0] != "exec":
    sys.exit(2)
args = args[1:]
if args[0] == "-i":
    args = args[1:]
if args[0] != "fcl-head":
    sys.exit(1)
cmd = args[1:]
if cmd[:1] == ["cat"]:
    record = os.path.join(fake, "record.json")
    if not os.path.exists(record):
        sys.exit(1)
    sys.stdout.write(open(record).read())
elif cmd[:3] == ["docker", "image", "inspect"]:
    sys.exit(0 if cmd[3] in images else 1)
elif cmd[:2] == ["docker", "save"]:
    sys.stdout.write("IMAGE %s\n" % cmd[2])
elif cmd[:3] == ["docker", "image", "rm"]:
    if cmd[3] not in images:
        sys.exit(1)
    with open(images_file, "w") as f:
        f.write("".join(t + "\n" for t in images if t != cmd[3]))
elif cmd[:2] == ["docker", "load"]:
    tag = sys.stdin.read().split()[1]
    with open(images_file, "a") as f:
        f.write(tag + "\n")
else:
    sys.exit(3)
"""

CPU = "fastchat-lab/fastchat:cpu-0123456789-aaaaaaaaaaaa"
LLAMA = "fastchat-lab/fastchat:llamacpp-cpu-0123456789-bbbbbbbbbbbb"
LLAMA_NEW = "fastchat-lab/fastchat:llamacpp-cpu-0123456789-cccccccccccc"


@pytest.fixture
def fake(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    return {"bin": bin_dir, "state": state, "cache": tmp_path / "cache"}


def head(fake, record=None, images=()):
    if record is not None:
        (fake["state"] / "record.json").write_text(json.dumps(record))
    (fake["state"] / "images").write_text("".join(t + "\n" for t in images))
    (fake["state"] / "log").write_text("")


def run(fake, *args):
    env = dict(os.environ, PATH="%s:%s" % (fake["bin"], os.environ["PATH"]), FAKE=str(fake["state"]),
               FASTCHAT_LAB_IMAGE_CACHE=str(fake["cache"]))
    return subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True)


def calls(fake):
    return [json.loads(line) for line in (fake["state"] / "log").read_text().splitlines()]


def test_save_keeps_the_recorded_image_of_each_stack_once(fake):
    head(fake, {"cpu": CPU, "llamacpp-cpu": LLAMA}, [CPU, LLAMA, LLAMA_NEW])
    result = run(fake, "save", "fcl-head")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["saved cpu %s" % CPU, "saved llamacpp-cpu %s" % LLAMA]
    assert (fake["cache"] / "llamacpp-cpu.tar").read_text() == "IMAGE %s\n" % LLAMA
    assert (fake["cache"] / "llamacpp-cpu.tag").read_text() == LLAMA + "\n"
    # The same tags again: nothing is saved.
    head(fake, {"cpu": CPU, "llamacpp-cpu": LLAMA}, [CPU, LLAMA])
    result = run(fake, "save", "fcl-head")
    assert result.returncode == 0 and result.stdout == ""
    assert not [c for c in calls(fake) if "save" in c]


def test_a_new_tag_replaces_the_kept_image_of_its_stack(fake):
    head(fake, {"llamacpp-cpu": LLAMA}, [LLAMA])
    assert run(fake, "save", "fcl-head").returncode == 0
    # A later head: load gave it the kept image, its role built a new one (inputs changed).
    head(fake, {"llamacpp-cpu": LLAMA_NEW}, [LLAMA, LLAMA_NEW])
    result = run(fake, "save", "fcl-head")
    assert result.stdout == "saved llamacpp-cpu %s\n" % LLAMA_NEW
    assert (fake["cache"] / "llamacpp-cpu.tar").read_text() == "IMAGE %s\n" % LLAMA_NEW
    assert sorted(os.listdir(fake["cache"])) == ["llamacpp-cpu.tag", "llamacpp-cpu.tar"]
    # The superseded kept image leaves the head: it holds what its role made, one image a
    # stack, as a fresh host would.
    assert (fake["state"] / "images").read_text().split() == [LLAMA_NEW]
    assert "removed the superseded kept image %s" % LLAMA in result.stderr


def test_a_superseded_kept_image_the_head_lacks_or_keeps_using_is_left_alone(fake):
    head(fake, {"cpu": CPU}, [CPU])
    assert run(fake, "save", "fcl-head").returncode == 0
    new = CPU.replace("aaaaaaaaaaaa", "dddddddddddd")
    # The head never had the kept image: nothing to remove.
    head(fake, {"cpu": new}, [new])
    result = run(fake, "save", "fcl-head")
    assert result.returncode == 0 and result.stdout == "saved cpu %s\n" % new
    assert not [c for c in calls(fake) if c[-3:-1] == ["image", "rm"]]


def test_save_takes_only_the_stacks_asked_for(fake):
    head(fake, {"cpu": CPU, "llamacpp-cpu": LLAMA}, [CPU, LLAMA])
    result = run(fake, "save", "fcl-head", "llamacpp-cpu")
    assert result.stdout == "saved llamacpp-cpu %s\n" % LLAMA
    assert not (fake["cache"] / "cpu.tar").exists()


def test_load_gives_the_head_only_what_it_lacks(fake):
    head(fake, {"cpu": CPU, "llamacpp-cpu": LLAMA}, [CPU, LLAMA])
    assert run(fake, "save", "fcl-head").returncode == 0
    # A new head that has the cpu image already (pulled elsewhere) and not the other one.
    head(fake, None, [CPU])
    result = run(fake, "load", "fcl-head")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "loaded llamacpp-cpu %s\n" % LLAMA
    assert (fake["state"] / "images").read_text().split() == [CPU, LLAMA]
    result = run(fake, "load", "fcl-head")
    assert result.stdout == ""


def test_nothing_to_do_without_a_running_container_or_a_record(fake):
    head(fake, None, [CPU])
    result = run(fake, "save", "fcl-other")
    assert result.returncode == 0 and "no running container fcl-other" in result.stderr
    result = run(fake, "save", "fcl-head")
    assert result.returncode == 0 and "has no image record" in result.stderr
    result = run(fake, "load", "fcl-head")
    assert result.returncode == 0 and result.stdout == ""


def test_bad_record_entries_never_reach_dockers_command_line(fake):
    head(fake, {"cpu": "x; reboot", "../etc": CPU, "llamacpp-cpu": "--privileged"}, [CPU])
    result = run(fake, "save", "fcl-head")
    assert result.returncode == 0
    assert result.stderr.count("skipping a bad record entry") == 3
    assert not [c for c in calls(fake) if "save" in c or "inspect" in c]
    assert not fake["cache"].exists() or os.listdir(fake["cache"]) == []


@pytest.mark.parametrize("args", [["save"], ["push", "fcl-head"], ["save", "fcl head"],
                                  ["load", "-fcl"], ["save", "fcl-head", "../cpu"],
                                  ["load", "fcl-head", "cpu;x"]])
def test_bad_arguments_are_refused(fake, args):
    head(fake, {"cpu": CPU}, [CPU])
    result = run(fake, *args)
    assert result.returncode == 2
    assert calls(fake) == []
