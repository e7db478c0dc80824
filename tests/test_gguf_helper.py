"""The model_weights role's GGUF helper (roles/model_weights/files/fastchat_gguf.py), run for
real: llama.cpp's own converter (with the fixtures' converter patches) and llama-quantize on
a tiny random-weight Baichuan-13B-Chat (make_arch_model.py: its architecture, a
sentencepiece tokenizer laid out as its own), all from tests/fixtures/build-llamacpp
(cached under .cache/llamacpp; it takes FASTCHAT_LAB_LLAMACPP_BUILD to reuse a build and
FASTCHAT_LAB_WHEELHOUSE for torch). Made once, verified by size and mtime without hashing,
a truncated file refused and made again, an interrupted make cleaned and made from
scratch, records of other inputs refused, received copies verified by their sha256."""

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPER = os.path.join(ROOT, "roles", "model_weights", "files", "fastchat_gguf.py")
PREPARE = os.path.join(ROOT, "roles", "fastchat_image", "files", "fastchat_lab_prepare.py")
spec = importlib.util.spec_from_file_location("fastchat_gguf", HELPER)
fg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fg)

# The lab's pinned llama.cpp commit (its one owner: the lab_plan role's defaults).
with open(os.path.join(ROOT, "roles", "lab_plan", "defaults", "main.yml"), encoding="utf-8") as fh:
    COMMIT = yaml.safe_load(fh)["fastchat_llamacpp_commit"]
MODEL = "Baichuan-13B-Chat"
REV = "19ef51ba5bad8935b03acd20ff04a269210983bc"
NAME_Q8 = "%s-%s-q8_0-llamacpp-%s.gguf" % (MODEL, REV[:12], COMMIT[:10])
NAME_F16 = "%s-%s-f16-llamacpp-%s.gguf" % (MODEL, REV[:12], COMMIT[:10])
# gguf-py's LlamaFileType (general.file_type).
MOSTLY_F16, MOSTLY_Q8_0 = 1, 7


