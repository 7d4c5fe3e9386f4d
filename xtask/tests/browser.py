"""Opens an HTML report in headless Chromium and says what the page did (tests/html.rs).

Usage: python browser.py CHROMIUM REPORT.html SCREENSHOT.png

Talks the Chrome DevTools Protocol over --remote-debugging-pipe (file descriptors 3 and 4,
JSON messages ending in NUL), so nothing but the standard library is needed. Prints one JSON
object: every request the page made, every console message, exception and log entry (a CSP
violation is one), and what the rendered DOM shows; writes a full-page screenshot.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time

chromium, report, screenshot = sys.argv[1:4]
url = "file://" + os.path.abspath(report)

to_browser_r, to_browser_w = os.pipe()
from_browser_r, from_browser_w = os.pipe()


def child_fds():
    # Through fresh descriptors, so that a pipe already at 3 or 4 is not overwritten
    # first; dup2 leaves its copies open across exec.
    reading, writing = os.dup(to_browser_r), os.dup(from_browser_w)
    os.dup2(reading, 3)
    os.dup2(writing, 4)


profile = tempfile.mkdtemp(prefix="xtask-html-chromium-")
browser = subprocess.Popen(
    [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-pipe",
        "--user-data-dir=" + profile,
        "--window-size=1280,1024",
        "about:blank",
    ],
    preexec_fn=child_fds,
    # The pipes become fds 3 and 4 in preexec_fn; closing fds would come after it.
    close_fds=False,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
os.close(to_browser_r)
os.close(from_browser_w)
out = os.fdopen(to_browser_w, "wb", buffering=0)
inp = os.fdopen(from_browser_r, "rb", buffering=0)

buffer = b""
events = []
next_id = 0
DEADLINE = time.monotonic() + 60


def read_message():
    global buffer
    while b"\0" not in buffer:
        if time.monotonic() > DEADLINE:
            raise SystemExit("Chromium did not answer within 60 s")
        chunk = inp.read(65536)
        if not chunk:
            raise SystemExit("Chromium closed its pipe")
        buffer += chunk
    message, buffer = buffer.split(b"\0", 1)
    return json.loads(message)


def send(method, params=None, session=None):
    global next_id
    next_id += 1
    message = {"id": next_id, "method": method, "params": params or {}}
    if session:
        message["sessionId"] = session
    out.write(json.dumps(message).encode() + b"\0")
    while True:
        reply = read_message()
        if reply.get("id") == next_id:
            if "error" in reply:
                raise SystemExit(f"{method}: {reply['error']}")
            return reply["result"]
        events.append(reply)


def wait_for(method):
    for event in events:
        if event.get("method") == method:
            return
    while True:
        event = read_message()
        events.append(event)
        if event.get("method") == method:
            return


try:
    targets = send("Target.getTargets")["targetInfos"]
    page = next(t for t in targets if t["type"] == "page")
    session = send(
        "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
    )["sessionId"]
    for domain in ("Network", "Runtime", "Log", "Page"):
        send(domain + ".enable", session=session)
    events.clear()
    send("Page.navigate", {"url": url}, session=session)
    wait_for("Page.loadEventFired")
    # Whatever the page might still start after its load event.
    time.sleep(0.5)
    dom = send(
        "Runtime.evaluate",
        {
            "expression": """JSON.stringify({
  title: document.title,
  counts: Object.fromEntries([...document.querySelectorAll('[id^="count-"]')]
    .map(e => [e.id.slice(6), e.textContent])),
  outcome: document.getElementById('outcome')?.textContent,
  commit: document.getElementById('commit')?.textContent,
  suite_bars: [...document.querySelectorAll('#timeline-chart g.suite-bar')]
    .map(g => g.getAttribute('data-suite')),
  test_bars: document.querySelectorAll('#timeline-chart rect.test').length,
  failures: [...document.querySelectorAll('.failure-item')].map(e => e.innerText),
  flaky: [...document.querySelectorAll('.flaky-test')].map(e => e.innerText),
  scripts: document.scripts.length,
  text: document.body.innerText,
  html_length: document.documentElement.outerHTML.length,
})""",
            "returnByValue": True,
        },
        session=session,
    )["result"]["value"]
    shot = send(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True},
        session=session,
    )
    with open(screenshot, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    time.sleep(0.2)
    # Drain what arrived meanwhile.
    send("Runtime.evaluate", {"expression": "1"}, session=session)
finally:
    try:
        out.write(json.dumps({"id": 10**6, "method": "Browser.close"}).encode() + b"\0")
    except OSError:
        pass
    try:
        browser.wait(timeout=10)
    except subprocess.TimeoutExpired:
        browser.kill()
        browser.wait()

requests = [
    e["params"]["request"]["url"]
    for e in events
    if e.get("method") == "Network.requestWillBeSent"
]
console = [
    e["params"]
    for e in events
    if e.get("method") in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown")
]
log = [e["params"]["entry"] for e in events if e.get("method") == "Log.entryAdded"]
print(
    json.dumps(
        {
            "url": url,
            "requests": requests,
            "console": console,
            "log": log,
            "dom": json.loads(dom),
        }
    )
)
