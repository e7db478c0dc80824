# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The web UI's page file: the lab's own texts in place of LMSYS's public arena.

Pure Python (standard library only): pytest imports it directly. :func:`render_page`
turns the lab's page settings into the JSON object that FastChat's web UI reads from
the file named by ``FASTCHAT_LAB_PAGE`` (``fastchat/serve/lab_page.py``, added to
FastChat by the fastchat_image role's ``files/fastchat-lab-page.patch``). Its keys:

``title``            plain text: the browser title and the heading of each tab
``intro_md``         markdown: above the battle, what is compared
``rules_md``         markdown: the battle's rules
``side_by_side_md``  markdown: the rules of the side-by-side tab
``direct_md``        markdown: above the direct chat
``terms_md``         markdown: the terms of use under every chat and the leaderboard
``about_md``         markdown: the About tab
``leaderboard_md``   markdown: above the leaderboard (with ``--elo-results-file``)
``login_html``       HTML: the login form's message (with ``--gradio-auth-path``)
``models``           {model name: markdown}: the "descriptions of N models" list

Settings that are prose (``intro``, ``rules``, ``side_by_side``, ``direct``,
``terms``, ``about``, ``leaderboard``) are markdown and used as given; names and
other plain values (``lab_name``, ``admins``, ``contact``, the models and their
descriptions, ``login_message``) are escaped, so a name such as ``Qwen_7B*`` shows
as written. ``title`` stays plain text: FastChat escapes it where it is a heading.
Every default is true of a private lab: it names the lab and its models, says who
reads the conversations and votes (the lab's admins), and that nothing leaves the
lab. No default links to or loads anything outside the lab.

:func:`render_conv_templates` gives the page's second file, ``conv_templates.json``
beside it: {model name: FastChat conversation template}, the template the plan starts
each model's workers with (``plan["models"][m]["served_conv_template"]``). The web UI
builds its prompts itself: with this file it prompts every model as its workers and the
API server do (without it, FastChat picks a template by the model's name: a neutral name
gets ``one_shot``, whose example exchange then opens every conversation). The web UI
reads it for each new conversation, so a model that joins the lab restarts nothing.
"""

from __future__ import annotations

import html
import re
from typing import Any

# The settings, each with what it takes.
PROSE = ("intro", "rules", "side_by_side", "direct", "terms", "about", "leaderboard")
PLAIN = ("title", "admins", "contact", "login_message")
SETTINGS = PROSE + PLAIN + ("model_descriptions",)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def md_escape(text: str) -> str:
    """Plain text as markdown that shows it literally (HTML included)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _and(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _check(settings: dict, models: list[str], lab_name: Any) -> list[str]:
    problems = []
    if not isinstance(lab_name, str) or not lab_name.strip():
        problems.append("lab_name: %r is not a name. Fix: give the lab a name, e.g. "
                        "\"GPU lab\"." % (lab_name,))
    if not isinstance(settings, dict):
        return problems + ["settings: %r is not a mapping. Fix: give a mapping of %s."
                           % (settings, ", ".join(SETTINGS))]
    for key in sorted(set(settings) - set(SETTINGS), key=str):
        problems.append("settings.%s: unknown. Fix: use one of %s." % (key, ", ".join(SETTINGS)))
    for key in PROSE + PLAIN:
        value = settings.get(key)
        if value is not None and not isinstance(value, str):
            problems.append("settings.%s: %r is not text. Fix: quote it (a string)."
                            % (key, value))
    if isinstance(settings.get("title"), str) and "\n" in settings["title"]:
        problems.append("settings.title: one line only. Fix: put the rest in intro.")
    descriptions = settings.get("model_descriptions") or {}
    if not isinstance(descriptions, dict):
        problems.append("settings.model_descriptions: %r is not a mapping. Fix: give "
                        "{model name: description}." % (descriptions,))
    else:
        for name, about in descriptions.items():
            if name not in models:
                problems.append("settings.model_descriptions.%s: not a model of this lab. "
                                "Fix: use one of %s." % (name, ", ".join(models) or "(none)"))
            elif not isinstance(about, str):
                problems.append("settings.model_descriptions.%s: %r is not text. Fix: "
                                "quote it (a string)." % (name, about))
    return problems


def render_page(settings: dict, models: list[str], lab_name: str,
                name_models: bool = True) -> dict:
    """The page file's JSON object for a lab called ``lab_name`` serving ``models``.

    ``name_models`` False: the default texts point at the page's own (live) model lists
    instead of naming the models, so that a model added to the lab (a host joining)
    changes no page and restarts no web UI.

    ``settings`` overrides the defaults (see the module's docstring); a setting that is
    None or absent takes its default, an empty string leaves that text empty.
    Raises ValueError listing every problem (unknown setting, wrong type, a
    description of a model the lab does not serve).
    """
    settings = {} if settings is None else settings
    models = list(dict.fromkeys(str(m) for m in models))
    problems = _check(settings, models, lab_name)
    if problems:
        raise ValueError("The web UI page settings have %d problem%s:\n- %s" % (
            len(problems), "" if len(problems) == 1 else "s", "\n- ".join(problems)))

    def setting(key: str, default: str) -> str:
        value = settings.get(key)
        return default if value is None else value

    lab = md_escape(lab_name.strip())
    admins = md_escape(setting("admins", "the lab's admins"))
    contact = setting("contact", "")
    ask = " Questions: %s." % md_escape(contact) if contact else ""
    if name_models and models:
        names = _and(["**%s**" % md_escape(m) for m in models])
        count = "%d models" % len(models) if len(models) != 1 else "one model"
        which = "%s: %s" % (count, names)
    else:
        names = ""
        which = "every one of them is in the model lists on this page"
    intro = ("Compare the chat models that %s runs (%s) on questions of your own: "
             "two of them answer anonymously, side by side, and you vote for the better "
             "answer." % (lab, which))
    rules = "\n".join([
        "- Ask anything. Two of the lab's models, picked at random, answer as "
        "**Model A** and **Model B**.",
        "- Keep chatting until you can tell which answer is better, then vote: "
        "*A is better*, *B is better*, *Tie* or *Both are bad*.",
        "- The two models' names are shown after your vote. Don't ask a model who it "
        "is: a vote after a model has named itself may be left out of the results.",
        "- *New Round* starts again with two models picked anew.",
    ])
    side_by_side = "\n".join([
        "- Choose two of the lab's models and chat with both at once.",
        "- Vote for the better answer: these votes are logged with the models' names.",
        "- *Clear history* starts a new round.",
    ])
    terms = ("This arena runs on %s's own servers, and nothing you type is sent outside "
             "the lab. Your conversations and votes are stored on the lab's servers, with "
             "your network address, and read only by %s. The models can be wrong, biased "
             "or offensive: check what they say before you use it.%s" % (lab, admins, ask))
    about = "\n\n".join([
        "# About",
        ("%s's model arena compares the models that the lab runs — %s — by the votes of "
         "the lab's own users." % (lab, names)) if names else
        ("%s's model arena compares the models that the lab runs by the votes of the "
         "lab's own users." % lab),
        "Conversations and votes stay on the lab's servers; only %s read them. No "
        "data, vote or leaderboard is published outside the lab.%s" % (admins, ask),
        "It is FastChat's Chatbot Arena, run privately by the lab.",
    ])
    leaderboard = ("Ratings (Elo) of %s's models from the anonymous battles of this "
                   "arena: only the lab's users vote." % lab)
    login = setting("login_message",
                    "%s: log in with the account that %s gave you."
                    % (lab_name.strip(), setting("admins", "the lab's admins")))

    descriptions = settings.get("model_descriptions") or {}
    return {
        "title": setting("title", "%s model arena" % lab_name.strip()),
        "intro_md": setting("intro", intro),
        "rules_md": setting("rules", rules),
        "side_by_side_md": setting("side_by_side", side_by_side),
        "direct_md": setting("direct", ("Chat with one of %s's models: %s." % (lab, names))
                             if names else "Chat with one of %s's models: pick it in the list "
                             "below." % lab),
        "terms_md": setting("terms", terms),
        "about_md": setting("about", about),
        "leaderboard_md": setting("leaderboard", leaderboard),
        "login_html": html.escape(login),
        "models": {m: md_escape(descriptions[m]) for m in models if descriptions.get(m)},
    }


# A FastChat conversation template name, as its registry spells them (vicuna_v1.1,
# qwen-7b-chat, chatglm3, ...): no path, space, quote or control character.
_TEMPLATE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def render_conv_templates(plan_models: dict) -> dict:
    """{model: template} of the models whose workers serve a template (the plan's
    ``models``: {name: {"served_conv_template": str or None, ...}}); a model without
    one is left out (FastChat's choice by name, as its workers make). Raises ValueError
    listing every entry that is not a model name with a template name or null."""
    if not isinstance(plan_models, dict):
        raise ValueError("The plan's models: %r is not a mapping. Fix: pass the plan's "
                         "\"models\" (lab_plan)." % (plan_models,))
    out, problems = {}, []
    for name, entry in plan_models.items():
        template = entry.get("served_conv_template") if isinstance(entry, dict) else entry
        if not isinstance(name, str) or not name.strip() or not isinstance(entry, dict):
            problems.append("models.%s: not a model of the plan. Fix: pass the plan's "
                            "\"models\" (lab_plan)." % (name,))
        elif template is None:
            continue
        elif not isinstance(template, str) or not _TEMPLATE_RE.fullmatch(template):
            problems.append("models.%s.served_conv_template: %r is not a template name. Fix: "
                            "name one of FastChat's conversation templates." % (name, template))
        else:
            out[name] = template
    if problems:
        raise ValueError("The web UI's templates file has %d problem%s:\n- %s" % (
            len(problems), "" if len(problems) == 1 else "s", "\n- ".join(problems)))
    return dict(sorted(out.items()))
