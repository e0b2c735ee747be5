"""The README's screenshot: a real server on the seed corpus answers a real question on the web page.

    python -m bench.screenshot                       # → docs/img/answer.png
    python -m bench.screenshot --question "…" --out /tmp/x.png

Starts `python -m service.server` on a free port with a temporary data directory (a copy of the seed
articles; the first start builds the index) and the prepared models (POLICYQA_MODEL_DIR / POLICYQA_READER_DIR
when set, else index/models/ as the tests use them), asks the question in Debian's headless Chromium
(Playwright; `apt-get install chromium fonts-wqy-microhei`, as .ci/run does), waits for the cited answer,
opens citation [1] so the source with its marked quote is in view, and saves an optimised PNG.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "bench") not in sys.path:  # bench/common.py, imported as the benches do
    sys.path.insert(0, str(REPO / "bench"))

from common import free_port  # noqa: E402

OUT = REPO / "docs" / "img" / "answer.png"
QUESTION = "江门市目前有多少名党员？"
WIDTH, HEIGHT = 1200, 820
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _server_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLICYQA_")}
    models = REPO / "index" / "models"
    env.update({"POLICYQA_DATA_DIR": str(data),
                "POLICYQA_MODEL_DIR": os.environ.get("POLICYQA_MODEL_DIR", str(models / "multilingual-e5-small")),
                "POLICYQA_READER_DIR": os.environ.get("POLICYQA_READER_DIR", str(models / "reader")),
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
    return env


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
    raise SystemExit(f"server not ready after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def _optimised_png(raw: bytes) -> bytes:
    """Palette PNG (256 colours, no dither: flat UI colours and anti-aliased text survive), max compression."""
    from PIL import Image

    image = Image.open(io.BytesIO(raw)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return out.getvalue()


def shoot(url: str, question: str, chromium: str) -> bytes:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": WIDTH, "height": HEIGHT}).new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}/")
            page.locator("#question").fill(question)
            with page.expect_response(lambda r: r.url.endswith("/v1/ask")) as info:
                page.keyboard.press("Enter")
            data = info.value.json()
            if data.get("refused"):
                raise SystemExit(f"the question was refused ({data.get('reason')}): pick another with --question")
            marker = page.locator('#answer .answer-text button.cite-marker[data-n="1"]')
            expect(marker).to_be_visible()
            marker.click()  # the source opens with the quoted characters marked
            expect(page.locator("#source mark.quote")).to_be_visible()
            page.evaluate("window.scrollTo(0, 0)")
            return page.screenshot(full_page=False)
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--question", default=QUESTION)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for the first index build")
    args = ap.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        raise SystemExit("chromium not found: apt-get install -y chromium fonts-wqy-microhei")
    with tempfile.TemporaryDirectory(prefix="policyqa-shot-") as tmp:
        data = Path(tmp)
        log = data / "server.log"
        port = free_port()
        with log.open("wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "service.server", "--host", "127.0.0.1",
                                     "--port", str(port)], cwd=REPO, env=_server_env(data), stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, proc, log, args.timeout)
            png = _optimised_png(shoot(url, args.question, chromium))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)  # the server's own session: it and any rebuild child
            proc.wait(timeout=30)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png)
    print(f"{args.out} {len(png) / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