@pytest.fixture(scope="session", name="llama")
def fixture_llama():
    """tests/fixtures/build-llamacpp's directory: src/ (the converter), bin/, venv/, models/."""
    proc = subprocess.run([os.path.join(ROOT, "tests", "fixtures", "build-llamacpp")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session", name="commit_file")
def fixture_commit_file(tmp_path_factory):
    """What /opt/llamacpp/commit holds in the image: the commit the converter came from."""
    path = tmp_path_factory.mktemp("image") / "commit"
    path.write_text(COMMIT + "\n")
    return str(path)


def tools(llama, commit_file, quantizer=None):
    return ["--python", os.path.join(llama, "venv", "bin", "python"),
            "--converter", os.path.join(llama, "src", "convert_hf_to_gguf.py"),
            "--quantizer", quantizer or os.path.join(llama, "bin", "llama-quantize"),
            "--commit-file", commit_file]


def inputs(quantization="q8_0", revision=REV, model=MODEL, commit=COMMIT):
    return ["--model", model, "--revision", revision, "--quantization", quantization, "--commit", commit]


def helper(*args, env=None):
    proc = subprocess.run([sys.executable, HELPER] + [str(a) for a in args], capture_output=True,
                          text=True, env=env, check=False)
    assert proc.stdout.strip(), proc.stderr
    out = json.loads(proc.stdout)
    assert (proc.returncode == 0) == out["ok"], (proc.returncode, out)
    return out


def make(llama, commit_file, path, hf_dir=None, quantization="q8_0", prepare=True, quantizer=None,
         min_free_gb=0, commit_file_arg=None):
    args = ["make", path, "--hf-dir", hf_dir or os.path.join(llama, "models", "baichuan-tiny")]
    args += inputs(quantization) + ["--min-free-gb", min_free_gb]
    args += tools(llama, commit_file_arg or commit_file, quantizer)
    if prepare:
        args += ["--prepare", PREPARE]
    return helper(*args)


def check(path, *extra, quantization="q8_0"):
    return helper("check", path, *inputs(quantization), *extra)


def gguf_facts(llama, path):
    """general.file_type and general.name of a GGUF file, read by llama.cpp's gguf-py."""
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); import gguf\n"
            "r = gguf.GGUFReader(sys.argv[2])\n"
            "f = lambda k: r.fields[k].contents()\n"
            "print(json.dumps({'file_type': f('general.file_type'), 'name': f('general.name')}))")
    out = subprocess.run([os.path.join(llama, "venv", "bin", "python"), "-c", code,
                          os.path.join(llama, "src", "gguf-py"), path],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module", name="made")
def fixture_made(llama, commit_file, tmp_path_factory):
    """The Baichuan q8_0 file, made once (staged by the prepare script, as the lab does)."""
    directory = tmp_path_factory.mktemp("gguf")
    path = str(directory / NAME_Q8)
    start = time.monotonic()
    result = make(llama, commit_file, path)
    return {"path": path, "dir": str(directory), "result": result, "seconds": time.monotonic() - start}


def copy_of(made, tmp_path):
    """The made file, its record and checksum in a directory of the test's own (mtimes kept)."""
    for suffix in ("", ".json", ".sha256"):
        shutil.copy2(made["path"] + suffix, str(tmp_path / (NAME_Q8 + suffix)))
    return str(tmp_path / NAME_Q8)


def record_of(path):
    with open(path + ".json", encoding="utf-8") as f:
        return json.load(f)


def parameters_of(llama, hf_dir):
    """The number of weights of a checkpoint, counted by safetensors itself."""
    code = ("import sys, glob, math; from safetensors import safe_open\n"
            "n = 0\n"
            "for p in glob.glob(sys.argv[1] + '/*.safetensors'):\n"
            "    with safe_open(p, 'np') as f:\n"
            "        n += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())\n"
            "print(n)")
    return int(subprocess.run([os.path.join(llama, "venv", "bin", "python"), "-c", code, hf_dir],
                              capture_output=True, text=True, check=True).stdout)


# ---------------------------------------------------------------------------
def test_made_once_with_its_record_and_checksum(llama, made):
    path, result = made["path"], made["result"]
    assert result["ok"] and result["changed"] and result["cleaned"] == []
    # Only the file, its record and its checksum: no temporaries left.
    assert sorted(os.listdir(made["dir"])) == [NAME_Q8, NAME_Q8 + ".json", NAME_Q8 + ".sha256"]
    digest = sha256(path)
    assert result["sha256"] == digest and result["size"] == os.path.getsize(path)
    with open(path + ".sha256", encoding="utf-8") as f:
        assert f.read() == "%s  %s\n" % (digest, NAME_Q8)
    # The checksum file is what sha256sum -c reads.
    subprocess.run(["sha256sum", "--quiet", "-c", NAME_Q8 + ".sha256"], cwd=made["dir"], check=True)
    record = record_of(path)
    assert {k: record[k] for k in ("format", "file", "model", "revision", "quantization",
                                   "llamacpp_commit", "converter_outtype", "weights_dtype",
                                   "size", "mtime", "sha256")} == {
        "format": 1, "file": NAME_Q8, "model": MODEL, "revision": REV, "quantization": "q8_0",
        "llamacpp_commit": COMMIT, "converter_outtype": "f16", "weights_dtype": "F16",
        "size": os.path.getsize(path), "mtime": int(os.stat(path).st_mtime), "sha256": digest}
    assert record["parameters"] == parameters_of(llama, os.path.join(llama, "models", "baichuan-tiny"))
    # The prepare script's rules, as it gave them for the same model in the fixtures.
    with open(os.path.join(llama, "gguf", "baichuan-tiny.rules.json"), encoding="utf-8") as f:
        assert record["prepare"] == {"sha256": sha256(PREPARE), "rules": json.load(f)}
    # Really llama-quantize's q8_0, named after the lab's model.
    assert gguf_facts(llama, path) == {"file_type": MOSTLY_Q8_0, "name": MODEL}
    print("made %s (%d bytes) in %.1f s: %s" % (NAME_Q8, result["size"], made["seconds"], result["seconds"]))


def test_a_second_make_changes_nothing_and_runs_no_converter(llama, commit_file, made):
    before = os.stat(made["path"])
    # Converter and quantizer that are not there: a verified file needs neither.
    out = helper("make", made["path"], "--hf-dir", "/nonexistent", *inputs(), "--python", "/nonexistent/python",
                 "--converter", "/nonexistent/convert.py", "--quantizer", "/nonexistent/quantize",
                 "--commit-file", commit_file)
    assert out == {"ok": True, "changed": False, "path": made["path"], "sha256": made["result"]["sha256"],
                   "size": made["result"]["size"], "how": "size and mtime"}
    after = os.stat(made["path"])
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


def test_a_converged_file_is_verified_without_reading_it(made, monkeypatch):
    def no_hashing(path):
        raise AssertionError("hashed %s" % path)
    monkeypatch.setattr(fg, "sha256_of", no_hashing)
    result = fg.check(made["path"], MODEL, REV, "q8_0", COMMIT)
    assert result["ok"] and result["how"] == "size and mtime", result


def test_a_truncated_file_is_refused_and_made_again(llama, commit_file, made, tmp_path):
    path = copy_of(made, tmp_path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    out = check(path)
    assert out["problems"] == ["it has %d bytes, its record says %d (truncated or changed)" % (size // 2, size)]
    again = make(llama, commit_file, path)
    assert again["changed"] and again["sha256"] == made["result"]["sha256"]
    assert check(path)["ok"]


def test_a_changed_byte_is_found_by_its_sha256(made, tmp_path):
    path = copy_of(made, tmp_path)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    # Its mtime moved: the sha256 decides.
    out = check(path)
    assert not out["ok"] and out["problems"][0].startswith("its sha256 is ")
    assert out["problems"][0].endswith("its record says %s (changed)" % made["result"]["sha256"])
    # --full hashes even when size and mtime match.
    record = record_of(path)
    os.utime(path, (record["mtime"], record["mtime"]))
    assert check(path)["ok"]
    assert not check(path, "--full")["ok"]


def test_a_touched_file_is_hashed_once_then_restamped(made, tmp_path):
    path = copy_of(made, tmp_path)
    os.utime(path, (time.time() + 100, time.time() + 100))
    out = check(path)
    assert (out["ok"], out["how"], out.get("stale_mtime"), out["restamped"]) == (True, "sha256", True, False)
    out = check(path, "--restamp")
    assert (out["ok"], out["restamped"]) == (True, True)
    assert int(os.stat(path).st_mtime) == record_of(path)["mtime"]
    out = check(path)
    assert (out["how"], out.get("stale_mtime")) == ("size and mtime", None)


@pytest.mark.parametrize("key, value", [
    ("revision", "0" * 40),
    ("llamacpp_commit", "1" * 40),
    ("quantization", "q4_k_m"),
    ("model", "Qwen-7B-Chat"),
    ("file", NAME_F16),
])
def test_a_record_of_other_inputs_is_refused(made, tmp_path, key, value):
    path = copy_of(made, tmp_path)
    record = record_of(path)
    expected = record[key]
    record[key] = value
    with open(path + ".json", "w", encoding="utf-8") as f:
        json.dump(record, f)
    assert check(path)["problems"] == ["its record says %s %s, not %s" % (key, value, expected)]


def test_a_checksum_file_that_disagrees_is_refused(made, tmp_path):
    path = copy_of(made, tmp_path)
    with open(path + ".sha256", "w", encoding="utf-8") as f:
        f.write("%s  %s\n" % ("0" * 64, NAME_Q8))
    assert check(path)["problems"] == [NAME_Q8 + ".sha256 is missing or does not match its record"]


@pytest.mark.parametrize("content", [None, "", "{not json", "[]", '{"model": "x"}\n'])
def test_a_missing_or_broken_record_is_refused(made, tmp_path, content):
    path = copy_of(made, tmp_path)
    os.remove(path + ".json")
    if content is not None:
        with open(path + ".json", "w", encoding="utf-8") as f:
            f.write(content)
    out = check(path)
    assert not out["ok"]
    assert out["problems"][0].startswith("no usable record") or "its record" in out["problems"][0]


def test_an_interrupted_make_is_made_again_from_scratch(llama, commit_file, made, tmp_path):
    path = str(tmp_path / NAME_Q8)
    # A quantizer that starts writing its output, then hangs: the run is killed there.
    hang = tmp_path / "hanging-quantize"
    hang.write_text('#!/bin/sh\nprintf GGUF-partial > "$2"\n: > "$FCL_STARTED"\nexec sleep 300\n')
    hang.chmod(0o755)
    started = tmp_path / "started"
    args = [sys.executable, HELPER, "make", path, "--hf-dir", os.path.join(llama, "models", "baichuan-tiny")]
    args += inputs() + ["--min-free-gb", "0"] + tools(llama, commit_file, str(hang))
    proc = subprocess.Popen(args, env=dict(os.environ, FCL_STARTED=str(started)),
                            stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the make ended before quantizing"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    temporaries = sorted(".%s.%s.tmp" % (NAME_Q8, kind) for kind in ("convert", "log", "quantize"))
    assert sorted(n for n in os.listdir(tmp_path) if NAME_Q8 in n) == temporaries
    assert check(path)["problems"] == ["%s is not there" % path]
    # The next run removes them and makes the file from scratch.
    again = make(llama, commit_file, path, prepare=True)
    assert again["cleaned"] == temporaries
    assert again["sha256"] == made["result"]["sha256"]
    assert sorted(n for n in os.listdir(tmp_path) if NAME_Q8 in n) == [NAME_Q8, NAME_Q8 + ".json", NAME_Q8 + ".sha256"]


def test_clean_removes_only_the_temporaries_of_make(tmp_path):
    names = [".%s.convert.tmp" % NAME_Q8, ".%s.log.tmp" % NAME_Q8, ".%s.json.tmp" % NAME_F16,
             ".%s.stage.tmp" % NAME_F16]
    keep = [NAME_Q8, NAME_Q8 + ".json", ".fastchat-lab-owned", "notes.tmp", ".x.convert.tmp",
            ".%s.partial.tmp" % NAME_Q8, ".%s.convert.tmp.bak" % NAME_Q8]
    for name in names + keep:
        if name.endswith(".stage.tmp"):
            (tmp_path / name).mkdir()
            os.symlink("/nonexistent/model.safetensors", str(tmp_path / name / "model.safetensors"))
        else:
            (tmp_path / name).write_text("x")
    out = helper("clean", tmp_path, "--file", NAME_Q8)
    assert out == {"ok": True, "changed": True, "removed": sorted(names[:2])}
    out = helper("clean", tmp_path)
    assert out["removed"] == sorted(names[2:])
    assert sorted(os.listdir(tmp_path)) == sorted(keep)
    assert helper("clean", tmp_path)["changed"] is False


def test_a_directory_in_place_of_the_file_is_refused_not_removed(llama, commit_file, tmp_path):
    path = tmp_path / NAME_Q8
    path.mkdir()
    (path / "keep").write_text("x")
    assert check(str(path))["problems"] == ["%s is not a regular file" % path]
    out = make(llama, commit_file, str(path))
    assert out["problems"] == ["%s is a directory, where a file is expected: remove it" % path]
    assert (path / "keep").exists()


def test_f16_is_the_converters_output_without_llama_quantize(llama, commit_file, tmp_path):
    path = str(tmp_path / NAME_F16)
    out = make(llama, commit_file, path, quantization="f16", prepare=False, quantizer="/nonexistent/quantize")
    assert out["ok"] and out["converter_outtype"] == "f16" and "quantize" not in out["seconds"]
    assert gguf_facts(llama, path) == {"file_type": MOSTLY_F16, "name": MODEL}
    assert check(path, quantization="f16")["ok"]


def test_bf16_weights_are_converted_through_bf16(llama, commit_file, tmp_path):
    """bf16 weights: the intermediate is bf16 (the weights exactly), then q8_0."""
    src = os.path.join(llama, "models", "baichuan-tiny")
    bf16 = tmp_path / "baichuan-tiny-bf16"
    shutil.copytree(src, str(bf16), ignore=shutil.ignore_patterns("*.safetensors"))
    code = ("import sys, glob, os, torch; from safetensors.torch import load_file, save_file\n"
            "for p in glob.glob(sys.argv[1] + '/*.safetensors'):\n"
            "    t = {k: v.to(torch.bfloat16) if v.dim() >= 2 else v for k, v in load_file(p).items()}\n"
            "    save_file(t, os.path.join(sys.argv[2], os.path.basename(p)), metadata={'format': 'pt'})\n")
    subprocess.run([os.path.join(llama, "venv", "bin", "python"), "-c", code, src, str(bf16)], check=True)
    assert fg.weights_summary(str(bf16)) == (parameters_of(llama, src), "BF16")
    path = str(tmp_path / "out" / NAME_Q8)
    os.makedirs(os.path.dirname(path))
    out = make(llama, commit_file, path, hf_dir=str(bf16), prepare=False)
    assert (out["converter_outtype"], out["weights_dtype"]) == ("bf16", "BF16")
    assert record_of(path)["converter_outtype"] == "bf16"
    assert gguf_facts(llama, path)["file_type"] == MOSTLY_Q8_0


def test_a_bin_checkpoint_is_summed_by_its_storages(llama, tmp_path):
    code = ("import sys, torch\n"
            "torch.save({'a': torch.zeros(64, 32, dtype=torch.bfloat16), 'b': torch.zeros(100, dtype=torch.bfloat16)},"
            " sys.argv[1] + '/pytorch_model.bin')\n")
    subprocess.run([os.path.join(llama, "venv", "bin", "python"), "-c", code, str(tmp_path)], check=True)
    (tmp_path / "config.json").write_text('{"torch_dtype": "float32"}')
    parameters, dtype = fg.weights_summary(str(tmp_path))
    # The pickle's storages say bf16 (config.json says otherwise); the count is by bytes.
    assert dtype == "BF16" and 64 * 32 + 100 <= parameters <= 64 * 32 + 100 + 1024


@pytest.mark.parametrize("quantization, dtype, outtype", [
    ("q8_0", "BF16", "bf16"), ("q4_k_m", "BF16", "bf16"), ("f16", "BF16", "f16"),
    ("q8_0", "F16", "f16"), ("q8_0", "F32", "f16"), ("q8_0", None, "f16"),
])
def test_the_converters_outtype(quantization, dtype, outtype):
    assert fg.converter_outtype(quantization, dtype) == outtype


def test_too_little_disk_space_is_refused_before_converting(llama, commit_file, tmp_path):
    path = str(tmp_path / NAME_Q8)
    out = make(llama, commit_file, path, min_free_gb=10 ** 9)
    assert out["problems"][0].startswith("not enough disk space in %s to make %s: about " % (tmp_path, NAME_Q8))
    assert "the f16 intermediate and the q8_0 file" in out["problems"][0]
    assert "keeping 1000000000.0 GB free (model_weights_min_free_gb)" in out["problems"][0]
    assert os.listdir(tmp_path) == []


def test_the_expected_size_is_the_intermediate_and_the_quantized_file():
    # Qwen-7B-Chat's 7.72 B weights: 15.4 GB of bf16 beside 8.2 GB of q8_0 (4.8 of
    # q4_k_m; none for f16, the converter's output), 2 % and 64 MiB more.
    assert round(fg.expected_bytes(7_721_324_544, "q8_0") / 1e9, 1) == 24.2
    assert round(fg.expected_bytes(7_721_324_544, "q4_k_m") / 1e9, 1) == 20.7
    assert round(fg.expected_bytes(7_721_324_544, "f16") / 1e9, 1) == 15.8


def test_a_failing_converter_is_reported_with_its_last_lines(llama, commit_file, tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text('{"architectures": ["NoSuchForCausalLM"]}')
    shutil.copy(os.path.join(llama, "models", "baichuan-tiny", "model.safetensors"), str(hf))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = make(llama, commit_file, str(out_dir / NAME_Q8), hf_dir=str(hf), prepare=False)
    assert out["problems"] == ["convert_hf_to_gguf.py failed (exit status 1)"]
    assert out["log_tail"][-1] == "ERROR:hf-to-gguf:Model NoSuchForCausalLM is not supported"
    # Its log stays for a look until the next run cleans it; nothing else is left.
    assert os.listdir(out_dir) == [".%s.log.tmp" % NAME_Q8]


def test_a_converter_of_another_commit_is_refused(llama, tmp_path):
    other = tmp_path / "commit"
    other.write_text("1" * 40 + "\n")
    out = make(llama, str(other), str(tmp_path / NAME_Q8))
    assert out["problems"] == ["the converter was built from llama.cpp %s, the plan pins %s" % ("1" * 40, COMMIT)]


def test_weights_that_are_not_there_are_refused(llama, commit_file, tmp_path):
    out = make(llama, commit_file, str(tmp_path / NAME_Q8), hf_dir=str(tmp_path / "nothing"))
    assert out["problems"] == ["no config.json in %s: the weights of %s are not there" % (tmp_path / "nothing", MODEL)]


def test_weights_of_another_revision_are_refused(llama, commit_file, tmp_path):
    hf = tmp_path / "hf"
    shutil.copytree(os.path.join(llama, "models", "baichuan-tiny"), str(hf))
    # The marker the weights helper writes after a verified download.
    (hf / ".fastchat-lab-weights.json").write_text(json.dumps({"revision": "0" * 40, "files": {}}))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = make(llama, commit_file, str(out_dir / NAME_Q8), hf_dir=str(hf))
    assert out["problems"] == ["the weights in %s are revision %s, not %s" % (hf, "0" * 40, REV)]
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize("name", [
    NAME_F16,                                                   # another quantization
    "%s-%s-q8_0-llamacpp-%s.gguf" % (MODEL, "0" * 12, COMMIT[:10]),  # another revision
    "%s-%s-q8_0-llamacpp-%s.gguf" % (MODEL, REV[:12], "1" * 10),     # another commit
    "model.gguf",
])
def test_a_file_of_another_name_is_refused(llama, commit_file, tmp_path, name):
    out = make(llama, commit_file, str(tmp_path / name))
    assert out["problems"] == ["%s is not named %s (model, revision[:12], quantization, llama.cpp commit[:10])"
                               % (tmp_path / name, NAME_Q8)]
    assert os.listdir(tmp_path) == []


def test_a_received_copy_is_verified_and_moved_into_place(made, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    copy_of(made, incoming)
    path = str(tmp_path / NAME_Q8)
    out = helper("install", str(incoming / NAME_Q8), path, *inputs())
    assert (out["ok"], out["sha256"]) == (True, made["result"]["sha256"])
    assert os.listdir(incoming) == []
    assert check(path)["how"] == "size and mtime"


def test_a_received_copy_that_fails_is_removed(made, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    copy_of(made, incoming)
    with open(str(incoming / NAME_Q8), "r+b") as f:
        f.truncate(1000)
    out = helper("install", str(incoming / NAME_Q8), str(tmp_path / NAME_Q8), *inputs())
    assert out["problems"][0].startswith("the copy of %s from the cache host failed verification and "
                                         "was removed: it has 1000 bytes" % NAME_Q8)
    assert os.listdir(incoming) == [] and not os.path.exists(str(tmp_path / NAME_Q8))


@pytest.mark.parametrize("args, message", [
    (["check", "relative/" + NAME_Q8] + inputs(), "is not a normalised absolute path"),
    (["check", "/srv/../" + NAME_Q8] + inputs(), "is not a normalised absolute path"),
    (["check", "/srv/a b/" + NAME_Q8] + inputs(), "is not a normalised absolute path"),
    (["check", "/srv/x/" + NAME_Q8] + inputs(model="../etc"), "is not a model name of the lab"),
    (["check", "/srv/x/" + NAME_Q8] + inputs(model="a;rm -rf /"), "is not a model name of the lab"),
    (["check", "/srv/x/" + NAME_Q8] + inputs(model="x" * 65), "is not a model name of the lab"),
    (["check", "/srv/x/" + NAME_Q8] + inputs(revision=REV.upper()), "is not a full 40-hex commit id"),
    (["check", "/srv/x/" + NAME_Q8] + inputs(revision=REV + "\n"), "is not a full 40-hex commit id"),
    (["check", "/srv/x/" + NAME_Q8] + inputs(commit="HEAD"), "is not a full 40-hex commit id"),
    (["check", "/srv/x/" + NAME_Q8] + inputs(quantization="Q8_0"), "is not one of f16, q8_0, q4_k_m"),
    (["clean", "/srv/x", "--file", "../x.gguf"], "is not a GGUF file name"),
    (["clean", "relative"], "is not a normalised absolute path"),
])
def test_inputs_of_another_shape_are_refused(args, message):
    out = helper(*args)
    assert not out["ok"] and message in out["problems"][0]


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "5GB"])
def test_min_free_gb_must_be_a_finite_number(value, tmp_path):
    proc = subprocess.run([sys.executable, HELPER, "make", str(tmp_path / NAME_Q8), "--hf-dir", "/x",
                           *inputs(), "--min-free-gb", value], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "--min-free-gb" in proc.stderr


def test_program_paths_must_be_absolute(tmp_path, commit_file):
    out = helper("make", str(tmp_path / NAME_Q8), "--hf-dir", "/x", *inputs(),
                 "--python", "venv/bin/python", "--commit-file", commit_file)
    assert out["problems"] == ["--python 'venv/bin/python' is not a normalised absolute path"]
