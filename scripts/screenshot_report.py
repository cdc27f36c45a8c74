"""Render a hybridrec HTML report in headless Chromium: check it, and take a screenshot.

Checks that, once the page has loaded, every image decoded (``complete`` and a non-zero natural
size), no script error was raised and nothing was fetched over the network (the report must be
self-contained), then saves a full-page PNG of the report for a human to look at.

    python scripts/screenshot_report.py report.html --png report.png
    python scripts/screenshot_report.py --synthetic --png /tmp/report.png   # builds a tiny report

Needs Chromium (Debian: ``apt-get install chromium``; or set ``$CHROMIUM`` to a Chrome binary).
Not part of the test suite because CI has no browser. Exit codes: 0 the report renders cleanly,
1 a check failed, 2 no browser / bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
# Added to a *copy* of the report (the report itself has no script): records what the browser
# saw once everything loaded, where --dump-dom can read it.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => {  // a failed image is counted below, not here
  if (!e.target || !e.target.tagName) window.__errors.push(String(e.message || e.type));
}, true);
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt);
  const fetched = performance.getEntriesByType("resource").map(r => r.name);
  document.body.setAttribute("data-probe", JSON.stringify({
    images: images.length, broken: broken, fetched: fetched, errors: window.__errors,
    height: document.documentElement.scrollHeight,
  }));
});
</script>"""


def find_browser() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def run_browser(browser: str, *args: str, profile: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def probe(browser: str, report: Path, profile: str) -> dict[str, object]:
    """Load an instrumented copy of ``report``; what the page reported once loaded."""
    text = report.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "probe.html"
        copy.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        done = run_browser(
            browser, "--virtual-time-budget=10000", "--dump-dom", copy.as_uri(), profile=profile
        )
    match = re.search(r'data-probe="([^"]*)"', done.stdout)
    if not match:
        raise SystemExit(f"the page did not finish loading:\n{done.stderr[-2000:]}")
    import html

    return dict(json.loads(html.unescape(match.group(1))))


def screenshot(
    browser: str, report: Path, png: Path, width: int, height: int, profile: str
) -> None:
    done = run_browser(
        browser,
        f"--screenshot={png}",
        f"--window-size={width},{height}",
        report.as_uri(),
        profile=profile,
    )
    if not png.is_file():
        raise SystemExit(f"no screenshot written:\n{done.stderr[-2000:]}")


def synthetic_report(folder: Path) -> Path:
    """A small report from synthetic data: an MF and a linear hybrid (a few seconds)."""
    from hybridrec.data import SynthConfig, generate
    from hybridrec.hybrid import HybridRecommender
    from hybridrec.mf import MatrixFactorization
    from hybridrec.report import write_report

    data = generate(SynthConfig(n_users=300, n_items=150, n_ratings=15_000))
    movies = data.movies.assign(genres=data.movies["genres"].str.split("|"))
    mf = MatrixFactorization(num_factors=8).fit(data.ratings, items=movies)
    hybrid = HybridRecommender("linear", mf_params=mf.get_params(), n_folds=2)
    hybrid.fit(data.ratings, None, movies, mf=mf)
    return write_report(
        {"mf": mf, "hybrid_linear": hybrid},
        folder / "report.html",
        ratings=data.ratings,
        title="hybridrec report: synthetic data",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", type=Path, help="the HTML report to render")
    parser.add_argument("--synthetic", action="store_true", help="build a small report first")
    parser.add_argument("--png", type=Path, default=Path("report.png"), help="screenshot file")
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("no Chromium found: apt-get install chromium, or set $CHROMIUM", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            report = synthetic_report(Path(tmp))
        elif args.report is not None and args.report.is_file():
            report = args.report.resolve()
        else:
            parser.print_usage(sys.stderr)
            print("give an existing REPORT.html, or --synthetic", file=sys.stderr)
            return 2
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        try:
            seen = probe(browser, report, profile)
            height = int(str(seen.get("height", 4000))) + 40
            screenshot(browser, report, args.png.resolve(), args.width, height, profile)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
    problems = [
        *(f"image did not render: {alt}" for alt in seen["broken"]),  # type: ignore[attr-defined]
        *(f"fetched from outside the file: {url}" for url in seen["fetched"]),  # type: ignore[attr-defined]
        *(f"script error: {e}" for e in seen["errors"]),  # type: ignore[attr-defined]
    ]
    if seen["images"] == 0:
        problems.append("the report has no images")
    print(f"{report}: {seen['images']} images, page height {seen['height']} px")
    print(f"screenshot: {args.png} ({args.width}×{height})")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if not problems:
        print("OK: every image rendered, no errors, nothing fetched from the network")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
