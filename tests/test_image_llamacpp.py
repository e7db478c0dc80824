"""The fastchat_image role's llamacpp stacks, run on this machine through ansible-runner
with a stand-in for docker that records its arguments and builds nothing: llama.cpp's
source fetched at the plan's commit and verified, each stack's build context (the
Dockerfile, the llama.cpp tree, the worker module, the build inputs), docker build's
arguments, the tag and what changes it; and the refusals: a mirror without the commit,
URLs that are not plain git URLs, CUDA architectures CUDA 12.4 cannot build, no commit
in the plan, the worker module missing. The real images are built by
tests/bench/stack-image llamacpp-cpu (and the Molecule lab)."""

import json
import os
import re
import shutil
import subprocess

import ansible_runner
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROLE = os.path.join(ROOT, "roles", "fastchat_image")
WORKER = os.path.join(ROLE, "files", "fastchat_lab_llamacpp_worker.py")
CUDA_IMAGE = ("nvidia/cuda:12.4.1-devel-ubuntu22.04@sha256:"
              "da6791294b0b04d7e65d87b7451d6f2390b4d36225ab0701ee7dfec5769829f5")

PLAYBOOK = """
- name: Build the llama.cpp images with the fastchat_image role (docker is a stand-in).
  hosts: localhost
  gather_facts: true
  pre_tasks:
    - name: Stand in for the lab plan.
      ansible.builtin.set_fact:
        lab_plan_current: "{{ test_plan }}"
  roles:
    - role: fastchat_image
"""

# docker, as far as the role uses it: `image inspect TAG` answers from a list of the
# images "present", `build ... --tag=TAG .` records its arguments (and its context's
# directory) and adds TAG to that list.
FAKE_DOCKER = """#!/usr/bin/env python3
import json, os, sys
log, images = os.environ["FAKE_DOCKER_LOG"], os.environ["FAKE_DOCKER_IMAGES"]
present = open(images).read().split() if os.path.exists(images) else []
args = sys.argv[1:]
if args[:2] == ["image", "inspect"]:
    sys.exit(0 if args[2] in present else 1)
with open(log, "a") as f:
    f.write(json.dumps({"cwd": os.getcwd(), "args": args}) + "\\n")
if args[:1] == ["build"]:
    tags = [a[len("--tag="):] for a in args if a.startswith("--tag=")]
    with open(images, "a") as f:
        f.write("".join(t + "\\n" for t in tags))
"""

# What stands in for the worker module while roles/fastchat_image/files has none (the
# llama.cpp worker is written beside this role's build): the role copies it byte for byte.
WORKER_STAND_IN = '"""Stand-in for fastchat_lab_llamacpp_worker in tests/test_image_llamacpp.py."""\n'


def git(*args, cwd=None):
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t.invalid",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t.invalid")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_repo(where, files, tag=None):
    """A bare repository (file:// URL, as a mirror) with one commit of ``files``."""
    work = where.with_name(where.name + "-work")
    for rel, text in files.items():
        path = work / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    git("init", "-q", "-b", "master", str(work))
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "test tree", cwd=work)
    if tag:
        git("tag", tag, cwd=work)
    git("clone", "-q", "--bare", str(work), str(where))
    return git("rev-parse", "HEAD", cwd=work)


def fastchat_files():
    """FastChat 0.2.36's fastchat/ package (the installed fschat), as in its repository."""
    import importlib.util
    spec = importlib.util.find_spec("fastchat")
    assert spec is not None, "fschat is not installed: run scripts/setup"
    src = os.path.dirname(spec.origin)
    out = {}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if not name.endswith(".pyc"):
                path = os.path.join(dirpath, name)
                with open(path, "rb") as f:
                    out[os.path.join("fastchat", os.path.relpath(path, src))] = f.read()
    return out


CONVERTER_PATCH = os.path.join(ROLE, "files", "llamacpp-converter.patch")


