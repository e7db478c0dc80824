# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
# Documentation only: the work is done by the action plugin of the same name.

DOCUMENTATION = r"""
---
module: arena_check
short_description: Look at FastChat's web UI in a headless Chromium and list the models it offers
description:
  - Runs on the control node only (action plugin) and changes nothing.
  - Opens I(url) in a headless Chromium found on PATH, switches to I(tab), opens its
    first model list and waits (up to I(timeout) seconds) until every model of
    I(expect) is offered; then takes a screenshot.
  - Never fails by itself; the caller asserts on C(status).
version_added: 0.1.0
author:
  - fastchat-lab contributors
options:
  url:
    description: URL of the web UI.
    type: str
    required: true
  expect:
    description: Models the page must offer.
    type: list
    elements: str
    default: []
  dest:
    description: Where to save the screenshot (PNG) on the control node; none when unset.
    type: path
  tab:
    description: Label of the tab to show.
    type: str
    default: Arena (side-by-side)
  timeout:
    description: Seconds to wait for the models.
    type: int
    default: 60
  browser:
    description: Browser to run; default the first of chromium, chromium-browser, google-chrome on PATH.
    type: str
  login_user:
    description: A web UI login to sign in with first (fastchat_deploy_web_ui_users).
    type: str
  login_password:
    description: Its password (posted from inside the page, never on a command line).
    type: str
  ca_file:
    description: The lab CA (on the control node) that an https page's certificate must verify against.
    type: path
  unchanged_key:
    description:
      - What the page shows, as one string (playbooks/verify.yml gives the web UI container's
        id and start time, the expected models and the login's name). When the last look at
        I(url) that offered every model had the same key, it is reused and Chromium is not
        started (C(looked) false). A look that offers every model is remembered under the
        key (in C($XDG_CACHE_HOME/fastchat-lab/arena-looks.json), default C(~/.cache)); one
        that does not is forgotten. Unset, the page is always looked at.
    type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Look at the arena.
  fastchat_lab.lab.arena_check:
    url: http://192.0.2.10:7860/
    expect: [Qwen-7B-Chat, Baichuan-13B-Chat]
    dest: /tmp/arena.png
  register: arena
"""

RETURN = r"""
status:
  description: C(offered), C(missing), C(failed) (browser or page) or C(no-browser).
  type: str
  returned: always
models:
  description: The models the opened list offered.
  type: list
  elements: str
  returned: always
missing:
  description: Models of I(expect) that were not offered.
  type: list
  elements: str
  returned: always
error:
  description: What failed when C(status) is C(failed).
  type: str
  returned: when a browser ran
screenshot:
  description: Path of the screenshot (I(dest)), empty when none was kept.
  type: str
  returned: when a browser ran
looked:
  description: Whether a browser looked now (false when an earlier look was reused, I(unchanged_key)).
  type: bool
  returned: when a browser ran or a look was reused
"""
