"""The lab's own web UI page: roles/fastchat_image/files/fastchat-lab-page.patch on FastChat
0.2.36's own tree (the installed fschat package, laid out as FastChat's repository), the
loader it adds (fastchat/serve/lab_page.py, imported from the patched copy), the battles
it keeps on the server (fastchat/serve/lab_arena.py, imported from the patched copy), and
module_utils/lab_page.py, which renders the loader's JSON files from the lab's settings
and plan (the plan's per-model served template: lab_plan/placement.py). gradio is not
needed: the patched UI modules are compiled and read, not imported; the real page in a
browser is molecule/lab/tests/test_arena_blind.py's."""

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
    render_conv_templates,
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
    "fastchat/serve/lab_arena.py",
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


def page_tabs(patched):
    """{tab id: label} of the page gradio_web_server_multi builds (its gr.Tab calls)."""
    tree = ast.parse(read(patched, "fastchat/serve/gradio_web_server_multi.py"))
    tabs = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "Tab"):
            ids = [k.value.value for k in node.keywords if k.arg == "id"]
            tabs[ids[0]] = node.args[0].value
    return tabs


def test_the_page_selects_a_tab_on_load_only_where_the_url_names_one(patched):
    """FastChat's load event selected the first tab again when it ended: a user who
    opened the Leaderboard while the page loaded was thrown back to the battle (and a
    browser test clicking the Judge sub-tab found it hidden). The patched load event
    leaves the tabs alone unless the URL asks for one."""
    multi = read(patched, "fastchat/serve/gradio_web_server_multi.py")
    load_demo = multi.split("def load_demo(", 1)[1].split("\ndef ", 1)[0]
    assert "selected = lab_page.tab_from_url(url_params)" in load_demo
    assert "(gr.Tabs() if selected is None else gr.Tabs(selected=selected),)" in load_demo
    assert "selected = 0" not in load_demo


@pytest.mark.parametrize("params, label", [
    ({}, None),
    ({"__theme": "dark"}, None),
    ({"arena": ""}, "Arena (battle)"),
    ({"compare": ""}, "Arena (side-by-side)"),
    ({"direct": ""}, "Direct Chat"),
    ({"model": "tiny-chat"}, "Direct Chat"),
    ({"vision": ""}, "Vision-Language Model Direct Chat"),
    ({"leaderboard": ""}, "Leaderboard"),
    # FastChat's order of precedence where several are given.
    ({"leaderboard": "", "arena": ""}, "Arena (battle)"),
    ({"leaderboard": "", "model": "x"}, "Direct Chat"),
])
def test_tab_from_url_names_the_tab_of_the_page_the_url_asks_for(patched, loader, params, label):
    tab = loader.tab_from_url(params)
    assert (None if tab is None else page_tabs(patched)[tab]) == label


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


# --- the battles the patch keeps on the server (fastchat/serve/lab_arena.py) -------------

