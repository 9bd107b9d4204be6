"""The dashboard end to end in headless Chromium, over WebDriver.

Run by `cargo xtask dashboard`, which serves the demo's model and starts
chromedriver; this file uses Python's standard library only. Environment:
BECAUSE_BASE (the server), BECAUSE_KEY (its API key), BECAUSE_WEBDRIVER
(chromedriver), BECAUSE_CHROMIUM (the browser), BECAUSE_SHOTS (where
screenshots go), BECAUSE_DEMO (the demo's output folder).
"""

import base64
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request

BASE = os.environ["BECAUSE_BASE"]
KEY = os.environ["BECAUSE_KEY"]
DRIVER = os.environ["BECAUSE_WEBDRIVER"]
SHOTS = os.environ["BECAUSE_SHOTS"]
DEMO = os.environ["BECAUSE_DEMO"]
# A SASRec on the same log: the method picker and the attention view.
SEQUENTIAL = os.environ.get("BECAUSE_BASE_SEQUENTIAL")
# A two-tower model with user and item features: a new user by features.
FEATURED = os.environ.get("BECAUSE_BASE_FEATURED")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def http(method, url, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class Browser:
    def __init__(self):
        for _ in range(100):
            try:
                status, _ = http("GET", f"{DRIVER}/status")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        # A fresh profile, and none of the browser's own background traffic:
        # the page's requests are the only ones.
        self.profile = profile = tempfile.mkdtemp(prefix="because-chromium-")
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                "--window-size=1280,1000", "--lang=en-US"]
        status, v = http("POST", f"{DRIVER}/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": os.environ["BECAUSE_CHROMIUM"], "args": args},
        }}})
        assert status == 200, f"no browser session: {v}"
        self.session = v["value"]["sessionId"]

    def cmd(self, method, path, body=None):
        status, v = http(method, f"{DRIVER}/session/{self.session}{path}", body)
        if status != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {v['value'].get('message', v)}")
        return v["value"]

    def go(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def find(self, css):
        return self.cmd("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.cmd("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text):
        self.cmd("POST", f"/element/{self.find(css)}/value", {"text": text})

    def size(self, width, height):
        self.cmd("POST", "/window/rect", {"width": width, "height": height})

    def shot(self, name):
        # The whole page: the window grown to the document's height.
        rect = self.cmd("GET", "/window/rect")
        height = self.js("return document.documentElement.scrollHeight")
        self.size(rect["width"], min(max(height + 140, rect["height"]), 6000))
        png = base64.b64decode(self.cmd("GET", "/screenshot"))
        self.size(rect["width"], rect["height"])
        with open(os.path.join(SHOTS, f"{name}.png"), "wb") as f:
            f.write(png)

    def wait(self, script, what, timeout=30, *args):
        """Polls `script` (a function body returning a value) until truthy."""
        end = time.time() + timeout
        while time.time() < end:
            v = self.js(script, *args)
            if v:
                return v
            time.sleep(0.1)
        self.shot(f"timeout-{what.replace(' ', '-')}")
        raise AssertionError(f"timed out waiting for {what}")

    def quit(self):
        http("DELETE", f"{DRIVER}/session/{self.session}")
        shutil.rmtree(self.profile, ignore_errors=True)


CARDS = """
return [...document.querySelectorAll('.card')].map(c => ({
  item: c.dataset.item,
  score: Number(c.dataset.score),
  narrative: (c.querySelector('.narrative') || {}).textContent || '',
  weights: [...c.querySelectorAll('.bars li[data-weight]')].map(li => Number(li.dataset.weight)),
  shown_total: Number((c.querySelector('.bars li.total') || {dataset: {}}).dataset.total),
  top: (c.querySelector('.bars li.contrib') || {dataset: {}}).dataset.item,
  counterfactual: (c.querySelector('.counterfactual') || {}).textContent || '',
  chips: c.querySelectorAll('.reasons details').length,
  changed: c.classList.contains('changed'),
}));
"""


def pick_user():
    """A demo user with a real history."""
    with open(os.path.join(DEMO, "models", "recommendations.json")) as f:
        users = list(json.load(f)["users"])
    for user in users[:50]:
        status, h = http("GET", f"{BASE}/v1/users/{user}/history?limit=5")
        if status == 200 and len(h["profile"]) >= 5:
            return user
    raise AssertionError("no demo user with five history items")


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def main():
    user = pick_user()
    b = Browser()
    try:
        run(b, user)
        if SEQUENTIAL:
            run_sequential(b, user)
        if FEATURED:
            run_new_user(b)
    finally:
        b.quit()


def run_new_user(b):
    b.size(1280, 1000)
    b.go(f"{FEATURED}/#/")
    b.wait("return document.querySelectorAll('#new-user input').length > 0", "the new-user form")
    names = b.js("return [...document.querySelectorAll('#new-user input')].map(i => i.name)")
    check("favourite_genre" in names, f"the form asks for the model's user features: {names}")
    b.type("#new-user input[name=favourite_genre]", "Horror")
    b.type("#new-user input[name=country]", "GB")
    b.click("#new-user button")
    b.wait("return document.querySelectorAll('#new-user ~ ol .card .input-shares').length >= 5", "a new user's cards")
    cards = b.js("return [...document.querySelectorAll('#new-user ~ ol .card')].map(c => ({"
                 "score: Number(c.dataset.score), total: Number(c.querySelector('.input-shares').dataset.total),"
                 "inputs: [...c.querySelectorAll('.input-shares td:first-child')].map(t => t.textContent)}))")
    for c in cards:
        check(abs(c["total"] - c["score"]) <= 1e-3 * (1 + abs(c["score"])),
              f"the shares add up to the score: {c['total']} vs {c['score']}")
        check(any("favourite_genre=Horror" in t for t in c["inputs"]), f"the given feature is named: {c['inputs']}")
    b.shot("10-new-user")
    print(f"dashboard (two-tower): ok ({len(cards)} cards for a new user by features)")


def run_sequential(b, user):
    b.size(1280, 1000)
    b.go(f"{SEQUENTIAL}/#/user/{user}")
    b.wait("return document.querySelectorAll('.card .narrative').length >= 5", "SASRec's cards")
    options = b.js("return [...document.querySelectorAll('#explain-method option')].map(o => o.textContent)")
    check(len(options) == 4 and options[0].startswith("occlusion"), f"the method picker lists SASRec's methods: {options}")
    # The attention of the first card's recommendation, opened on demand.
    b.click(".card .attention summary")
    b.wait("return document.querySelectorAll('.card .attention-map .attention-cell').length > 0", "the attention map")
    rows = b.js("return [...document.querySelectorAll('.card .attention-map .attention-row')].map(r => Number(r.dataset.sum))")
    check(len(rows) == 2, f"one row per layer and head, got {len(rows)}")
    check(all(abs(r - 1) < 1e-3 for r in rows), f"each head's attention sums to 1: {rows}")
    heads = b.js("return [...document.querySelectorAll('.card .attention-map thead th[scope=col]')].map(t => t.textContent)")
    check(heads and all(h.strip() for h in heads), f"the history items name the columns: {heads}")
    b.shot("9-attention")
    # Another method, picked: every card says so.
    b.js("const s = document.querySelector('#explain-method'); s.value = 'attention'; s.dispatchEvent(new Event('change'))")
    b.wait("return [...document.querySelectorAll('.card .kind')].length >= 5 && "
           "[...document.querySelectorAll('.card .kind')].every(k => /attention/i.test(k.textContent))",
           "cards explained by attention")
    print(f"dashboard (SASRec): ok (methods {options}; attention {rows})")


def run(b, user):
    # Look a user up, as a person would: the form in the header.
    b.go(f"{BASE}/")
    b.wait("return document.querySelector('#model').textContent.includes('users')", "the model line")
    b.type("#find input[name=user]", user)
    b.click("#find button")
    b.wait("return document.querySelectorAll('.card .narrative').length >= 5", "explanation cards")
    b.wait("return document.querySelector('.heatmap') !== null", "the heat map")
    cards = b.js(CARDS)
    check(len(cards) == 10, f"10 cards, got {len(cards)}")
    for c in cards:
        check(c["narrative"].strip(), f"card {c['item']} has a narrative")
        check(c["weights"], f"card {c['item']} has contribution bars")
        total = sum(c["weights"])
        check(abs(total - c["score"]) <= 1e-3 * (1 + abs(c["score"])),
              f"card {c['item']}: bars add up to {total}, the score shown is {c['score']}")
        check(abs(c["shown_total"] - c["score"]) <= 1e-3 * (1 + abs(c["score"])),
              f"card {c['item']}: the total line says {c['shown_total']}")
        check(c["chips"] >= 1, f"card {c['item']} has reason chips")
    check(any(c["counterfactual"].startswith("Without") for c in cards),
          "a card shows a verified counterfactual")
    # A reason chip opens to its evidence, from the keyboard too.
    b.js("document.querySelector('.card .reasons summary').focus()")
    b.cmd("POST", f"/element/{b.find('.card .reasons summary')}/value", {"text": "\ue007"})
    b.wait("return document.querySelector('.card .reasons details').open", "a chip opened by Enter")
    # Nothing on the page reads "null" or "undefined".
    text = b.js("return document.body.innerText")
    check("null" not in text.split() and "undefined" not in text.split(), "no null or undefined shown")
    b.shot("1-user")

    # What-if: leave out the first card's top contributing history item.
    first = cards[0]
    top = first["top"]
    b.click(f".history li[data-item='{top}'] button.leave-out")
    b.wait("return ((document.querySelector('.mode') || {}).textContent || '').startsWith('What if')", "the what-if list")
    b.wait("return document.querySelectorAll('.card .narrative').length >= 5", "what-if cards")
    after = b.js(CARDS)
    same = next((c for c in after if c["item"] == first["item"]), None)
    check(same is None or abs(same["score"] - first["score"]) > 1e-6,
          "leaving out the top contributor changes the first card's score")
    check(same is None or same["top"] != top, "the left-out item no longer contributes")
    check(any(c["changed"] for c in after) or same is None, "changed cards are marked")
    for c in after:
        total = sum(c["weights"])
        check(abs(total - c["score"]) <= 1e-3 * (1 + abs(c["score"])), "what-if bars add up too")
    b.shot("2-what-if")
    b.click(".whatif-bar button.plain")
    b.wait("return ((document.querySelector('.mode') || {}).textContent || '') === 'As served'", "the list as served")
    b.wait("return document.querySelectorAll('.card .narrative').length >= 5", "the served cards again")
    again = b.js(CARDS)
    check([c["item"] for c in again] == [c["item"] for c in cards], "back to the real history, the same list")

    # Feedback: keep the key, buy the first recommendation, see it leave the list.
    b.click("footer details summary")
    b.type("#key", KEY)
    b.click("#key-form button")
    title = b.js("return document.querySelector('.card .title').textContent")
    b.type(".feedback-item", first["item"])
    b.js("const s = document.querySelector('.feedback select');"
         "s.value = [...s.options].map(o => o.value).pop();")
    b.click(".feedback button")
    b.wait("return document.querySelector('.events-used') !== null", "the folded-in event")
    b.wait("return document.querySelectorAll('.card .narrative').length >= 5", "cards after feedback")
    fed = b.js(CARDS)
    check(first["item"] not in [c["item"] for c in fed], f"{title} left the list once bought")
    b.wait("return document.querySelectorAll('.stored li').length === 1", "the feedback in the history")
    b.shot("3-feedback")

    # An item's page, from a card's title.
    b.click(".card a.title")
    b.wait("return document.querySelectorAll('table tbody tr').length >= 3", "similar items")
    b.wait("return document.querySelector('.reach .stat') !== null", "the reach")
    b.shot("4-item")

    # The model's page: metrics with intervals, fidelity, the global view, the map.
    b.go(f"{BASE}/#/model")
    b.wait("return document.querySelector('svg[aria-label^=\"Deletion test\"]') !== null", "the deletion test", 120)
    b.wait("return document.querySelector('.embedding-map circle') !== null", "the embedding map")
    check(b.js("return document.querySelectorAll('table.metrics tbody tr').length") > 5, "test metrics")
    b.shot("5-model")

    # Live: the event just stored is counted.
    b.go(f"{BASE}/#/live")
    b.wait("return Number((document.querySelector('.events-stored') || {}).textContent) >= 1", "events stored")
    b.wait("return document.querySelectorAll('table.routes tbody tr').length >= 3", "routes")
    b.shot("6-live")

    # Errors read as sentences, never a blank page.
    b.go(f"{BASE}/#/item/no-such-item")
    b.wait("return !document.querySelector('#alert').hidden", "the error message")
    msg = b.js("return document.querySelector('#alert').textContent")
    check("unknown" in msg, f"a readable error, got {msg!r}")
    b.go(f"{BASE}/#/user/nobody-at-all")
    b.wait("return document.querySelector('.note') !== null && document.querySelectorAll('.card').length > 0",
           "the fallback for an unknown user")
    b.shot("7-errors")

    # A phone's width: nothing wider than the screen.
    b.size(390, 844)
    b.go(f"{BASE}/#/user/{user}")
    b.wait("return document.querySelectorAll('.card .narrative').length >= 5", "cards on a phone")
    wide = b.js("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    check(wide <= 1, f"the page is {wide}px wider than a phone's screen")
    b.shot("8-phone")

    # Nothing was loaded from anywhere but this server.
    urls = b.js("return performance.getEntriesByType('resource').map(e => e.name).concat([location.href])")
    foreign = [u for u in urls if not u.startswith(BASE)]
    check(not foreign, f"requests outside the server's origin: {foreign}")
    print(f"dashboard: ok ({len(cards)} cards checked for user {user}; screenshots in {SHOTS})")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"dashboard: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
