"""Blind battles under load, in real browsers: the check behind issue 21's "browsers voting
while the API is under load see no names before their vote and every confirmed vote
counts".

Not a test module (pytest collects nothing here): the lab's tests call
:func:`blind_battles_under_load` where the lab's vote log may grow, e.g. at the end of
tests/test_lab.py (after the tests that count every vote in the log)::

    from arena_blind import blind_battles_under_load

    def test_blind_battles_under_load_show_no_names_and_every_vote_counts():
        report = blind_battles_under_load(
            web_ui(), LOGIN, vote_lines, api="https://%s:8000" % address("fcl-lab-head"),
            api_key=API_KEY, ca_file=CA)
        assert report["confirmed"] >= 3, report  # at least a battle per browser

(``vote_lines`` and ``LOGS``: tests/test_lab.py's reader of the head's vote log.)

What it does, within ``deadline_s`` (it stops itself; about a minute and a half on the
rehearsal lab): ``api_clients`` threads stream chat completions from the API the whole
time, while ``browsers`` logged-in pages of Debian's chromium (Playwright) each play
``rounds`` anonymous battles the way a quick user does: ask a question of its own, wait
for the vote buttons, look at the names under the chats (there must be none), vote,
wait for the names (the vote confirmed), then click New Round and type the next question
at once. Then it reads the vote log (``read_vote_lines()``: the log's vote lines as dicts)
and checks that every confirmed vote is there exactly once, blind (``"models": ["",
""]``), with its own battle's two conversations (both ask its question), the models whose
names the page showed after the vote, and the login; and that no vote line of these
battles carries names. Every problem found is listed in the AssertionError.
"""

import asyncio
import json
import os
import random
import re
import ssl
import sys
import threading
import time
import urllib.request
import uuid

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                         os.path.dirname(os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__))))))
VOTES = ["A is better", "B is better", "Tie", "Both are bad"]
NAMES = re.compile(r"Model [AB]: (\S+)")
# The battles' "Max output tokens" (the page allows 16 to 2,048; default 1,024).
SHORT_ANSWER_TOKENS = 32


def _context(ca_file):
    return ssl.create_default_context(cafile=ca_file) if ca_file else None


def _api_load(api, api_key, ca_file, models, stop, counts):
    """One API client: stream chat completions until ``stop`` is set."""
    context = _context(ca_file)
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = "Bearer " + api_key
    while not stop.is_set():
        body = json.dumps({"model": random.choice(models), "stream": True, "max_tokens": 64,
                           "messages": [{"role": "user", "content": "Load: say something."}]})
        req = urllib.request.Request(api + "/v1/chat/completions", data=body.encode(),
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60, context=context) as resp:
                resp.read()
            counts["completions"] += 1
        except OSError:
            counts["errors"] += 1
            stop.wait(1)


def _models(api, api_key, ca_file):
    req = urllib.request.Request(api + "/v1/models", headers={
        "Authorization": "Bearer " + api_key} if api_key else {})
    with urllib.request.urlopen(req, timeout=30, context=_context(ca_file)) as resp:
        return [m["id"] for m in json.load(resp)["data"]]


async def _shown_names(page):
    """The names under the two chats, as the page shows them now."""
    texts = await page.locator("#model_selector_md").all_inner_texts()
    return [m.group(1) for m in (NAMES.search(t) for t in texts) if m]


async def _wait(check, seconds, step=0.1):
    """Poll ``check`` (async, truthy when done) for up to ``seconds``; its last result."""
    end = time.monotonic() + max(seconds, 0)
    while True:
        result = await check()
        if result or time.monotonic() >= end:
            return result
        await asyncio.sleep(step)


async def _click_until(target, done, seconds=60):
    """Click ``target`` until ``done`` (async, truthy once the click took) holds, for up to
    ``seconds``: a click that lands while gradio is still wiring the page up is dropped.
    Each click is given 5 s to show before the next."""
    end = time.monotonic() + seconds
    while True:
        await target.click(timeout=10000)
        if await _wait(done, 5) or time.monotonic() > end:
            return