def patch_images(which):
    """{file: text} of the converter patch's files as its hunks show them: before ("-" and
    context lines) or after ("+" and context lines) it."""
    out, name = {}, None
    with open(CONVERTER_PATCH) as f:
        for line in f.read().splitlines():
            if line.startswith("+++ b/"):
                name = line[len("+++ b/"):]
                out[name] = ""
            elif name and line.startswith("@@"):
                continue
            elif name and line[:1] in (" ", "-", "+") and not line.startswith(("--- ", "+++ ")):
                if line[0] == " " or line[0] == which:
                    out[name] += line[1:] + "\n"
    return out


LLAMACPP_TREE = {
    "CMakeLists.txt": "cmake_minimum_required(VERSION 3.14)\n",
    "convert_hf_to_gguf.py": "# the converter\n",
    "gguf-py/pyproject.toml": "[project]\nname = \"gguf\"\n",
    "docs/build.md": "# documentation the build does not need\n",
    **patch_images("-"),
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """FastChat's and llama.cpp's repositories, and a "mirror" that serves other code."""
    where = tmp_path_factory.mktemp("upstream")
    return {
        "fastchat": where / "FastChat.git",
        "fastchat_rev": make_repo(where / "FastChat.git", fastchat_files(), tag="v0.2.36"),
        "llamacpp": where / "llama.cpp.git",
        "commit": make_repo(where / "llama.cpp.git", LLAMACPP_TREE),
        "other": where / "other.git",
        "other_commit": make_repo(where / "other.git", {"README.md": "other code\n"}),
        # llama.cpp with the converter already changed: the patch does not fit it.
        "changed": where / "changed.git",
        "changed_commit": make_repo(where / "changed.git", {**LLAMACPP_TREE, **patch_images("+")}),
    }


def project(where, worker=True):
    """The role and the collection in a directory of their own; the worker module the
    role's own file, a stand-in while it has none, or (worker=False) none at all."""
    root = where / "project"
    for name in ("roles", "collections"):
        shutil.copytree(os.path.join(ROOT, name), root / name, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "ansible.cfg"), root / "ansible.cfg")
    (root / "build.yml").write_text(PLAYBOOK)
    copy = root / "roles" / "fastchat_image" / "files" / "fastchat_lab_llamacpp_worker.py"
    if not worker:
        copy.unlink(missing_ok=True)
    elif not copy.exists():
        copy.write_text(WORKER_STAND_IN)
    bin_dir = where / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    return root


def plan(commit, stacks, cuda_archs=("61", "86"), llamacpp=True):
    summary = {"head": "localhost"}
    if llamacpp:
        summary["llamacpp"] = {"commit": commit, "cuda_archs": list(cuda_archs),
                               "gguf_dir": "/srv/fastchat-lab/models/.gguf"}
    return {"summary": summary, "models": {},
            "hosts": {"localhost": {"address": "127.0.0.1", "stacks": list(stacks), "models": []}}}


