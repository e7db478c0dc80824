"""roles/fastchat_image/files/fastchat-lab-hardening.patch on FastChat 0.2.36's own tree (the
installed fschat package laid out as its repository), applied as the role applies its
patches (prepare-tree.sh, in the role's order): every route of the API server checks the
keys, the keys come from the file FASTCHAT_LAB_API_KEYS_FILE names and never from the
argument parser, a server told to have keys refuses to start without them, no docs or
schema routes, FastChat's log files are pruned. FastAPI is not needed: the patched
modules are read (ast), and the key reader runs on its own."""

import ast
import importlib.util
import os
import shutil
import subprocess

import pytest

from labs import ROOT

FILES = os.path.join(ROOT, "roles", "fastchat_image", "files")
# The role's order (roles/fastchat_image/vars/main.yml _fastchat_image_patches).
PATCHES = [("fastchat-pydantic2-streaming.patch", "fastchat/serve/openai_api_server.py",
            ".json(exclude_unset=True, ensure_ascii=False)"),
           ("fastchat-lab-hardening.patch", "fastchat/serve/openai_api_server.py",
            '@app.post("/api/v1/token_check")'),
           ("fastchat-lab-page.patch", "fastchat/serve/gradio_block_arena_anony.py",
            "We collect **200K+** human votes to compute an Elo-based LLM leaderboard.")]
API = "fastchat/serve/openai_api_server.py"


def fastchat_tree(where):
    spec = importlib.util.find_spec("fastchat")
    assert spec is not None, "fschat is not installed: run scripts/setup"
    repo = os.path.join(str(where), "FastChat")
    shutil.copytree(os.path.dirname(spec.origin), os.path.join(repo, "fastchat"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run(["git", "init", "-q", repo], check=True)
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True)
    subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit",
                    "-qm", "FastChat 0.2.36"], check=True)
    return repo


@pytest.fixture(scope="module")
def patched(tmp_path_factory):
    """The context's tree as prepare-tree.sh makes it, with every patch of the role."""
    tmp = tmp_path_factory.mktemp("hardening")
    src = fastchat_tree(tmp / "src")
    ctx = tmp / "ctx"
    (ctx / "build").mkdir(parents=True)
    argv = ["/bin/sh", os.path.join(FILES, "prepare-tree.sh"), src, "test-id"]
    for patch, rel, marker in PATCHES:
        shutil.copy(os.path.join(FILES, patch), str(ctx / "build" / patch))
        argv += [patch, rel, marker]
    result = subprocess.run(argv, cwd=str(ctx), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["applied " + p for p, _, _ in PATCHES]
    return str(ctx / "FastChat")


def source(repo, rel):
    with open(os.path.join(repo, rel), encoding="utf-8") as f:
        return f.read()


def routes(tree):
    """(method, path, dependency names) of every @app.<method>(...) route."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) \
                    and isinstance(deco.func.value, ast.Name) and deco.func.value.id == "app" \
                    and deco.func.attr in ("get", "post", "put", "delete", "patch", "api_route"):
                deps = [kw.value for kw in deco.keywords if kw.arg == "dependencies"]
                names = [ast.unparse(d) for d in deps]
                yield deco.func.attr, deco.args[0].value, names


def test_the_patch_states_its_marker_line():
    with open(os.path.join(FILES, "fastchat-lab-hardening.patch"), encoding="utf-8") as f:
        header = f.read().split("\ndiff --git ", 1)[0]
    assert PATCHES[1][2] in header.splitlines()


def test_every_route_of_the_api_server_checks_the_keys(patched):
    found = list(routes(ast.parse(source(patched, API))))
    paths = sorted(path for _, path, _ in found)
    assert paths == sorted(["/v1/models", "/v1/chat/completions", "/v1/completions",
                            "/v1/embeddings", "/v1/engines/{model_name}/embeddings",
                            "/api/v1/token_check", "/api/v1/chat/completions"])
    for method, path, deps in found:
        assert deps == ["[Depends(check_api_key)]"], (method, path, deps)


def test_the_unpatched_tree_leaves_api_v1_open(tmp_path):
    # What the patch is for: FastChat 0.2.36 checks keys on /v1/* only.
    open_routes = [p for _, p, deps in routes(ast.parse(source(fastchat_tree(tmp_path), API)))
                   if not deps]
    assert sorted(open_routes) == ["/api/v1/chat/completions", "/api/v1/token_check"]


def test_no_docs_or_schema_routes(patched):
    assert "app = fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None)" in \
        source(patched, API)


def test_keys_are_compared_in_constant_time(patched):
    text = source(patched, API)
    assert "hmac.compare_digest(" in text
    assert "not in app_settings.api_keys" not in text


def key_reader(patched):
    """The patched create_openai_api_server's key-file block, run on its own."""
    text = source(patched, API)
    start = text.index('    keys_file = os.environ.get("FASTCHAT_LAB_API_KEYS_FILE")')
    end = text.index("    logger.info(f\"args: {args}\")", start)
    block = "def read(os, app_settings):\n" + text[start:end]
    namespace = {}
    exec(compile(block, "hardening-block", "exec"), namespace)  # noqa: S102 - the patch's own code
    return namespace["read"]


class Settings:
    api_keys = None


def test_the_server_reads_its_keys_from_the_file(patched, tmp_path, monkeypatch):
    read = key_reader(patched)
    keys = tmp_path / "api-keys"
    keys.write_text("sk-one-1234567890\n  sk-two-1234567890 \n\n")
    monkeypatch.setenv("FASTCHAT_LAB_API_KEYS_FILE", str(keys))
    settings = Settings()
    read(os, settings)
    assert settings.api_keys == ["sk-one-1234567890", "sk-two-1234567890"]


@pytest.mark.parametrize("content", [None, "", " \n\n"])
def test_a_server_told_to_have_keys_refuses_to_start_without_them(patched, tmp_path, monkeypatch,
                                                                 content):
    read = key_reader(patched)
    keys = tmp_path / "api-keys"
    if content is not None:
        keys.write_text(content)
    monkeypatch.setenv("FASTCHAT_LAB_API_KEYS_FILE", str(keys))
    with pytest.raises(SystemExit, match="refusing to serve the API without its keys"):
        read(os, Settings())


def test_the_key_file_is_read_after_the_parser_and_no_key_is_parsed(patched):
    text = source(patched, API)
    body = text[text.index("def create_openai_api_server"):]
    assert body.index("args = parser.parse_args()") < body.index("FASTCHAT_LAB_API_KEYS_FILE") \
        < body.index("logger.info(f\"args: {args}\")")
    launcher = source(os.path.join(ROOT, "roles", "fastchat_deploy"), "files/launch.py")
    assert "--api-keys" not in launcher


def test_fastchat_log_files_are_pruned(patched):
    text = source(patched, "fastchat/utils.py")
    assert 'backupCount=int(os.environ.get("FASTCHAT_LAB_LOG_DAYS", "14"))' in text
