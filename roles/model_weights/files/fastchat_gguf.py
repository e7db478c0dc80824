#!/usr/bin/env python3
"""Make, verify and clean the lab's GGUF files (standard library only).

Shipped by the model_weights role. ``make`` runs inside the lab's llama.cpp image (its
converter, llama-quantize and the commit they were built from are the defaults below);
``check``, ``install`` and ``clean`` run on the hosts. Every program is run as an argv
list, never through a shell.

  fastchat_gguf.py make FILE --hf-dir DIR --model M --revision REV --quantization Q
                        --commit C [--min-free-gb N] [--prepare SCRIPT]
                        [--python P] [--converter PY] [--quantizer BIN] [--commit-file F]
      Make FILE (a GGUF, named by model, revision, quantization and llama.cpp commit:
      <model>-<rev[:12]>-<q>-llamacpp-<commit[:10]>.gguf) from the Hugging Face weights in
      DIR, unless FILE is there verified: temporaries of an interrupted run are removed,
      the free disk space is checked, convert_hf_to_gguf.py writes a 16-bit GGUF into a
      temporary file beside FILE (bf16 where the weights are bf16, else f16; f16 when Q
      is f16), llama-quantize makes Q from it (not for f16), the result is hashed, then
      FILE.sha256 and FILE.json (the record: inputs, size, mtime, sha256) are written and
      FILE is renamed into place last. On failure the converter's last lines are in the
      output. With --prepare, SCRIPT (run with the converter's Python as
      ``SCRIPT DIR STAGE --rules RULES``) stages the weights for the converter first; its
      rules go into the record.

  fastchat_gguf.py check FILE --model M --revision REV --quantization Q --commit C
                         [--full] [--restamp]
      Is FILE a verified copy? Its name and record must match the inputs, and its size
      and mtime match the record (no hashing: a converged lab reads two small files per
      GGUF); when the size matches but the mtime does not, the sha256 decides. --full
      always hashes. --restamp sets the recorded mtime back on a file its sha256 verified,
      so that the next check need not hash it. Read-only otherwise.

  fastchat_gguf.py install INCOMING FILE --model M --revision REV --quantization Q --commit C
      A copy received from the cache host (INCOMING with its .json and .sha256 beside it)
      is hashed, checked against its record and moved into place as FILE (the GGUF last).
      A copy that fails is removed.

  fastchat_gguf.py clean DIR [--file NAME]
      Remove the temporaries an interrupted make left in DIR (of NAME only, with --file).

Each command prints one JSON object; the exit status is 0 when "ok" is true.
"""

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

# Where the lab's llama.cpp image keeps what make runs (roles/fastchat_image).
IMAGE_PYTHON = "/opt/llamacpp/venv/bin/python"
IMAGE_CONVERTER = "/opt/llamacpp/convert/convert_hf_to_gguf.py"
IMAGE_QUANTIZER = "/opt/llamacpp/bin/llama-quantize"
IMAGE_COMMIT_FILE = "/opt/llamacpp/commit"

RECORD_FORMAT = 1
# The quantizations the lab serves, and llama-quantize's name of each (f16: the
# converter's output as it is).
QUANT_TYPES = {"f16": None, "q8_0": "Q8_0", "q4_k_m": "Q4_K_M"}
# Bytes per weight of each, for the disk-space check: ggml's block sizes (q8_0: 34 bytes
# per 32 weights; q4_k_m: q4_K at 4.5 bits with some tensors in q6_K at 6.56, counted
# as 5 bits).
BYTES_PER_WEIGHT = {"f16": 2.0, "q8_0": 34 / 32, "q4_k_m": 5 / 8}
# The converter's 16-bit output: 2 bytes per weight, bf16 or f16.
INTERMEDIATE_BYTES = 2.0
GGUF_MAGIC = b"GGUF"
# The marker the weights helper (fastchat_weights.py) writes into a verified download.
WEIGHTS_MARKER = ".fastchat-lab-weights.json"
CHUNK = 16 * 1024 * 1024
LOG_LINES = 25

MODEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?\Z")
HEX40_RE = re.compile(r"^[0-9a-f]{40}\Z")
GGUF_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.gguf\Z")
PATH_RE = re.compile(r"^/[A-Za-z0-9._@+/-]*\Z")
# Temporaries of make: .<file>.<what>.tmp (clean removes exactly these).
TEMP_KINDS = ("convert", "quantize", "json", "sha256", "log", "stage")
TEMP_RE = re.compile(r"^\.(?P<file>[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.gguf)\.(?:%s)\.tmp\Z"
                     % "|".join(TEMP_KINDS))
# Element sizes of the safetensors dtypes and torch storages a checkpoint holds.
SAFETENSORS_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                     "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
TORCH_STORAGES = {b"BFloat16Storage": "BF16", b"HalfStorage": "F16", b"FloatStorage": "F32"}
CONFIG_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}


class GgufError(Exception):
    def __init__(self, message, log_tail=None):
        super().__init__(message)
        self.log_tail = log_tail or []


# ---------------------------------------------------------------------------
# Names and inputs
# ---------------------------------------------------------------------------
def gguf_name(model, revision, quantization, commit):
    """The design's file name: model, revision, quantization and converter commit."""
    return "%s-%s-%s-llamacpp-%s.gguf" % (model, revision[:12], quantization, commit[:10])


def check_inputs(path, model, revision, quantization, commit):
    """Refuse inputs of another shape before any file is touched; PATH's name must be the
    one the inputs give (a file of another model, revision or commit is another name)."""
    if not isinstance(path, str) or not PATH_RE.match(path) or os.path.normpath(path) != path \
            or ".." in path.split("/"):
        raise GgufError("%r is not a normalised absolute path of letters, digits and ._@+-/" % (path,))
    if not isinstance(model, str) or not MODEL_RE.match(model) or ".." in model:
        raise GgufError("%r is not a model name of the lab" % (model,))
    for what, value in (("revision", revision), ("commit", commit)):
        if not isinstance(value, str) or not HEX40_RE.match(value):
            raise GgufError("%s %r is not a full 40-hex commit id" % (what, value))
    if quantization not in QUANT_TYPES:
        raise GgufError("quantization %r is not one of %s" % (quantization, ", ".join(QUANT_TYPES)))
    expected = gguf_name(model, revision, quantization, commit)
    if os.path.basename(path) != expected:
        raise GgufError("%s is not named %s (model, revision[:12], quantization, llama.cpp "
                        "commit[:10])" % (path, expected))


def _companions(path):
    return path + ".json", path + ".sha256"