def run(root, where, upstream, test_plan, **extra):
    """The playbook on localhost; returns (status, output, docker calls)."""
    variables = {
        "test_plan": test_plan,
        "fastchat_image_build_host": "localhost",
        "fastchat_image_work_dir": str(where / "work"),
        "fastchat_image_repo_url": "file://%s" % upstream["fastchat"],
        "fastchat_image_llamacpp_repo_url": "file://%s" % upstream["llamacpp"],
        "fastchat_image_base_image": "fastchat-lab/rootfs:bookworm",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    variables.update(extra)
    runner_dir = where / ("runner-%d" % len(list(where.glob("runner-*"))))
    runner_dir.mkdir()
    (runner_dir / "vars.json").write_text(json.dumps(variables))
    log = where / "docker.log"
    before = log.read_text().splitlines() if log.exists() else []
    result = ansible_runner.run(
        private_data_dir=str(runner_dir), project_dir=str(root), playbook="build.yml",
        inventory="localhost,", cmdline="-c local -e @%s" % (runner_dir / "vars.json"), quiet=True,
        envvars={"ANSIBLE_CONFIG": str(root / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                 "ANSIBLE_ROLES_PATH": str(root / "roles"),
                 "PATH": "%s:%s" % (where / "bin", os.environ["PATH"]),
                 "FAKE_DOCKER_LOG": str(log), "FAKE_DOCKER_IMAGES": str(where / "images")})
    with result.stdout as fh:
        out = fh.read()
    after = log.read_text().splitlines() if log.exists() else []
    calls = [json.loads(line) for line in after[len(before):]]
    return result.status, out, calls


def builds(calls):
    """{stack: the arguments of its docker build} of these docker calls."""
    out = {}
    for call in calls:
        if call["args"][:1] == ["build"]:
            prefix = "--label=fastchat-lab.stack="
            stack = [a[len(prefix):] for a in call["args"] if a.startswith(prefix)]
            out[stack[0]] = call
    return out


def build_arg(call, name):
    values = [a.split("=", 2)[2] for a in call["args"] if a.startswith("--build-arg=%s=" % name)]
    return values[0] if values else None


def tag(call):
    return [a[len("--tag="):] for a in call["args"] if a.startswith("--tag=")][0]


@pytest.fixture(scope="module")
def built(tmp_path_factory, upstream):
    """Both llamacpp stacks built once for a plan with P40s (6.1) and A100s... (8.6)."""
    where = tmp_path_factory.mktemp("built")
    root = project(where)
    status, out, calls = run(root, where, upstream,
                             plan(upstream["commit"], ["llamacpp-cpu", "llamacpp-cuda"]))
    assert status == "successful", out
    return {"where": where, "root": root, "calls": calls, "builds": builds(calls), "out": out}


def test_llama_cpp_is_fetched_at_the_plans_commit(built, upstream):
    src = built["where"] / "work" / "src" / "llama.cpp"
    assert git("rev-parse", "HEAD", cwd=src) == upstream["commit"]
    # Shallow: the commit alone.
    assert (src / ".git" / "shallow").read_text().split() == [upstream["commit"]]


def test_each_llamacpp_stack_is_built_once_with_its_own_arguments(built, upstream):
    assert sorted(built["builds"]) == ["llamacpp-cpu", "llamacpp-cuda"]
    cpu, cuda = built["builds"]["llamacpp-cpu"], built["builds"]["llamacpp-cuda"]
    for stack, call in (("llamacpp-cpu", cpu), ("llamacpp-cuda", cuda)):
        assert call["args"][-1] == "."
        assert re.fullmatch(r"fastchat-lab/fastchat:%s-%s-[0-9a-f]{12}" % (stack, upstream["fastchat_rev"][:10]),
                            tag(call)), tag(call)
        assert "--label=fastchat-lab.llamacpp-commit=%s" % upstream["commit"] in call["args"]
        assert build_arg(call, "BASE_IMAGE") == "fastchat-lab/rootfs:bookworm"
        # The converter's torch comes from where the cpu stack's does.
        assert build_arg(call, "TORCH_INDEX") == "https://download.pytorch.org/whl/cpu"
        assert build_arg(call, "LLAMACPP_JOBS") == "0"
        # Proxies by name only, never their values on the command line.
        assert "--build-arg=https_proxy" in call["args"]
    assert build_arg(cuda, "CUDA_ARCHS") == "61;86"
    assert build_arg(cuda, "LLAMACPP_BUILD_IMAGE") == CUDA_IMAGE
    assert build_arg(cuda, "UBUNTU_MIRROR") == ""
    for name in ("CUDA_ARCHS", "LLAMACPP_BUILD_IMAGE", "UBUNTU_MIRROR"):
        assert build_arg(cpu, name) is None, name


def test_the_contexts_hold_the_llama_cpp_tree_the_worker_and_their_dockerfiles(built, upstream):
    worker = (built["root"] / "roles" / "fastchat_image" / "files" / "fastchat_lab_llamacpp_worker.py").read_bytes()
    for stack in ("llamacpp-cpu", "llamacpp-cuda"):
        ctx = built["where"] / "work" / "ctx" / stack
        assert built["builds"][stack]["cwd"] == str(ctx)
        assert (ctx / "llama.cpp" / ".fastchat-lab-source").read_text() == upstream["commit"] + "\n"
        assert (ctx / "llama.cpp" / "convert_hf_to_gguf.py").read_text() == "# the converter\n"
        # The converter's fixes are applied to the tree the image's converter comes from.
        for rel, text in patch_images("+").items():
            assert (ctx / "llama.cpp" / rel).read_text() == text, rel
        assert not (ctx / "llama.cpp" / "docs").exists()
        assert (ctx / "build" / "fastchat_lab_llamacpp_worker.py").read_bytes() == worker
        for name in ("llamacpp-build.sh", "llamacpp-toolchain.sh", "install-llamacpp.sh",
                     "llamacpp-check.sh", "llamacpp-converter.patch", "convert-constraints.txt",
                     "convert-requirements.txt"):
            assert (ctx / "build" / name).read_bytes() == (
                built["root"] / "roles" / "fastchat_image" / "files"
                / ("stacks/%s/%s" % (stack, name) if name.startswith("convert-") else name)).read_bytes()
        # The FastChat stacks' installer is not in it.
        assert not (ctx / "build" / "install.sh").exists()
        assert "fastchat-lab-hardening.patch" in os.listdir(ctx / "build")
    cpu = (built["where"] / "work" / "ctx" / "llamacpp-cpu" / "Dockerfile").read_text()
    cuda = (built["where"] / "work" / "ctx" / "llamacpp-cuda" / "Dockerfile").read_text()
    assert "FROM base AS llamacpp" in cpu and "LLAMACPP_BUILD_IMAGE" not in cpu
    assert "FROM ${LLAMACPP_BUILD_IMAGE} AS llamacpp" in cuda and "CUDAHOSTCXX=g++-12" in cuda
    for text, kind in ((cpu, "cpu"), (cuda, "cuda")):
        assert "llama.cpp %s" % upstream["commit"] in text
        assert 'RUN sh /build/llamacpp-build.sh /build/llama.cpp /opt/llamacpp "$CUDA_ARCHS"' in text
        assert "RUN sh /usr/local/libexec/fastchat-lab/llamacpp-check.sh %s\n" % kind in text
        # The final stage is the lab's base image: no compiler, no CUDA devel image.
        final = text.rsplit("\nFROM ", 1)[1]
        assert final.startswith("base\n") and "COPY --from=llamacpp /opt/llamacpp/ /opt/llamacpp/" in final


def test_the_build_inputs_name_the_commit_and_only_the_cuda_build_its_architectures(built, upstream):
    ctx = built["where"] / "work" / "ctx"
    cpu = (ctx / "llamacpp-cpu" / "build" / "inputs.txt").read_text()
    cuda = (ctx / "llamacpp-cuda" / "build" / "inputs.txt").read_text()
    for text in (cpu, cuda):
        assert "llamacpp_commit=%s\n" % upstream["commit"] in text
        assert "torch_index=https://download.pytorch.org/whl/cpu\n" in text
    assert "llamacpp_cuda_archs=61;86\n" in cuda and "llamacpp_cuda_build_image=%s\n" % CUDA_IMAGE in cuda
    assert "cuda_archs" not in cpu
    record = json.loads((built["where"] / "work" / "images.json").read_text())
    assert record == {stack: tag(call) for stack, call in built["builds"].items()}


def test_a_rerun_builds_nothing_and_new_gpus_rebuild_only_the_cuda_image(built, upstream):
    where, root = built["where"], built["root"]
    status, out, calls = run(root, where, upstream,
                             plan(upstream["commit"], ["llamacpp-cpu", "llamacpp-cuda"]))
    assert status == "successful", out
    assert builds(calls) == {}
    # The plan now serves llama.cpp on P40s only: the CUDA image's inputs change.
    status, out, calls = run(root, where, upstream,
                             plan(upstream["commit"], ["llamacpp-cpu", "llamacpp-cuda"], cuda_archs=["61"]))
    assert status == "successful", out
    again = builds(calls)
    assert sorted(again) == ["llamacpp-cuda"]
    assert build_arg(again["llamacpp-cuda"], "CUDA_ARCHS") == "61"
    old = tag(built["builds"]["llamacpp-cuda"])
    assert tag(again["llamacpp-cuda"]).rsplit("-", 1)[0] == old.rsplit("-", 1)[0]
    assert tag(again["llamacpp-cuda"]) != old


def test_a_mirror_without_the_commit_is_refused_naming_the_variable(tmp_path, upstream):
    root = project(tmp_path)
    status, out, calls = run(root, tmp_path, upstream, plan(upstream["commit"], ["llamacpp-cpu"]),
                             fastchat_image_llamacpp_repo_url="file://%s" % upstream["other"])
    assert status == "failed", out
    text = " ".join(out.split())
    assert ("all: fastchat_image_llamacpp_repo_url: file://%s did not give llama.cpp commit %s"
            % (upstream["other"], upstream["commit"])) in text
    assert "Fix: point fastchat_image_llamacpp_repo_url at a git repository of ggml-org/llama.cpp" in text
    assert builds(calls) == {}
    assert not (tmp_path / "work" / "ctx" / "llamacpp-cpu" / "llama.cpp").exists()


def test_a_commit_the_converter_patch_does_not_fit_stops_the_build(tmp_path, upstream):
    root = project(tmp_path)
    status, out, calls = run(root, tmp_path, upstream, plan(upstream["changed_commit"], ["llamacpp-cpu"]),
                             fastchat_image_llamacpp_repo_url="file://%s" % upstream["changed"])
    assert status == "failed", out
    assert ("prepare-llamacpp.sh: llamacpp-converter.patch does not fit llama.cpp %s"
            % upstream["changed_commit"]) in out
    assert builds(calls) == {}


def test_the_converter_patch_fits_the_pinned_commit(tmp_path):
    """On llama.cpp's real tree at the lab's commit (the fixtures' repository)."""
    repo = os.path.join(ROOT, ".cache", "fixtures", "current", "git", "llama.cpp.git")
    if not os.path.isdir(repo):
        pytest.skip("no llama.cpp fixture repository: run tests/fixtures/build")
    with open(os.path.join(ROOT, "roles", "lab_plan", "defaults", "main.yml")) as f:
        commit = yaml.safe_load(f)["fastchat_llamacpp_commit"]
    tree = tmp_path / "llama.cpp"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", repo, "archive", commit, "conversion"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x"], cwd=tree, input=archive, check=True)
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path))
    subprocess.run(["git", "apply", CONVERTER_PATCH], cwd=tree, env=env, check=True)
    baichuan = (tree / "conversion" / "baichuan.py").read_text()
    assert "yield from self.modify_tensors(" not in baichuan
    assert "add_layer_norm_rms_eps(self.hparams[\"layer_norm_epsilon\"])" in (tree / "conversion" / "qwen.py").read_text()


