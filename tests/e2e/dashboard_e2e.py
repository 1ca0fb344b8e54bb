#!/usr/bin/env python3
"""End-to-end test of the dashboard in a real browser (headless Debian Chromium + Selenium).

Starts the real cortex-connectors-server on a free port with a copy of the example manifest,
opens /apps/chatgpt-dashboard/, checks that the page asks for the API key, enters it with the
keyboard, checks that the example connectors are listed, rewrites the manifest and checks that
the row changes without a page reload (and that the live region announces it), then checks the
NO_AUTH=true case. Saves screenshots under --artifacts.

usage: dashboard_e2e.py --server BIN --manifest EXAMPLE.json --artifacts DIR
Needs the Debian packages chromium, chromium-driver and python3-selenium
(scripts/install-deps.sh). Every process it starts is stopped on exit.
"""

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    sys.exit("dashboard_e2e: python3-selenium is missing; run scripts/install-deps.sh")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20  # seconds for any one expected change


class Server:
    """The real server binary on 127.0.0.1, port 0; the port is read from its log."""

    def __init__(self, binary, manifest, workdir, extra_env):
        self.log_path = os.path.join(workdir, f"server-{secrets.token_hex(4)}.log")
        self.log = open(self.log_path, "wb")
        env = {
            "PATH": "/usr/bin:/bin",
            "CONNECTORS_SIGNATURE_KEY": "e2e-signing-key-" + secrets.token_hex(8),
            "CONNECTORS_MANIFEST_PATH": manifest,
            "CONNECTORS_POLL_INTERVAL_MS": "100",
            "LOG_LEVEL": "info",
        }
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        env.update(extra_env)
        self.proc = subprocess.Popen([binary, "--port", "0"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not self.port:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.read_log()}")
            for line in self.read_log().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("msg") == "listening":
                    self.port = int(entry["port"])
            time.sleep(0.05)
        if not self.port:
            raise RuntimeError("server never logged its port")
        self.base = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: self.status("/ready") == 200, "the server to be ready")

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def status(self, path):
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_for(condition, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - the page may be mid-update
            last_error = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}" + (f" ({last_error})" if last_error else ""))


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def browser(artifacts):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,900", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--lang=en-US",
                f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-', dir=artifacts)}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def rows(driver):
    return {
        tr.get_attribute("data-id"): tr
        for tr in driver.find_elements(By.CSS_SELECTOR, "#connectors tbody tr[data-id]")
    }


def cell_text(tr, index):
    return tr.find_elements(By.CSS_SELECTOR, "th, td")[index].text.strip()


def write_atomically(path, document):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2)
    os.replace(tmp, path)