def load_arena(repo):
    """The patched tree's fastchat/serve/lab_arena.py (standard library only)."""
    path = os.path.join(repo, "fastchat", "serve", "lab_arena.py")
    spec = importlib.util.spec_from_file_location("lab_arena_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Conv:
    """FastChat's Conversation as the arena uses it: messages after an example offset."""

    def __init__(self, example_turns=0):
        self.roles = ("USER", "ASSISTANT")
        self.messages = [["USER", "example"], ["ASSISTANT", "answer"]] * example_turns
        self.offset = len(self.messages)

    def ask(self, text, answer):
        self.messages += [[self.roles[0], text], [self.roles[1], answer]]


class Side:
    """gradio_web_server.State as the arena uses it (model_name, conv, dict())."""

    def __init__(self, model_name, example_turns=1):
        self.model_name = model_name
        self.conv = Conv(example_turns)
        self.conv_id = "%s-%d" % (model_name, id(self))

    def dict(self):
        return {"messages": self.conv.messages, "offset": self.conv.offset,
                "conv_id": self.conv_id, "model_name": self.model_name}


@pytest.fixture
def arena_mod(patched):
    return load_arena(patched)


def battle(arena, a, b, question="q", named=False):
    sides = [Side(a), Side(b)]
    started = arena.start(sides, named=named)
    for side in sides:
        side.conv.ask(question, "answer of " + side.model_name)
    return started, sides


def test_a_first_vote_is_blind_with_its_own_battle_and_shows_its_names(arena_mod):
    arena = arena_mod.Arena()
    one, sides = battle(arena, "m-a", "m-b")
    assert one.labels() == ["", ""]  # nothing shown before the vote
    vote = arena.vote(one.id)
    assert vote.models == ["", ""] and vote.on_screen
    assert [s["conv_id"] for s in vote.states] == [s.conv_id for s in sides]
    assert [s["model_name"] for s in vote.states] == ["m-a", "m-b"]
    assert one.labels() == ["### Model A: m-a", "### Model B: m-b"]


def test_new_round_before_the_vote_runs_the_vote_still_counts_blind_and_shows_nothing(arena_mod):
    """The order gradio 4 ran the events in under load: New Round and the next question
    before the vote clicked first. FastChat logged the names the page then showed with
    the new battle's states (or nothing: no states)."""
    arena = arena_mod.Arena()
    first, first_sides = battle(arena, "m-a", "m-b", "first question")
    arena.end()
    second, second_sides = battle(arena, "m-b", "m-c", "second question")
    vote = arena.vote(first.id)
    assert vote.models == ["", ""]
    assert not vote.on_screen  # the page shows the second battle: no names of the first
    assert [s["conv_id"] for s in vote.states] == [s.conv_id for s in first_sides]
    assert vote.states[0]["messages"][-2][1] == "first question"
    # The battle on screen is still blind, and its own vote is too.
    assert second.labels() == ["", ""]
    later = arena.vote(second.id)
    assert later.models == ["", ""] and later.on_screen
    assert [s["model_name"] for s in later.states] == ["m-b", "m-c"]


def test_a_new_battle_never_carries_the_names_of_the_one_before(arena_mod):
    arena = arena_mod.Arena()
    previous = None
    for n in range(5):
        current, _ = battle(arena, "x%d" % n, "y%d" % n)
        assert current.labels() == ["", ""]
        if previous is not None:
            assert previous.over and current is not previous
        vote = arena.vote(current.id)
        assert vote.models == ["", ""]
        assert [s["model_name"] for s in vote.states] == ["x%d" % n, "y%d" % n]
        arena.end()
        previous = current
    assert arena.current is None


def test_a_repeated_vote_is_recorded_once_and_a_vote_after_the_names_shown_is_named(arena_mod):
    arena = arena_mod.Arena()
    one, sides = battle(arena, "m-a", "m-b")
    assert arena.vote(one.id).models == ["", ""]
    assert arena.vote(one.id) is None  # the same answer again (a double click, a replay)
    for side in sides:
        side.conv.ask("more", "more answers")
    # The user saw the names: this vote is not blind, and says so with the real names.
    assert arena.vote(one.id).models == ["m-a", "m-b"]


def test_named_battles_carry_the_names_of_the_models_that_answered(arena_mod):
    arena = arena_mod.Arena()
    one, _ = battle(arena, "left", "right", named=True)
    assert one.labels() == ["### Model A: left", "### Model B: right"]
    assert arena.vote(one.id).models == ["left", "right"]


@pytest.mark.parametrize("battle_id", ["", None, 7, "0" * 32, "../x", ["id"]])
def test_a_vote_for_no_known_battle_records_nothing(arena_mod, battle_id):
    arena = arena_mod.Arena()
    battle(arena, "m-a", "m-b")
    assert arena.vote(battle_id) is None


def test_a_battle_with_nothing_asked_has_no_vote(arena_mod):
    arena = arena_mod.Arena()
    sides = [Side("m-a", example_turns=1), Side("m-b", example_turns=1)]
    empty = arena.start(sides)
    # one_shot's example exchange is not the user's: nothing to vote on.
    assert empty.turn() == 0 and arena.vote(empty.id) is None
    assert not arena_mod.can_vote(sides[0]) and arena_mod.is_live(sides[0])


def test_new_round_ends_the_battle_for_every_later_event(arena_mod):
    arena = arena_mod.Arena()
    one, sides = battle(arena, "m-a", "m-b")
    assert arena_mod.is_live(sides[0]) and arena_mod.can_vote(sides[0])
    arena.end()
    assert one.over and not arena_mod.is_live(sides[0]) and not arena_mod.can_vote(sides[0])
    assert not arena_mod.is_live(None) and not arena_mod.is_live(Side("stray"))
    # Starting another battle also ends the one on screen.
    two, _ = battle(arena, "m-a", "m-b")
    three, _ = battle(arena, "m-a", "m-b")
    assert two.over and not three.over and arena.current is three


def test_a_session_remembers_its_last_battles_only(arena_mod):
    arena = arena_mod.Arena()
    battles = [battle(arena, "m-a", "m-b")[0] for _ in range(arena_mod.KEEP + 1)]
    assert len(arena.battles) == arena_mod.KEEP
    assert arena.vote(battles[0].id) is None
    assert arena.vote(battles[1].id).models == ["", ""]


def test_a_sessions_arena_is_a_fresh_one_and_shows_nothing_in_the_page_config(arena_mod):
    import copy
    template = arena_mod.Arena()
    battle(template, "m-a", "m-b")
    fresh = copy.deepcopy(template)
    assert fresh.current is None and not fresh.battles and fresh.lock is not template.lock
    assert str(template) == ""


def test_concurrent_votes_on_one_answer_record_one(arena_mod):
    import threading
    arena = arena_mod.Arena()
    one, _ = battle(arena, "m-a", "m-b")
    results, start = [], threading.Barrier(16)

    def vote():
        start.wait()
        results.append(arena.vote(one.id))

    threads = [threading.Thread(target=vote) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_the_vote_line_is_fastchats_with_the_login(arena_mod):
    arena = arena_mod.Arena()
    one, sides = battle(arena, "m-a", "m-b")
    vote = arena.vote(one.id)
    line = arena_mod.vote_line(1700000000.123456, "leftvote", vote, "203.0.113.7", "alice")
    assert line == {"tstamp": 1700000000.1235, "type": "leftvote", "models": ["", ""],
                    "states": vote.states, "ip": "203.0.113.7", "login": "alice"}
    assert arena_mod.vote_line(1.0, "tievote", vote, "::1", None)["login"] is None
    # The states are the battle's as voted on: a later turn does not change the line.
    sides[0].conv.ask("later", "later answer")
    assert len(json.loads(json.dumps(line))["states"][0]["messages"]) == 4


# --- the patched battle tabs use the server's battle ---------------------------------------

def functions(repo, rel):
    tree = ast.parse(read(repo, rel))
    return {n.name: n for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


VOTE_FNS = ["leftvote_last_response", "rightvote_last_response", "tievote_last_response",
            "bothbad_vote_last_response"]


@pytest.mark.parametrize("rel", ["fastchat/serve/gradio_block_arena_anony.py",
                                 "fastchat/serve/gradio_block_arena_named.py"])
def test_votes_take_the_battle_id_not_the_names_on_the_page(patched, rel):
    fns = functions(patched, rel)
    for name in VOTE_FNS + ["vote_last_response"]:
        fn = fns[name]
        # Async (run whole on the event loop, in click order) and no generator: FastChat's
        # five-step reveal put the names back after New Round.
        assert isinstance(fn, ast.AsyncFunctionDef), name
        assert not any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(fn)), name
        args = [a.arg for a in fn.args.args]
        assert "model_selector0" not in args and "model_selectors" not in args, (name, args)
        assert args[:2] == ["arena", "battle_id"], (name, args)
    for name in ("clear_history", "add_text", "regenerate"):
        assert isinstance(fns[name], ast.AsyncFunctionDef), name
    text = read(patched, rel)
    assert "arena.vote(battle_id)" in text and "lab_arena.vote_line(" in text
    assert '"models": [x for x in model_selectors]' not in text
    # Questions, votes and new rounds of one tab share one unlimited queue: click order.
    assert text.count("**battle_events") >= 4
    assert 'concurrency_limit=None)' in text
    assert "time.sleep" not in text


def test_the_battle_tab_shows_the_battle_it_votes_on(patched):
    fns = functions(patched, "fastchat/serve/gradio_block_arena_anony.py")
    text = read(patched, "fastchat/serve/gradio_block_arena_anony.py")
    # The vote buttons come with the id and the (blank) names of their battle.
    body = ast.get_source_segment(text, fns["show_vote_buttons"])
    assert "[battle.id] + battle.labels()" in body and "can_vote(state0)" in body
    assert "show_vote_buttons, states[:1], btn_list + shown" in text
    # Each streamed step says the same; New Round ends the stream.
    body = ast.get_source_segment(text, fns["bot_response_multi"])
    assert "[battle.id] + battle.labels()" in body and "if battle.over:" in body
    # A page load leaves the battle alone (it ran after the first question at times).
    body = ast.get_source_segment(text, fns["load_demo_side_by_side_anony"])
    assert "states = (gr.update(),) * num_sides" in body


def test_every_vote_and_chat_line_records_the_login(patched):
    server = read(patched, "fastchat/serve/gradio_web_server.py")
    assert server.count('"login": getattr(request, "username", None),') == 2
    for rel in ("fastchat/serve/gradio_block_arena_anony.py",
                "fastchat/serve/gradio_block_arena_named.py"):
        assert 'getattr(request, "username", None)' in read(patched, rel)


def test_the_web_ui_takes_each_models_template_from_the_lab(patched):
    fns = functions(patched, "fastchat/serve/gradio_web_server.py")
    text = read(patched, "fastchat/serve/gradio_web_server.py")
    state = next(n for n in ast.parse(text).body
                 if isinstance(n, ast.ClassDef) and n.name == "State")
    init = ast.get_source_segment(text, state.body[0])
    assert "self.conv = lab_page.conversation(model_name)" in init
    assert "get_conversation_template(" not in init
    assert "get_conversation_template(" not in ast.get_source_segment(
        text, fns["_prepare_text_with_image"])
    multi = read(patched, "fastchat/serve/gradio_web_server_multi.py")
    assert "    lab_page.check_templates()\n" in multi


# --- the templates file (loader side) ----------------------------------------------------

def templates_loader(patched, tmp_path, monkeypatch, templates):
    """The loader with a page file and, beside it, ``templates`` (None: no such file;
    a str: written as it is)."""
    monkeypatch.setenv("FASTCHAT_LAB_PAGE", write_page(tmp_path, {"title": "Lab"}))
    if templates is not None:
        (tmp_path / "conv_templates.json").write_text(
            templates if isinstance(templates, str) else json.dumps(templates),
            encoding="utf-8")
    return load_loader(patched)


def test_the_loader_prompts_a_model_with_its_lab_template(patched, tmp_path, monkeypatch):
    loader = templates_loader(patched, tmp_path, monkeypatch,
                              {"tiny-chat": "vicuna_v1.1", "Qwen-7B-Chat": "qwen-7b-chat"})
    assert loader.templates_path() == str(tmp_path / "conv_templates.json")
    assert loader.template_name("tiny-chat") == "vicuna_v1.1"
    conv = loader.conversation("tiny-chat")
    assert conv.name == "vicuna_v1.1" and conv.messages == [] and conv.offset == 0
    assert loader.conversation("Qwen-7B-Chat").name == "qwen-7b-chat"
    loader.check_templates()


def test_a_model_the_file_does_not_name_gets_fastchats_choice_by_name(
        patched, tmp_path, monkeypatch):
    import sys
    import types
    loader = templates_loader(patched, tmp_path, monkeypatch, {"tiny-chat": "vicuna_v1.1"})
    asked = []
    adapter = types.ModuleType("fastchat.model.model_adapter")
    adapter.get_conversation_template = lambda name: asked.append(name) or "adapter's"
    monkeypatch.setitem(sys.modules, "fastchat.model.model_adapter", adapter)
    assert loader.template_name("other") is None
    assert loader.conversation("other") == "adapter's" and asked == ["other"]


@pytest.mark.parametrize("setup", ["no page", "no file"])
def test_without_a_templates_file_every_model_gets_fastchats_choice(
        patched, tmp_path, monkeypatch, setup):
    if setup == "no page":
        monkeypatch.delenv("FASTCHAT_LAB_PAGE", raising=False)
        loader = load_loader(patched)
        assert loader.templates_path() is None
    else:
        loader = templates_loader(patched, tmp_path, monkeypatch, None)
    assert loader.conv_templates() == {} and loader.template_name("tiny-chat") is None
    loader.check_templates()


@pytest.mark.parametrize("content", ["{not json", "[]", '{"m": 3}', '{"m": ""}',
                                     '{"m": ["vicuna_v1.1"]}', '"vicuna_v1.1"'])
def test_the_loader_refuses_a_bad_templates_file(patched, tmp_path, monkeypatch, content):
    loader = templates_loader(patched, tmp_path, monkeypatch, content)
    with pytest.raises(RuntimeError, match=str(tmp_path / "conv_templates.json")):
        loader.conversation("m")


def test_a_template_fastchat_lacks_stops_the_start_and_each_conversation(
        patched, tmp_path, monkeypatch):
    loader = templates_loader(patched, tmp_path, monkeypatch,
                              {"m": "no-such-template", "ok": "vicuna_v1.1"})
    with pytest.raises(RuntimeError, match="not a template of this FastChat: m: "
                                           "'no-such-template'"):
        loader.check_templates()
    with pytest.raises(RuntimeError, match="m: 'no-such-template' is not a template"):
        loader.conversation("m")
    assert loader.conversation("ok").name == "vicuna_v1.1"


# --- render_conv_templates and the plan's served template --------------------------------

def test_render_conv_templates_is_the_plans_served_templates():
    from labs import plan_of, reference_lab
    plan = plan_of(*reference_lab())
    assert render_conv_templates(plan["models"]) == {
        "Baichuan-13B-Chat": "baichuan-chat", "Qwen-7B-Chat": "qwen-7b-chat"}
    # What the workers are started with.
    for host in plan["hosts"].values():
        for svc in host["services"]:
            if svc["kind"] == "model_worker":
                argv = svc["argv"]
                assert argv[argv.index("--conv-template") + 1] == \
                    plan["models"][svc["model"]]["served_conv_template"]


def test_render_conv_templates_leaves_out_models_without_one():
    assert render_conv_templates({"b": {"served_conv_template": "vicuna_v1.1"},
                                  "a": {"served_conv_template": None}}) == {"b": "vicuna_v1.1"}
    assert render_conv_templates({}) == {}


@pytest.mark.parametrize("models, says", [
    ({"m": {"served_conv_template": "../etc/passwd"}}, "models.m.served_conv_template: "
                                                       "'../etc/passwd' is not a template name"),
    ({"m": {"served_conv_template": "a b"}}, "'a b' is not a template name"),
    ({"m": {"served_conv_template": "vicuna_v1.1\n"}}, "is not a template name"),
    ({"m": {"served_conv_template": ""}}, "'' is not a template name"),
    ({"m": {"served_conv_template": 3}}, "3 is not a template name"),
    ({"m": {"served_conv_template": "x" * 129}}, "is not a template name"),
    ({"m": "vicuna_v1.1"}, "models.m: not a model of the plan"),
    ({" ": {"served_conv_template": "vicuna_v1.1"}}, "not a model of the plan"),
    (["m"], "is not a mapping"),
])
def test_render_conv_templates_refuses_what_is_not_a_template(models, says):
    with pytest.raises(ValueError, match="Fix:") as error:
        render_conv_templates(models)
    assert says in str(error.value)


def test_the_rendered_file_is_what_the_loader_reads(patched, tmp_path, monkeypatch):
    from labs import plan_of, reference_lab
    rendered = render_conv_templates(plan_of(*reference_lab())["models"])
    loader = templates_loader(patched, tmp_path, monkeypatch, rendered)
    loader.check_templates()
    assert {m: loader.conversation(m).name for m in rendered} == rendered


def second_qwen(template=None):
    from labs import reference_lab
    hosts, groups = reference_lab()
    worker = {"model": "Qwen-7B-Chat", "gpus": [0], "name": "qwen-second"}
    if template is not None:
        worker["conv_template"] = template
    hosts["gpu01"]["fastchat_workers"].append(worker)
    return hosts, groups


def test_a_workers_own_template_is_the_models_served_template():
    from labs import plan_of, reference_lab
    hosts, groups = reference_lab()
    hosts["gpu01"]["fastchat_workers"][0]["conv_template"] = "vicuna_v1.1"
    plan = plan_of(hosts, groups)
    assert plan["models"]["Qwen-7B-Chat"]["served_conv_template"] == "vicuna_v1.1"
    assert plan["models"]["Qwen-7B-Chat"]["conv_template"] == "qwen-7b-chat"  # the catalogue's
    # Two workers of one model with the same template are fine.
    plan = plan_of(*second_qwen("qwen-7b-chat"))
    assert plan["models"]["Qwen-7B-Chat"]["served_conv_template"] == "qwen-7b-chat"


def test_two_workers_of_one_model_with_different_templates_are_refused():
    from labs import plan_of
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import PlanError
    with pytest.raises(PlanError) as error:
        plan_of(*second_qwen("vicuna_v1.1"))
    assert [str(e) for e in error.value.errors] == [
        "gpu01: fastchat_workers[2].conv_template: worker qwen-second serves Qwen-7B-Chat "
        "with conversation template 'vicuna_v1.1', but worker qwen-7b-chat-gpu1 on gpu01 "
        "with 'qwen-7b-chat': the web UI prompts a model with one template. Fix: give "
        "every worker of Qwen-7B-Chat the same conv_template, or leave it out on all of "
        "them to use the catalogue's."]


def test_a_worker_with_a_template_beside_one_without_is_refused():
    from labs import CATALOGUE, plan_of
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import PlanError
    catalogue = json.loads(json.dumps(CATALOGUE))
    del catalogue["Qwen-7B-Chat"]["conv_template"]
    hosts, groups = second_qwen("qwen-7b-chat")
    with pytest.raises(PlanError) as error:
        plan_of(hosts, groups, catalogue=catalogue)
    assert "with conversation template 'qwen-7b-chat', but worker qwen-7b-chat-gpu1 on " \
           "gpu01 with FastChat's choice by name (none set)" in str(error.value)
    plan = plan_of(*second_qwen(), catalogue=catalogue)
    assert plan["models"]["Qwen-7B-Chat"]["served_conv_template"] is None
    assert "Qwen-7B-Chat" not in render_conv_templates(plan["models"])


def test_only_the_workers_own_arguments_name_its_template():
    """A llamacpp worker's argv ends with llama-server's after "--": not the worker's."""
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import placement
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan.problems import (
        Problems,
    )
    svc = {"kind": "model_worker", "model": "m", "name": "w1",
           "argv": ["python3", "-m", "worker", "--", "server", "--conv-template", "x"]}
    problems = Problems()
    assert placement._served_templates({"h": {"services": [svc]}}, {}, problems) == {"m": None}
    svc["argv"] = ["python3", "-m", "worker", "--conv-template", "y", "--", "server"]
    assert placement._served_templates({"h": {"services": [svc]}}, {}, problems) == {"m": "y"}
    assert problems.items == []


def test_the_deploy_role_renders_the_templates_file_with_render_conv_templates():
    from ansible_collections.fastchat_lab.lab.plugins.filter.deploy import FilterModule
    models = {"Qwen-7B-Chat": {"served_conv_template": "qwen-7b-chat"}, "Tiny": {"served_conv_template": None}}
    assert FilterModule().filters()["lab_conv_templates"](models) == render_conv_templates(models)
    with open(os.path.join(ROOT, "roles", "fastchat_deploy", "tasks", "main.yml"),
              encoding="utf-8") as f:
        tasks = f.read()
    # The task hands the rendered file to deploy_files, which writes it into the web UI's
    # directory (tests/test_deploy_files.py).
    assert ("'conv_templates': _fastchat_deploy_plan.models | fastchat_lab.lab.lab_conv_templates "
            "| to_nice_json(indent=2)" in " ".join(tasks.split()))
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.deploy_files import deploy_files
    files = deploy_files("/etc/fastchat-lab", "x", "/logs", {"page": "{}", "conv_templates": "T"}, None)
    assert {"path": "/etc/fastchat-lab/web-ui/conv_templates.json", "content": "T", "mode": "0644",
            "owner": "root", "group": "root"} in files


# --- the Judge table of the Leaderboard tab ----------------------------------------------

def judge_result(judge="judge-model"):
    """A judge.json (module_utils/judge.py's judge_result) of two ranked models, one not."""
    return {
        "models": [
            {"model": "Qwen-7B-Chat", "rank": 1, "rating": 1040.2, "ci_low": 1010.0,
             "ci_high": 1071.9, "wins": 20, "losses": 4, "ties": 2},
            {"model": "Baichuan-13B-Chat", "rank": 2, "rating": 959.8, "ci_low": 930.1,
             "ci_high": 990.0, "wins": 4, "losses": 20, "ties": 2},
            {"model": "<img src=x onerror=alert(1)>", "rank": None, "rating": None,
             "ci_low": None, "ci_high": None, "wins": 0, "losses": 0, "ties": 0},
        ],
        "speed": {"Qwen-7B-Chat": {"tokens_per_s": 31.25, "ttft_s": 0.412}},
        "verdicts": {"pairs": 30, "parsed": 26, "unparseable": 3, "inconsistent": 1},
        "agreement": {"agree": 1, "pairs": 1},
        "questions": {"count": 15},
        "judge": {"model": judge},
        "generated_at": "2026-12-06T10:00:00+00:00",
        "judged_at": "2026-12-06T09:59:00+00:00",
    }


def test_the_judge_table_reaches_the_tab_as_plain_text(patched, tmp_path):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.leaderboard_fastchat import (
        write_fastchat_judge_tab,
    )

    judge = "**judge** [x](http://evil.example/) <script>"
    write_fastchat_judge_tab(judge_result(judge), str(tmp_path),
                             {"models": [{"model": "Qwen-7B-Chat", "rating": 1003.6}]})
    tab = load_loader(patched).judge_tab(str(tmp_path))
    assert tab["headers"][:4] == ["Rank", "Model", "Judge rating", "95% CI"]
    assert tab["rows"][0] == ["1", "Qwen-7B-Chat", "1040", "+32/-30", "20-4-2", "1004",
                              "31.2", "0.41"]
    assert tab["rows"][2][:3] == ["-", "<img src=x onerror=alert(1)>", "-"]
    # The judge's name is shown literally: no link, no emphasis, no HTML.
    assert md_escape(judge) in tab["md"] and "](" not in tab["md"] and "<script>" not in tab["md"]
    assert "26 parsed, 3 unparseable, 1 inconsistent" in tab["md"]
    assert "on 1 of 1 pairs" in tab["md"] and md_escape("2026-12-06T09:59:00+00:00") in tab["md"]


def test_no_judge_file_no_judge_tab(patched, tmp_path):
    assert load_loader(patched).judge_tab(str(tmp_path)) is None


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"headers": [], "rows": []}',
    '{"judge": "j", "generated_at": "t", "headers": ["a", "b"], "rows": [["x"]]}',
    '{"judge": "j", "generated_at": "t", "headers": ["a"], "rows": [[1]]}',
    '{"judge": "j", "generated_at": "t", "headers": ["a"], "rows": [], "pairs": true}',
    '{"judge": "j", "generated_at": "t", "headers": ["a"], "rows": [], "pairs": -1}',
    '{"judge": ["j"], "generated_at": "t", "headers": ["a"], "rows": []}',
    '{"judge": "j", "generated_at": "t", "headers": ["a"], "rows": [' + ",".join(['["x"]'] * 1001) + ']}',
])
def test_a_judge_file_that_cannot_be_read_is_a_message_not_a_broken_page(patched, tmp_path,
                                                                          content):
    (tmp_path / "judge_table.json").write_text(content, encoding="utf-8")
    tab = load_loader(patched).judge_tab(str(tmp_path))
    assert tab["rows"] == [] and "cannot be read" in tab["md"]


def test_the_leaderboard_tab_builds_the_judge_table_beside_the_votes(patched):
    """monitor.py asks the loader for the table beside leaderboard_table.csv, inside the
    tab's sub-tabs, as plain strings."""
    source = read(patched, "fastchat/serve/monitor/monitor.py")
    tree = ast.parse(source)
    build = next(n for n in ast.walk(tree)
                 if isinstance(n, ast.FunctionDef) and n.name == "build_leaderboard_tab")
    text = ast.get_source_segment(source, build)
    assert "lab_page.judge_tab(os.path.dirname(leaderboard_table_file))" in text
    assert 'gr.Tab("Judge", id=2)' in text and 'datatype=["str"] * len(judge["headers"])' in text
    assert text.index('gr.Tab("Full Leaderboard"') < text.index('gr.Tab("Judge"')