def test_bad_llamacpp_inputs_are_refused_before_anything_is_cloned(tmp_path, upstream):
    root = project(tmp_path, worker=False)
    status, out, calls = run(
        root, tmp_path, upstream, plan("", ["llamacpp-cuda"], cuda_archs=["61", "100"]),
        fastchat_image_llamacpp_repo_url="ext::sh -c touch% /tmp/fcl-pwned",
        fastchat_image_repo_url="https://user:secret@git.example.lab/FastChat.git",
        fastchat_image_llamacpp_ubuntu_mirror="http://mirror.example.lab/debian",
        fastchat_image_llamacpp_cuda_build_image="nvidia/cuda:12.4.1 --privileged")
    assert status == "failed", out
    text = " ".join(out.split())
    # The settings gate's own check, run again by the role (module_utils/lab_settings.py).
    assert ("fastchat_image_repo_url: https://git.example.lab/... carries credentials "
            "(user:password@)") in text
    assert ("fastchat_image_llamacpp_repo_url: 'ext::sh -c touch% /tmp/fcl-pwned' has "
            "characters a URL here cannot have") in text
    assert "all: fastchat_llamacpp_commit: the lab plan gives no llama.cpp commit" in text
    assert "all: fastchat_workers: the llama.cpp CUDA image is built for the compute capabilities" in text
    assert "summary.llamacpp.cuda_archs: [\"61\", \"100\"]" in text
    assert ("all: fastchat_image_stacks: the llamacpp stacks install the llama.cpp worker, "
            "roles/fastchat_image/files/fastchat_lab_llamacpp_worker.py, which is missing") in text
    assert ("fastchat_image_llamacpp_ubuntu_mirror: 'http://mirror.example.lab/debian' does not "
            "end in /ubuntu") in text
    assert ("fastchat_image_llamacpp_cuda_build_image: 'nvidia/cuda:12.4.1 --privileged' is not "
            "a Docker image reference") in text
    # The refusal names the variable, not its value: the credentials reach no output.
    assert "secret" not in text
    assert calls == []
    assert not (tmp_path / "work").exists()
    assert not os.path.exists("/tmp/fcl-pwned")