async def _open_tab(page, name, seconds=60):
    """Click the tab ``name`` until it is selected (``aria-selected``)."""
    tab = page.get_by_role("tab", name=name, exact=True)

    async def selected():
        return await tab.get_attribute("aria-selected") == "true"

    await _click_until(tab, selected, seconds)


async def _short_answers(page):
    """Set the battle's "Max output tokens" to its least: the tiny models' random weights
    rarely sample an end token, so each answer would run to the page's 1,024 tokens and
    the streams' re-rendering (not the engines) would fill this machine's cores; the race
    checked here does not depend on the answers' length."""
    toggle = page.get_by_text("Parameters", exact=True).locator("visible=true").first
    box = page.get_by_label("number input for Max output tokens").locator("visible=true").first

    async def opened():
        return await box.count() > 0

    # The accordion is shut when the page has loaded: clicked, as the tabs are, until its
    # box shows.
    await _click_until(toggle, opened)
    await box.fill(str(SHORT_ANSWER_TOKENS))
    await box.press("Enter")
    await box.blur()
    value = await box.input_value()
    if value != str(SHORT_ANSWER_TOKENS):
        raise AssertionError("Max output tokens is %r after setting it to %d"
                             % (value, SHORT_ANSWER_TOKENS))


async def _player(browser, web_ui, login, who, rounds, tag, end, report):
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    context = await browser.new_context(viewport={"width": 1400, "height": 1100})
    page = await context.new_page()
    try:
        await page.goto(web_ui + "/")
        status = await page.evaluate(
            "([user, password]) => fetch('/login', {method: 'POST', credentials: 'include', "
            "body: new URLSearchParams({username: user, password: password})})"
            ".then(r => r.status)", list(login))
        if status != 200:
            report["problems"].append("browser %d: login answered %s" % (who, status))
            return
        await page.goto(web_ui + "/")
        await _open_tab(page, "Arena (battle)")
        await _short_answers(page)
        box = page.locator("textarea[placeholder*='Enter your prompt']:visible").first
        new_round = page.get_by_role("button", name=re.compile("New Round")).first
        for rnd in range(rounds):
            if time.monotonic() > end - 20:
                break  # no time left for another battle
            question = "Blind check %s-%d-%d: what is a GPU?" % (tag, who, rnd)
            await box.fill(question)
            await box.press("Enter")
            vote = random.choice(VOTES)
            button = page.get_by_role("button", name=re.compile(re.escape(vote) + "$")).first

            async def votable():
                # is_enabled waits (30 s by default) for an element to ask: gradio may
                # re-render the button between the two questions (seen on a loaded
                # machine), which is "not yet", asked again at the next poll.
                try:
                    return await button.is_visible() and await button.is_enabled(timeout=1000)
                except PlaywrightTimeoutError:
                    return False

            if not await _wait(votable, end - time.monotonic()):
                report["unanswered"].append(question)
                continue
            shown = await _shown_names(page)
            if shown:
                report["problems"].append("%s: names on screen before the vote: %s"
                                          % (question, shown))
            await button.click()
            async def both_names():
                names = await _shown_names(page)
                return names if len(names) == 2 else None

            revealed = await _wait(both_names, min(30, end - time.monotonic()))
            if revealed:
                report["votes"].append({"question": question, "vote": vote,
                                        "revealed": revealed})
            else:
                report["unconfirmed"].append(question)
            # The race of issue 21: New Round at once, and the next question right after.
            await new_round.click()
    except Exception as exc:  # a browser that fails is a finding, not the end of the check
        report["problems"].append("browser %d: %s: %s" % (who, type(exc).__name__, exc))
    finally:
        await context.close()


