"""A headless Chromium (Debian's, through Playwright) driven from another process, one JSON line a command.

Why a separate process: the test run is monkey-patched by eventlet (the root conftest.py, for nameko),
and Playwright's sync API hangs inside a patched pytest process; a plain Python child is unaffected. The
tests hold a :class:`Browser` whose calls are forwarded here; each answer is one JSON line back.

Run as ``python tests/ui/browser.py``; it is started by :class:`Browser`, not by hand.
"""
import json
import os
import shutil
import subprocess
import sys
import traceback


class Browser:
    """The test side: ``browser.page("ada", locale="nl-NL")`` opens a page; ``page.goto(url)``... forward."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1,
                                        env={**os.environ, "PYTHONWARNINGS": "ignore"})

    def call(self, op, **args):
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the browser process ended")
        answer = json.loads(line)
        if "error" in answer:
            raise AssertionError(f"browser: {op} {args}: {answer['error']}")
        return answer.get("value")

    def page(self, name, locale="en-GB", timezone="UTC", width=1280, height=860):
        self.call("new_page", name=name, locale=locale, timezone=timezone, width=width, height=height)
        return Page(self, name)

    def close(self):
        try:
            self.call("quit")
        finally:
            self.process.wait(timeout=20)


class Page:
    def __init__(self, browser, name):
        self.browser, self.name = browser, name

    def __getattr__(self, op):
        return lambda **args: self.browser.call(op, page=self.name, **args)


# --- the child: runs Playwright ----------------------------------------------------------------------

def serve():
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    pages, contexts = {}, {}
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])

        def run(op, page=None, **args):
            p = pages.get(page)
            if op == "new_page":
                if args["name"] in contexts:  # a page left open keeps its live stream, and a gateway slot
                    contexts.pop(args["name"]).close()
                context = chromium.new_context(locale=args["locale"], timezone_id=args["timezone"],
                                               viewport={"width": args.get("width", 1280),
                                                         "height": args.get("height", 860)})
                context.set_default_timeout(15000)
                contexts[args["name"]], pages[args["name"]] = context, context.new_page()
                return None
            if op == "goto":
                return p.goto(args["url"]).status
            if op == "fill":
                return p.fill(args["selector"], args["value"])
            if op == "click":
                return p.click(args["selector"])
            if op == "press":
                return p.keyboard.press(args["key"])
            if op == "focused":
                return p.evaluate("document.activeElement && (document.activeElement.id || document.activeElement.tagName)")
            if op == "set_files":
                return p.set_input_files(args["selector"], args["paths"])
            if op == "check":
                return p.check(args["selector"])
            if op == "select":
                return p.select_option(args["selector"], args["value"])
            if op == "text":
                return p.inner_text(args["selector"])
            if op == "count":
                return p.locator(args["selector"]).count()
            if op == "wait_for":
                p.wait_for_selector(args["selector"], timeout=args.get("timeout", 15000), state=args.get("state", "visible"))
                return None
            if op == "wait_for_text":
                p.locator(args["selector"], has_text=args["text"]).first.wait_for(timeout=args.get("timeout", 15000))
                return None
            if op == "content":
                return p.content()
            if op == "url":
                return p.url
            if op == "evaluate":
                return p.evaluate(args["expression"])
            if op == "screenshot":
                os.makedirs(os.path.dirname(args["path"]), exist_ok=True)
                p.screenshot(path=args["path"], full_page=args.get("full_page", True))
                return None
            if op == "axe":
                result = Axe().run(p)
                return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                         "nodes": [n["target"] for n in v["nodes"]][:5]} for v in result.response["violations"]]
            raise ValueError(f"unknown op {op}")

        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "quit":
                print(json.dumps({"value": None}), flush=True)
                break
            try:
                value = run(**command)
                print(json.dumps({"value": value}), flush=True)
            except Exception:
                print(json.dumps({"error": traceback.format_exc(limit=3)}), flush=True)
        chromium.close()


if __name__ == "__main__":
    serve()