def test_a_plan_without_llama_cpp_needs_no_llama_cpp_source(tmp_path, upstream):
    """The FastChat stacks never clone llama.cpp, whatever its URL says."""
    root = project(tmp_path, worker=False)
    status, out, calls = run(root, tmp_path, upstream, plan("", ["cpu"], llamacpp=False),
                             fastchat_image_llamacpp_repo_url="file:///nonexistent/llama.cpp.git")
    assert status == "successful", out
    assert sorted(builds(calls)) == ["cpu"]
    assert not (tmp_path / "work" / "src" / "llama.cpp").exists()
    ctx = tmp_path / "work" / "ctx" / "cpu"
    assert not (ctx / "llama.cpp").exists() and (ctx / "build" / "install.sh").exists()
    assert "llamacpp" not in (ctx / "build" / "inputs.txt").read_text()


def url_pattern():
    with open(os.path.join(ROLE, "vars", "main.yml")) as f:
        return yaml.safe_load(f)["_fastchat_image_git_url_pattern"]


GOOD_URLS = [
    "https://github.com/ggml-org/llama.cpp.git",
    "https://ghfast.top/https://github.com/ggml-org/llama.cpp.git",
    "http://git.example.lab:8080/mirrors/llama.cpp.git",
    "http://[fd00::1]:3000/llama.cpp.git",
    "https://git.example.lab",
    "file:///fixtures/git/llama.cpp.git",
    "file:///srv/mirrors/llama.cpp",
]
BAD_URLS = [
    "https://github.com/ggml-org/llama.cpp.git\n",
    "https://github.com/ggml-org/llama.cpp.git\nhttps://evil.example/x.git",
    "ext::sh -c touch% /tmp/pwned",
    "ext::sh",
    "https://user:token@github.com/ggml-org/llama.cpp.git",
    "https://token@github.com/ggml-org/llama.cpp.git",
    "ssh://git@github.com/ggml-org/llama.cpp.git",
    "git@github.com:ggml-org/llama.cpp.git",
    "git://github.com/ggml-org/llama.cpp.git",
    "file://relative/path",
    "file://host/srv/llama.cpp.git",
    "/srv/llama.cpp.git",
    "https://github.com/ggml-org/llama.cpp.git --upload-pack=touch",
    "https://github.com/$(id)/x.git",
    "https://github.com/x.git;reboot",
    "https://github.com/x.git?token=abc",
    "https://-github.com/x.git",
    "https://github.com:99999999/x.git",
    "https:/github.com/x.git",
    "",
    "-uhttps://github.com/x.git",
]


@pytest.mark.parametrize("url", GOOD_URLS)
def test_plain_git_urls_pass_the_roles_shape_check(url):
    # Ansible's match test is Python's re.match: the same pattern, the same answer.
    assert re.match(url_pattern(), url)


@pytest.mark.parametrize("url", BAD_URLS)
def test_other_urls_fail_the_roles_shape_check(url):
    assert not re.match(url_pattern(), url)