def run_with_key(args, workdir):
    manifest_path = os.path.join(workdir, "connectors.manifest.json")
    shutil.copyfile(args.manifest, manifest_path)
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    expected_ids = sorted(c["id"] for c in manifest["connectors"])
    api_key = "e2e-api-key-" + secrets.token_hex(8)
    server = Server(args.server, manifest_path, workdir, {"CONNECTORS_API_KEY": api_key})
    driver = None
    try:
        driver = browser(workdir)
        url = server.base + "/apps/chatgpt-dashboard/"
        driver.get(url)

        # Without a key the stream answers 401 and the page says so, in words.
        state = driver.find_element(By.ID, "connection")
        wait_for(lambda: state.get_attribute("data-state") == "unauthorized", "the key prompt")
        check("API key required" in state.text, f"connection state says {state.text!r}")

        # The key, typed and submitted with the keyboard.
        key_input = driver.find_element(By.ID, "api-key")
        label = driver.find_element(By.CSS_SELECTOR, "label[for='api-key']")
        check(label.text.strip() == "API key", "the key field is labelled")
        key_input.send_keys(api_key)
        key_input.send_keys(Keys.ENTER)

        wait_for(lambda: sorted(rows(driver)) == expected_ids, f"rows {expected_ids}")
        wait_for(lambda: state.get_attribute("data-state") == "live", "the live state")
        check(state.text.strip().endswith("Live"), f"connection state says {state.text!r}")
        check(api_key not in driver.current_url, "the key never goes into the URL")
        stored = driver.execute_script(
            "return sessionStorage.getItem('cortex-connectors.api-key')")
        check(stored == api_key, "the key is kept in sessionStorage")
        check(driver.execute_script("return localStorage.length") == 0, "nothing in localStorage")

        first = manifest["connectors"][0]
        tr = rows(driver)[first["id"]]
        check(cell_text(tr, 1) == first.get("displayName", first["name"]), "display name shown")
        check(cell_text(tr, 2) == "✓ Yes", f"enabled shown as {cell_text(tr, 2)!r}")
        for scope in first["scopes"]:
            check(scope in cell_text(tr, 3), f"scope {scope} shown")
        version_before = driver.find_element(By.ID, "version").text
        check(version_before not in ("", "—"), "the snapshot version is shown")

        # The TTL counts down live.
        ttl_before = cell_text(tr, 5)
        wait_for(lambda: cell_text(rows(driver)[first["id"]], 5) != ttl_before,
                 "the TTL countdown to move", timeout=5)
        check(cell_text(rows(driver)[first["id"]], 5).endswith("left"), "TTL shows time left")

        driver.save_screenshot(os.path.join(args.artifacts, "dashboard-before.png"))

        # Rewrite the manifest: the row must change in place, without a reload.
        driver.execute_script("window.__e2eMarker = 'same page';")
        first["displayName"] = "Perplexity Search (edited by the e2e test)"
        first["enabled"] = False
        first.setdefault("tags", []).append("e2e-edited")
        write_atomically(manifest_path, manifest)

        wait_for(lambda: cell_text(rows(driver)[first["id"]], 1) == first["displayName"],
                 "the edited display name")
        tr = rows(driver)[first["id"]]
        check(cell_text(tr, 2) == "✕ No", f"disabled shown as {cell_text(tr, 2)!r}")
        check("e2e-edited" in cell_text(tr, 6), "the new tag is shown")
        check(driver.execute_script("return window.__e2eMarker") == "same page",
              "the page was not reloaded")
        version_after = driver.find_element(By.ID, "version").text
        check(version_after != version_before, "the snapshot version changed")
        announcer = driver.find_element(By.ID, "announcer")
        check(announcer.get_attribute("aria-live") == "polite", "the live region is polite")
        wait_for(lambda: f"changed {first['id']}" in announcer.get_attribute("textContent"),
                 "the change to be announced")
        check(sorted(rows(driver)) == expected_ids, "the other rows are still there")

        driver.save_screenshot(os.path.join(args.artifacts, "dashboard.png"))
        print(f"dashboard_e2e: with a key: {len(expected_ids)} connectors, version "
              f"{version_before} -> {version_after}, row updated live")
    except Exception:
        if driver is not None:
            driver.save_screenshot(os.path.join(args.artifacts, "dashboard-failure.png"))
        print(server.read_log()[-4000:], file=sys.stderr)
        raise
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


def run_without_auth(args, workdir):
    manifest_path = os.path.join(workdir, "no-auth.manifest.json")
    shutil.copyfile(args.manifest, manifest_path)
    with open(manifest_path, encoding="utf-8") as f:
        expected_ids = sorted(c["id"] for c in json.load(f)["connectors"])
    server = Server(args.server, manifest_path, workdir, {"NO_AUTH": "true"})
    driver = None
    try:
        driver = browser(workdir)
        driver.get(server.base + "/apps/chatgpt-dashboard/")
        wait_for(lambda: sorted(rows(driver)) == expected_ids, "rows without a key")
        state = driver.find_element(By.ID, "connection")
        wait_for(lambda: state.get_attribute("data-state") == "live", "the live state")
        driver.save_screenshot(os.path.join(args.artifacts, "dashboard-no-auth.png"))
        print("dashboard_e2e: NO_AUTH=true: listed without a key")
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--artifacts", required=True)
    args = parser.parse_args()
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            sys.exit(f"dashboard_e2e: {tool} is missing; run scripts/install-deps.sh")
    os.makedirs(args.artifacts, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="dashboard-e2e-")
    try:
        run_with_key(args, workdir)
        run_without_auth(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"dashboard_e2e: passed; screenshots in {args.artifacts}")


if __name__ == "__main__":
    main()