async def _browsers(web_ui, login, ca_file, browsers, rounds, tag, end, report):
    from playwright.async_api import async_playwright

    args = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
    if ca_file:
        sys.path.insert(0, os.path.join(PROJECT, "collections"))
        from ansible_collections.fastchat_lab.lab.plugins.module_utils.arena import pin_for
        args.append("--ignore-certificate-errors-spki-list=" + pin_for(web_ui, ca_file))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                   args=args)
        try:
            await asyncio.wait_for(asyncio.gather(*(
                _player(browser, web_ui, login, who, rounds, tag, end, report)
                for who in range(browsers))), timeout=max(end - time.monotonic(), 1) + 30)
        except asyncio.TimeoutError:
            report["problems"].append("the browsers did not finish by the deadline")
        finally:
            await browser.close()


def _question_of(state):
    """The last question of a logged conversation (after its template's example)."""
    user = state["roles"][0]
    asked = [m[1] for m in state["messages"][state.get("offset", 0):] if m[0] == user]
    return asked[-1] if asked else None


def check_vote_lines(votes, lines, tag, login):
    """Problems of the log against the confirmed votes (see the module's docstring)."""
    problems = []
    ours = [line for line in lines
            if isinstance(line.get("states"), list) and tag in json.dumps(line["states"])]
    for line in ours:
        if line.get("models") != ["", ""]:
            problems.append("a vote line carries names: %r (its models: %r)" % (
                line.get("models"), [s.get("model_name") for s in line["states"]]))
    by_question = {}
    for line in ours:
        by_question.setdefault(_question_of(line["states"][0]), []).append(line)
    for vote in votes:
        found = by_question.get(vote["question"], [])
        if len(found) != 1:
            problems.append("%s: %d vote lines, not 1" % (vote["question"], len(found)))
            continue
        line = found[0]
        answered = [s.get("model_name") for s in line["states"]]
        if [_question_of(s) for s in line["states"]] != [vote["question"]] * 2:
            problems.append("%s: the line's two conversations are not this battle's"
                            % vote["question"])
        if answered != vote["revealed"]:
            problems.append("%s: the page showed %s after the vote, the line has %s"
                            % (vote["question"], vote["revealed"], answered))
        if line.get("login") != login:
            problems.append("%s: login %r, not %r" % (vote["question"], line.get("login"),
                                                      login))
    return problems


def blind_battles_under_load(web_ui, login, read_vote_lines, api=None, api_key=None,
                             ca_file=None, browsers=3, rounds=4, api_clients=12,
                             deadline_s=100):
    """Play blind battles in ``browsers`` pages while ``api_clients`` load ``api``; check
    the screen and the vote log. Returns the report (``confirmed``: the votes checked,
    ``completions``: the API's answers meanwhile); raises AssertionError listing every
    problem. ``web_ui``/``api``: base URLs; ``login``: (user, password);
    ``read_vote_lines``: a callable returning the vote log's vote lines as dicts."""
    tag = uuid.uuid4().hex[:10]
    end = time.monotonic() + deadline_s
    report = {"votes": [], "problems": [], "unanswered": [], "unconfirmed": [],
              "completions": 0, "errors": 0}
    stop, threads = threading.Event(), []
    if api:
        models = _models(api, api_key, ca_file)
        for _ in range(api_clients):
            thread = threading.Thread(target=_api_load, daemon=True,
                                      args=(api, api_key, ca_file, models, stop, report))
            thread.start()
            threads.append(thread)
    try:
        time.sleep(3 if api else 0)  # the load first
        asyncio.run(_browsers(web_ui, login, ca_file, browsers, rounds, tag, end, report))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=65)
    report["problems"] += check_vote_lines(report["votes"], read_vote_lines(), tag, login[0])
    report["confirmed"] = len(report["votes"])
    if report["unconfirmed"]:
        report["problems"].append("votes the page did not confirm (no names after the vote): %s"
                                  % report["unconfirmed"])
    if api and not report["completions"]:
        report["problems"].append("the API answered nothing while the browsers voted")
    assert not report["problems"], "\n".join(report["problems"]) + "\n" + json.dumps(
        {k: v for k, v in report.items() if k != "problems"}, indent=1)[:4000]
    return report