def _temp(path, kind):
    return os.path.join(os.path.dirname(path), ".%s.%s.tmp" % (os.path.basename(path), kind))


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                return digest.hexdigest()
            digest.update(block)


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _write_durably(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(*paths, trees=False):
    """Remove files (and, with trees, directories: make's stage); a directory where a
    file is expected is refused, not removed."""
    for p in paths:
        if os.path.lexists(p):
            if os.path.isdir(p) and not os.path.islink(p):
                if not trees:
                    raise GgufError("%s is a directory, where a file is expected: remove it" % p)
                shutil.rmtree(p)
            else:
                os.remove(p)


# ---------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------
def check(path, model, revision, quantization, commit, full=False, restamp=False):
    """{"ok", "problems", "how", ...}: whether PATH is a verified copy of these inputs.

    Cost: a verified, untouched file costs a stat and two small reads. Only a file whose
    size still matches its record but whose mtime does not is hashed (a copy tool that
    did not keep the mtime, a touch); --restamp then writes the mtime back so that this
    happens once. A file of another size is refused without hashing."""
    check_inputs(path, model, revision, quantization, commit)
    record_path, sha_path = _companions(path)
    result = {"path": path, "ok": False, "problems": [], "how": None, "restamped": False}
    problems = result["problems"]
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
        problems.append("%s is not a regular file" % path)
        return result
    if not os.path.exists(path):
        problems.append("%s is not there" % path)
        return result
    try:
        record = _read_json(record_path)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except (OSError, ValueError) as exc:
        problems.append("no usable record %s (%s): not made by fastchat-lab, or a copy that "
                        "did not finish" % (os.path.basename(record_path), exc.__class__.__name__))
        return result
    expected = {"file": os.path.basename(path), "model": model, "revision": revision,
                "quantization": quantization, "llamacpp_commit": commit}
    for key, value in expected.items():
        if record.get(key) != value:
            problems.append("its record says %s %s, not %s" % (key, record.get(key), value))
    size, mtime, digest = record.get("size"), record.get("mtime"), record.get("sha256")
    if not (isinstance(size, int) and isinstance(mtime, int) and not isinstance(size, bool)
            and not isinstance(mtime, bool) and isinstance(digest, str)
            and re.match(r"^[0-9a-f]{64}\Z", digest)):
        problems.append("its record has no size, mtime and sha256")
        return result
    try:
        with open(sha_path, encoding="utf-8") as f:
            sha_line = f.read()
    except OSError:
        sha_line = ""
    if sha_line != "%s  %s\n" % (digest, os.path.basename(path)):
        problems.append("%s is missing or does not match its record" % os.path.basename(sha_path))
    if problems:
        return result
    st = os.stat(path)
    result["size"] = st.st_size
    result["sha256"] = digest
    if st.st_size != size:
        problems.append("it has %d bytes, its record says %d (truncated or changed)" % (st.st_size, size))
        return result
    if int(st.st_mtime) == mtime and not full:
        result["how"] = "size and mtime"
    else:
        actual = sha256_of(path)
        if actual != digest:
            problems.append("its sha256 is %s, its record says %s (changed)" % (actual, digest))
            return result
        result["how"] = "sha256"
        if int(st.st_mtime) != mtime:
            result["stale_mtime"] = True
            if restamp:
                os.utime(path, (mtime, mtime))
                result["restamped"] = True
    result["ok"] = True
    return result


# ---------------------------------------------------------------------------
# clean
# ---------------------------------------------------------------------------
def clean(directory, name=None):
    """Remove make's temporaries (.<file>.<kind>.tmp) in DIRECTORY, of NAME only if given."""
    if not isinstance(directory, str) or not PATH_RE.match(directory) \
            or os.path.normpath(directory) != directory:
        raise GgufError("%r is not a normalised absolute path" % (directory,))
    if name is not None and not GGUF_NAME_RE.match(name):
        raise GgufError("%r is not a GGUF file name" % (name,))
    removed = []
    if not os.path.isdir(directory):
        return {"ok": True, "changed": False, "removed": removed}
    for entry in sorted(os.listdir(directory)):
        match = TEMP_RE.match(entry)
        if match and (name is None or match.group("file") == name):
            _remove(os.path.join(directory, entry), trees=True)
            removed.append(entry)
    return {"ok": True, "changed": bool(removed), "removed": removed}


# ---------------------------------------------------------------------------
# make
# ---------------------------------------------------------------------------
def _safetensors_header(path):
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise GgufError("%s is not a safetensors file (too short)" % path)
        length = int.from_bytes(head, "little")
        if length > 100 * 1024 * 1024:
            raise GgufError("%s has a header of %d bytes: not a safetensors file" % (path, length))
        return json.loads(f.read(length))


def _bin_dtypes(path):
    """The floating-point storages a torch zip checkpoint names (its pickle is read as
    bytes, never unpickled)."""
    found = set()
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith("data.pkl"):
                    data = archive.read(member)
                    found.update(dtype for storage, dtype in TORCH_STORAGES.items() if storage in data)
    except zipfile.BadZipFile:
        pass
    return found


def weights_summary(hf_dir):
    """(parameters, dtype) of the checkpoint in HF_DIR, as the converter reads it: its
    top-level *.safetensors, else *.bin. Safetensors headers give the exact count and
    dtypes; a .bin gives its bytes and the storages its pickle names."""
    names = sorted(os.listdir(hf_dir))
    safetensors = [n for n in names if n.endswith(".safetensors")]
    bins = [n for n in names if n.endswith(".bin") and n.startswith("pytorch_model")]
    by_dtype = {}
    if safetensors:
        for name in safetensors:
            for key, info in _safetensors_header(os.path.join(hf_dir, name)).items():
                if key == "__metadata__":
                    continue
                shape = info.get("shape") or []
                if not all(isinstance(d, int) and d >= 0 for d in shape):
                    raise GgufError("%s: tensor %s has shape %r" % (name, key, shape))
                count = math.prod(shape)
                # The dtype of the matrices (norms and biases are kept in f32 anyway).
                if len(shape) >= 2:
                    by_dtype[info.get("dtype")] = by_dtype.get(info.get("dtype"), 0) + count
                by_dtype.setdefault("_all", 0)
                by_dtype["_all"] += count
        parameters = by_dtype.pop("_all", 0)
        dtype = max(by_dtype, key=by_dtype.get) if by_dtype else None
        return parameters, dtype
    if bins:
        total = sum(os.path.getsize(os.path.join(hf_dir, n)) for n in bins)
        dtypes = set()
        for name in bins:
            dtypes |= _bin_dtypes(os.path.join(hf_dir, name))
        dtype = dtypes.pop() if len(dtypes) == 1 else None
        if dtype is None:
            config = _read_json(os.path.join(hf_dir, "config.json"))
            dtype = CONFIG_DTYPES.get(config.get("torch_dtype") or config.get("dtype"), "F16")
        return int(total / SAFETENSORS_BYTES[dtype]), dtype
    raise GgufError("no weights in %s (no *.safetensors, no pytorch_model*.bin)" % hf_dir)


def converter_outtype(quantization, dtype):
    """The converter's --outtype. f16 when f16 is what is served. Else bf16 for bf16
    weights: the intermediate then holds the weights exactly (bf16 -> f16 loses the range
    above 65504 and the precision of small values), so llama-quantize quantizes the
    weights themselves; f16 for f16 weights (exact) and f32 ones (llama.cpp's own
    default, at half the size of f32)."""
    if quantization == "f16":
        return "f16"
    return "bf16" if dtype == "BF16" else "f16"


def expected_bytes(parameters, quantization):
    """Bytes make needs at its peak: the 16-bit intermediate and the quantized file
    beside it (f16: the intermediate is the file), 2 % and 64 MiB for metadata."""
    need = parameters * INTERMEDIATE_BYTES
    if quantization != "f16":
        need += parameters * BYTES_PER_WEIGHT[quantization]
    return int(need * 1.02) + 64 * 1024 * 1024


def _tail(log_path):
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, os.path.getsize(log_path) - 64 * 1024))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []
    return [line[:300] for line in lines if line.strip()][-LOG_LINES:]


