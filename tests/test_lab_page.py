"""The lab's own web UI page: roles/fastchat_image/files/fastchat-lab-page.patch on FastChat
0.2.36's own tree (the installed fschat package, laid out as FastChat's repository), the
loader it adds (fastchat/serve/lab_page.py, imported from the patched copy), and
module_utils/lab_page.py, which renders the loader's JSON file from the lab's settings.
gradio is not needed: the patched UI modules are compiled, not imported."""

import ast
import importlib.util
import json
import os
import py_compile
import shutil
import subprocess

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_page import (
    md_escape,
    render_page,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = os.path.join(ROOT, "roles", "fastchat_image", "files")
PATCH = os.path.join(FILES, "fastchat-lab-page.patch")
STREAMING_PATCH = os.path.join(FILES, "fastchat-pydantic2-streaming.patch")

# The role applies the patch only to a tree whose MARKER_FILE has this line.
MARKER_FILE = "fastchat/serve/gradio_block_arena_anony.py"
MARKER = "We collect **200K+** human votes to compute an Elo-based LLM leaderboard."

# Every file of the pages gradio_web_server_multi builds that the patch changes or adds.
PATCHED = [
    "fastchat/serve/gradio_web_server.py",
    "fastchat/serve/gradio_web_server_multi.py",
    "fastchat/serve/gradio_block_arena_anony.py",
    "fastchat/serve/gradio_block_arena_named.py",
    "fastchat/serve/gradio_block_arena_vision.py",
    "fastchat/serve/monitor/monitor.py",
    "fastchat/serve/lab_page.py",
]

# What LMSYS's public arena says or loads, and a private lab must not (lower case).
PUBLIC_ARENA = [
    "200k+", "200,000", "lmsys", "discord", "twitter", "cc-by", "creative commons",
    "bard is offered", "arxiv", "chatbot-arena-leaderboard", "leaderboard](",
    "chat.lmsys.org", "huggingface.co", "public-arena-asset", "storage.googleapis.com",
    "<img", "kaggle", "mbzuai", "a16z", "anyscale", "together ai", "sponsorship",
    "html2canvas.min.js", "cdnjs", "colab.research.google.com", "fonts.googleapis",
    "benchmarking llms in the wild", "llm champion", "research preview",
    "chat with open large language models", "lianmin zheng", "skylab",
]

# URLs that may stay in the patched files' strings: the lab's own hosts and Google
# Analytics, which FastChat adds only with --ga-id (the lab never passes it).
ALLOWED_URLS = ("http://localhost:", "https://www.googletagmanager.com/gtag/js?id=")

MODELS = ["Qwen-7B-Chat", "Baichuan-13B-Chat"]


def fastchat_source():
    spec = importlib.util.find_spec("fastchat")
    assert spec is not None, "fschat is not installed: run scripts/setup"
    return os.path.dirname(spec.origin)


def fastchat_tree(where):
    """A copy of FastChat 0.2.36's fastchat/ package laid out as its repository."""
    repo = os.path.join(str(where), "FastChat")
    shutil.copytree(fastchat_source(), os.path.join(repo, "fastchat"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return repo


def run(argv, repo, stdin_path=None):
    # git apply inside a repository would take paths from that repository's top.
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=os.path.dirname(repo))
    with open(stdin_path or os.devnull, "rb") as stdin:
        return subprocess.run(argv, cwd=repo, stdin=stdin, capture_output=True, text=True,
                              env=env, check=False)


def read(repo, rel):
    with open(os.path.join(repo, rel), encoding="utf-8") as f:
        return f.read()


def has_marker(repo):
    return MARKER in [line.strip() for line in read(repo, MARKER_FILE).splitlines()]


@pytest.fixture(scope="module")
def patched(tmp_path_factory):
    repo = fastchat_tree(tmp_path_factory.mktemp("patched"))
    result = run(["git", "apply", PATCH], repo)
    assert result.returncode == 0, result.stderr
    return repo


def load_loader(repo, name="lab_page_under_test"):
    """The patched tree's fastchat/serve/lab_page.py (standard library only)."""
    path = os.path.join(repo, "fastchat", "serve", "lab_page.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def loader(patched, monkeypatch):
    monkeypatch.delenv("FASTCHAT_LAB_PAGE", raising=False)
    return load_loader(patched)


def write_page(tmp_path, page):
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page, ensure_ascii=False), encoding="utf-8")
    return str(path)


# --- the patch ---------------------------------------------------------------------------

def test_patch_states_its_marker_line():
    with open(PATCH, encoding="utf-8") as f:
        header = f.read().split("\ndiff --git ", 1)[0]
    assert MARKER in header.splitlines()
    assert MARKER_FILE in header


def test_marker_is_in_the_unpatched_tree(tmp_path):
    repo = fastchat_tree(tmp_path)
    assert [l.strip() for l in read(repo, MARKER_FILE).splitlines()].count(MARKER) == 1


def test_patch_applies_cleanly_with_patch(tmp_path):
    if shutil.which("patch") is None:
        pytest.skip("GNU patch is not installed (the role uses git apply)")
    repo = fastchat_tree(tmp_path)
    dry = run(["patch", "-p1", "--dry-run", "--forward"], repo, PATCH)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "offset" not in dry.stdout and "fuzz" not in dry.stdout, dry.stdout
    real = run(["patch", "-p1", "--forward"], repo, PATCH)
    assert real.returncode == 0, real.stdout + real.stderr
    assert not has_marker(repo)


def test_patch_applies_cleanly_with_git_apply(tmp_path):
    repo = fastchat_tree(tmp_path)
    check = run(["git", "apply", "--check", "-v", PATCH], repo)
    assert check.returncode == 0, check.stderr
    assert sorted(l.split()[-1] for l in check.stderr.splitlines()
                  if l.startswith("Checking patch ")) == sorted(p + "..." for p in PATCHED)


def test_marker_is_gone_after_the_patch(patched):
    assert not has_marker(patched)


def test_patch_does_not_apply_twice(patched, tmp_path):
    again = shutil.copytree(patched, str(tmp_path / "again"))
    assert run(["git", "apply", "--check", PATCH], again).returncode != 0


def test_patch_and_streaming_patch_apply_together(tmp_path):
    repo = fastchat_tree(tmp_path)
    for patch in (STREAMING_PATCH, PATCH):
        result = run(["git", "apply", patch], repo)
        assert result.returncode == 0, "%s: %s" % (os.path.basename(patch), result.stderr)


@pytest.mark.parametrize("rel", PATCHED)
def test_no_public_arena_text_remains(patched, rel):
    text = read(patched, rel).lower()
    assert [phrase for phrase in PUBLIC_ARENA if phrase in text] == []


def string_constants(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


@pytest.mark.parametrize("rel", PATCHED)
def test_no_remote_url_remains_in_strings(patched, rel):
    remote = []
    for lineno, value in string_constants(read(patched, rel)):
        for start in ("http://", "https://"):
            at = value.find(start)
            while at != -1:
                if not value.startswith(ALLOWED_URLS, at):
                    remote.append("%d: %s" % (lineno, value[at:at + 60]))
                at = value.find(start, at + 1)
    assert remote == []


def test_head_loads_no_remote_script_and_theme_uses_system_fonts(patched):
    multi = read(patched, "fastchat/serve/gradio_web_server_multi.py")
    assert '    head_js = ""\n' in multi
    assert "font=lab_page.FONT, font_mono=lab_page.FONT_MONO" in multi
    assert 'title=lab_page.title(),' in multi


def test_share_buttons_that_need_html2canvas_are_hidden(patched):
    for rel in ("fastchat/serve/gradio_block_arena_anony.py",
                "fastchat/serve/gradio_block_arena_named.py"):
        assert 'share_btn = gr.Button(value="📷  Share", visible=False)' in read(patched, rel)


@pytest.mark.parametrize("rel", PATCHED)
def test_patched_modules_compile(patched, rel, tmp_path):
    py_compile.compile(os.path.join(patched, rel), cfile=str(tmp_path / "out.pyc"),
                       doraise=True)


# --- the loader the patch adds -----------------------------------------------------------

def test_loader_defaults_without_the_variable(loader):
    assert loader.title() == "Model arena"
    battle = loader.battle_md()
    assert battle.startswith("# ⚔️ Model arena\n")
    assert "## 📜 Rules\n- Ask anything. Two anonymous models, A and B," in battle
    assert "The models' names are shown after your vote." in battle
    assert "read only by the lab's admins; nothing is sent outside the lab" in loader.terms_md()
    assert loader.about_md().startswith("# About\n")
    assert loader.model_description_md(MODELS) == "- **Qwen\\-7B\\-Chat**\n- **Baichuan\\-13B\\-Chat**\n"


def test_loader_defaults_have_no_link_or_image(loader):
    texts = json.dumps(loader.DEFAULTS).lower()
    assert "http" not in texts and "<img" not in texts and "](" not in texts


def test_loader_reads_the_file_the_variable_names(patched, tmp_path, monkeypatch):
    page = render_page({"contact": "ops@example.lab",
                        "model_descriptions": {"Qwen-7B-Chat": "7B, by Alibaba"}},
                       MODELS, "Acme GPU lab")
    monkeypatch.setenv("FASTCHAT_LAB_PAGE", write_page(tmp_path, page))
    loader = load_loader(patched)
    assert loader.title() == "Acme GPU lab model arena"
    assert loader.battle_md() == (
        "# ⚔️ Acme GPU lab model arena\n\n" + page["intro_md"] + "\n\n## 📜 Rules\n"
        + page["rules_md"] + "\n\n## 👇 Chat now!\n")
    assert loader.side_by_side_md().startswith("# ⚔️ Acme GPU lab model arena\n\n## 📜 Rules\n"
                                               + page["side_by_side_md"])
    assert loader.direct_md() == "# 🏔️ Acme GPU lab model arena\n\n" + page["direct_md"] + "\n"
    assert loader.terms_md() == "\n### Terms of use\n\n" + page["terms_md"] + "\n"
    assert loader.about_md() == page["about_md"] + "\n"
    assert loader.leaderboard_md() == ("# 🏆 Acme GPU lab model arena: leaderboard\n\n"
                                       + page["leaderboard_md"] + "\n")
    assert loader.login_html() == page["login_html"]
    assert loader.model_description_md(MODELS) == (
        "- **Qwen\\-7B\\-Chat**: 7B, by Alibaba\n- **Baichuan\\-13B\\-Chat**\n")
    assert "alert(%s)" % json.dumps("Acme GPU lab model arena\n\n" + page["terms_md"]) \
        in loader.tos_js()


def test_loader_escapes_the_title_in_headings(patched, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCHAT_LAB_PAGE", write_page(tmp_path, {"title": "R&D *lab* <x>"}))
    loader = load_loader(patched)
    assert loader.title() == "R&D *lab* <x>"
    assert loader.direct_md().startswith("# 🏔️ R&amp;D \\*lab\\* &lt;x&gt;\n")


def test_loader_keeps_defaults_for_keys_the_file_lacks(patched, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCHAT_LAB_PAGE", write_page(tmp_path, {"title": "Lab"}))
    loader = load_loader(patched)
    assert loader.text("terms_md") == loader.DEFAULTS["terms_md"]


@pytest.mark.parametrize("content, says", [
    ("{not json", "cannot read the page file"),
    ("[]", "not a JSON object"),
    ('{"titel": "x"}', "'titel': unknown key or not a string"),
    ('{"title": 3}', "'title': unknown key or not a string"),
    ('{"models": {"m": 1}}', "'models': unknown key or not a string"),
])
def test_loader_refuses_a_bad_file(patched, tmp_path, monkeypatch, content, says):
    path = tmp_path / "page.json"
    path.write_text(content, encoding="utf-8")
    monkeypatch.setenv("FASTCHAT_LAB_PAGE", str(path))
    loader = load_loader(patched)
    with pytest.raises(RuntimeError, match="FASTCHAT_LAB_PAGE=%s: " % path) as error:
        loader.page()
    assert says in str(error.value)


def test_loader_refuses_a_missing_file(patched, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCHAT_LAB_PAGE", str(tmp_path / "absent.json"))
    with pytest.raises(RuntimeError, match="cannot read the page file"):
        load_loader(patched).title()


# --- render_page -------------------------------------------------------------------------

def test_render_page_defaults_name_the_lab_its_models_and_who_reads_the_votes():
    page = render_page({}, MODELS, "Acme GPU lab")
    assert page["title"] == "Acme GPU lab model arena"
    assert ("Compare the chat models that Acme GPU lab runs (2 models: **Qwen\\-7B\\-Chat** "
            "and **Baichuan\\-13B\\-Chat**)") in page["intro_md"]
    assert "read only by the lab's admins" in page["terms_md"]
    assert "nothing you type is sent outside the lab" in page["terms_md"]
    assert "only the lab's admins read them" in page["about_md"]
    assert page["login_html"] == ("Acme GPU lab: log in with the account that the lab&#x27;s "
                                  "admins gave you.")
    assert page["models"] == {}


def test_render_page_default_rules_are_the_battle():
    rules = render_page({}, MODELS, "Lab")["rules_md"].splitlines()
    assert rules == [
        "- Ask anything. Two of the lab's models, picked at random, answer as **Model A** "
        "and **Model B**.",
        "- Keep chatting until you can tell which answer is better, then vote: *A is better*, "
        "*B is better*, *Tie* or *Both are bad*.",
        "- The two models' names are shown after your vote. Don't ask a model who it is: a "
        "vote after a model has named itself may be left out of the results.",
        "- *New Round* starts again with two models picked anew.",
    ]


def test_render_page_defaults_have_no_link_or_image():
    text = json.dumps(render_page({"contact": "ops@example.lab"}, MODELS, "Lab")).lower()
    assert "http" not in text and "<img" not in text and "](" not in text


def test_render_page_names_one_model():
    assert "(one model: **Qwen\\-7B\\-Chat**)" in render_page({}, ["Qwen-7B-Chat"], "Lab")["intro_md"]


def test_render_page_escapes_plain_values():
    page = render_page({"admins": "the *ops* team", "contact": "[mail](http://x)",
                        "model_descriptions": {"m_1": "<b>fast</b> [link](http://x)"}},
                       ["m_1"], "Lab <script>")
    assert "Lab &lt;script&gt;" in page["intro_md"] and "<script>" not in page["intro_md"]
    assert "**m\\_1**" in page["intro_md"]
    assert "read only by the \\*ops\\* team" in page["terms_md"]
    assert "Questions: \\[mail\\]\\(http://x\\)." in page["terms_md"]
    assert page["models"] == {"m_1": "&lt;b&gt;fast&lt;/b&gt; \\[link\\]\\(http://x\\)"}
    assert page["login_html"] == ("Lab &lt;script&gt;: log in with the account that the *ops* "
                                  "team gave you.")
    assert page["title"] == "Lab <script> model arena"  # plain: the loader escapes headings


def test_render_page_uses_prose_settings_as_given():
    page = render_page({"intro": "Our **own** models.", "rules": "", "about": "# Hi",
                        "title": "Arena", "login_message": "Log in, <please>"}, MODELS, "Lab")
    assert (page["intro_md"], page["rules_md"], page["about_md"], page["title"]) == (
        "Our **own** models.", "", "# Hi", "Arena")
    assert page["login_html"] == "Log in, &lt;please&gt;"


def test_render_page_is_what_the_loader_accepts(patched, tmp_path, monkeypatch):
    page = render_page({"model_descriptions": {"Qwen-7B-Chat": "x"}}, MODELS, "Lab")
    monkeypatch.setenv("FASTCHAT_LAB_PAGE", write_page(tmp_path, page))
    loader = load_loader(patched)
    assert set(page) <= set(loader.DEFAULTS)
    assert {k: v for k, v in loader.page().items() if k in page} == page


def test_render_page_lists_every_problem():
    with pytest.raises(ValueError) as error:
        render_page({"titel": "x", "title": 3, "intro": ["a"],
                     "model_descriptions": {"GPT-4": "x", "Qwen-7B-Chat": 7}},
                    MODELS, " ")
    assert str(error.value).splitlines() == [
        "The web UI page settings have 6 problems:",
        "- lab_name: ' ' is not a name. Fix: give the lab a name, e.g. \"GPU lab\".",
        "- settings.titel: unknown. Fix: use one of intro, rules, side_by_side, direct, terms, "
        "about, leaderboard, title, admins, contact, login_message, model_descriptions.",
        "- settings.intro: ['a'] is not text. Fix: quote it (a string).",
        "- settings.title: 3 is not text. Fix: quote it (a string).",
        "- settings.model_descriptions.GPT-4: not a model of this lab. Fix: use one of "
        "Qwen-7B-Chat, Baichuan-13B-Chat.",
        "- settings.model_descriptions.Qwen-7B-Chat: 7 is not text. Fix: quote it (a string).",
    ]


def test_render_page_refuses_a_title_of_several_lines():
    with pytest.raises(ValueError, match="settings.title: one line only"):
        render_page({"title": "A\nB"}, MODELS, "Lab")


def test_md_escape_shows_text_literally():
    assert md_escape("a_b *c* [d](e) #1 <x> & y") == (
        "a\\_b \\*c\\* \\[d\\]\\(e\\) \\#1 &lt;x&gt; &amp; y")