def _run(argv, log_path, what, env):
    with open(log_path, "ab") as log:
        log.write(("$ %s\n" % " ".join(argv)).encode())
        log.flush()
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise GgufError("%s failed (exit status %d)" % (what, proc.returncode), _tail(log_path))


def make(path, hf_dir, model, revision, quantization, commit, min_free_gb=5.0, prepare=None,
         python=IMAGE_PYTHON, converter=IMAGE_CONVERTER, quantizer=IMAGE_QUANTIZER,
         commit_file=IMAGE_COMMIT_FILE):
    check_inputs(path, model, revision, quantization, commit)
    for what, value in (("--hf-dir", hf_dir), ("--python", python), ("--converter", converter),
                        ("--quantizer", quantizer), ("--commit-file", commit_file),
                        ("--prepare", prepare or "/")):
        if not isinstance(value, str) or not PATH_RE.match(value) or os.path.normpath(value) != value \
                or ".." in value.split("/"):
            raise GgufError("%s %r is not a normalised absolute path" % (what, value))
    if not isinstance(min_free_gb, (int, float)) or not math.isfinite(min_free_gb) or min_free_gb < 0:
        raise GgufError("min free GB %r is not a finite number >= 0" % (min_free_gb,))
    state = check(path, model, revision, quantization, commit)
    if state["ok"]:
        return {"ok": True, "changed": False, "path": path, "sha256": state["sha256"],
                "size": state["size"], "how": state["how"]}
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise GgufError("%s is not a directory" % directory)
    # From scratch: an interrupted run's temporaries, and whatever failed the check.
    cleaned = clean(directory, os.path.basename(path))["removed"]
    _remove(path, *_companions(path))
    try:
        with open(commit_file, encoding="utf-8") as f:
            built = f.read().strip()
    except OSError as exc:
        raise GgufError("cannot read the llama.cpp commit from %s (%s)" % (commit_file, exc.strerror))
    if built != commit:
        raise GgufError("the converter was built from llama.cpp %s, the plan pins %s"
                        % (built[:40], commit))
    if not os.path.isfile(os.path.join(hf_dir, "config.json")):
        raise GgufError("no config.json in %s: the weights of %s are not there" % (hf_dir, model))
    # Weights the lab fetched carry the weights helper's marker: they must be the revision
    # the file is named by (a local_path has none; its revision is the catalogue's word).
    try:
        fetched = _read_json(os.path.join(hf_dir, WEIGHTS_MARKER)).get("revision")
    except (OSError, ValueError, AttributeError):
        fetched = revision
    if fetched != revision:
        raise GgufError("the weights in %s are revision %s, not %s" % (hf_dir, fetched, revision))
    for program in [python, converter] + ([quantizer] if QUANT_TYPES[quantization] else []):
        if not os.path.isfile(program):
            raise GgufError("%s is not there" % program)
    if prepare and not os.path.isfile(prepare):
        raise GgufError("the prepare script %s is not there (the llama.cpp image ships it "
                        "beside the converter)" % prepare)
    parameters, dtype = weights_summary(hf_dir)
    outtype = converter_outtype(quantization, dtype)
    need = expected_bytes(parameters, quantization)
    free = shutil.disk_usage(directory).free
    if free - need < min_free_gb * 1e9:
        raise GgufError(
            "not enough disk space in %s to make %s: about %.2f GB (%d parameters: the %s "
            "intermediate%s), %.2f GB free, keeping %s GB free (model_weights_min_free_gb). Fix: "
            "free space there, or set fastchat_weights_dir to a larger disk."
            % (directory, os.path.basename(path), need / 1e9, parameters, outtype,
               "" if quantization == "f16" else " and the %s file" % quantization,
               free / 1e9, min_free_gb))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    log_path = _temp(path, "log")
    converted, quantized = _temp(path, "convert"), _temp(path, "quantize")
    started = time.monotonic()
    seconds = {}
    source, rules, prepare_sha = hf_dir, None, None
    if prepare:
        stage = _temp(path, "stage")
        rules_path = os.path.join(stage, ".fastchat-lab-rules.json")
        os.makedirs(stage)
        _run([python, prepare, hf_dir, stage, "--rules", rules_path], log_path, "preparing the weights", env)
        rules = _read_json(rules_path)
        _remove(rules_path)
        prepare_sha = sha256_of(prepare)
        source = stage
    # --model-name: the GGUF's general.name is the lab's model name, not a directory's.
    _run([python, converter, source, "--outfile", converted, "--outtype", outtype, "--model-name", model],
         log_path, "convert_hf_to_gguf.py", env)
    seconds["convert"] = round(time.monotonic() - started, 1)
    if prepare:
        _remove(_temp(path, "stage"), trees=True)
    result_tmp = converted
    if QUANT_TYPES[quantization]:
        mark = time.monotonic()
        _run([quantizer, converted, quantized, QUANT_TYPES[quantization]], log_path, "llama-quantize", env)
        seconds["quantize"] = round(time.monotonic() - mark, 1)
        _remove(converted)
        result_tmp = quantized
    with open(result_tmp, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise GgufError("%s made no GGUF file" % ("llama-quantize" if QUANT_TYPES[quantization]
                                                       else "convert_hf_to_gguf.py"), _tail(log_path))
        os.fsync(f.fileno())
    # A whole-second mtime, the record's: a copy that keeps mtimes (rsync -a) matches it.
    stamp = int(time.time())
    os.utime(result_tmp, (stamp, stamp))
    mark = time.monotonic()
    digest = sha256_of(result_tmp)
    seconds["sha256"] = round(time.monotonic() - mark, 1)
    size = os.path.getsize(result_tmp)
    name = os.path.basename(path)
    record = {"format": RECORD_FORMAT, "file": name, "model": model, "revision": revision,
              "quantization": quantization, "llamacpp_commit": commit,
              "converter_outtype": outtype, "weights_dtype": dtype, "parameters": parameters,
              "size": size, "mtime": stamp, "sha256": digest,
              "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if prepare:
        record["prepare"] = {"sha256": prepare_sha, "rules": rules}
    record_path, sha_path = _companions(path)
    _write_durably(_temp(path, "json"), json.dumps(record, indent=1, sort_keys=True) + "\n")
    _write_durably(_temp(path, "sha256"), "%s  %s\n" % (digest, name))
    os.replace(_temp(path, "json"), record_path)
    os.replace(_temp(path, "sha256"), sha_path)
    os.replace(result_tmp, path)
    _fsync_dir(directory)
    _remove(log_path)
    seconds["total"] = round(time.monotonic() - started, 1)
    return {"ok": True, "changed": True, "path": path, "sha256": digest, "size": size,
            "converter_outtype": outtype, "weights_dtype": dtype, "parameters": parameters,
            "cleaned": cleaned, "seconds": seconds}


# ---------------------------------------------------------------------------
# install (a received copy)
# ---------------------------------------------------------------------------
def install(incoming, path, model, revision, quantization, commit):
    """Verify a copy received from the cache host by its sha256 and move it into place
    (record and checksum first, the GGUF last)."""
    check_inputs(path, model, revision, quantization, commit)
    check_inputs(incoming, model, revision, quantization, commit)
    if incoming == path:
        raise GgufError("the incoming copy and its place are the same file")
    state = check(incoming, model, revision, quantization, commit, full=True)
    if not state["ok"]:
        _remove(incoming, *_companions(incoming))
        raise GgufError("the copy of %s from the cache host failed verification and was removed: %s"
                        % (os.path.basename(path), "; ".join(state["problems"])))
    record = _read_json(_companions(incoming)[0])
    os.utime(incoming, (record["mtime"], record["mtime"]))
    _remove(path, *_companions(path))
    for src, dst in zip(_companions(incoming), _companions(path)):
        os.replace(src, dst)
    os.replace(incoming, path)
    _fsync_dir(os.path.dirname(path))
    return {"ok": True, "changed": True, "path": path, "sha256": state["sha256"], "size": state["size"]}


# ---------------------------------------------------------------------------
def _min_free(text):
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError("%r is not a finite number >= 0" % text)
    return value


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def inputs(p):
        p.add_argument("--model", required=True)
        p.add_argument("--revision", required=True)
        p.add_argument("--quantization", required=True)
        p.add_argument("--commit", required=True)

    m = sub.add_parser("make")
    m.add_argument("file")
    m.add_argument("--hf-dir", required=True)
    inputs(m)
    m.add_argument("--min-free-gb", type=_min_free, default=5.0)
    m.add_argument("--prepare")
    m.add_argument("--python", default=IMAGE_PYTHON)
    m.add_argument("--converter", default=IMAGE_CONVERTER)
    m.add_argument("--quantizer", default=IMAGE_QUANTIZER)
    m.add_argument("--commit-file", default=IMAGE_COMMIT_FILE)
    c = sub.add_parser("check")
    c.add_argument("file")
    inputs(c)
    c.add_argument("--full", action="store_true")
    c.add_argument("--restamp", action="store_true")
    i = sub.add_parser("install")
    i.add_argument("incoming")
    i.add_argument("file")
    inputs(i)
    k = sub.add_parser("clean")
    k.add_argument("dir")
    k.add_argument("--file")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "make":
            result = make(args.file, args.hf_dir, args.model, args.revision, args.quantization,
                          args.commit, args.min_free_gb, args.prepare, args.python, args.converter,
                          args.quantizer, args.commit_file)
        elif args.cmd == "check":
            result = check(args.file, args.model, args.revision, args.quantization, args.commit,
                           args.full, args.restamp)
        elif args.cmd == "install":
            result = install(args.incoming, args.file, args.model, args.revision,
                             args.quantization, args.commit)
        else:
            result = clean(args.dir, args.file)
    except GgufError as exc:
        print(json.dumps({"ok": False, "changed": args.cmd != "check", "problems": [str(exc)],
                          "log_tail": exc.log_tail}))
        return 1
    except OSError as exc:
        print(json.dumps({"ok": False, "changed": args.cmd != "check",
                          "problems": ["%s: %s" % (exc.filename or "", exc.strerror or exc)],
                          "log_tail": []}))
        return 1
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
