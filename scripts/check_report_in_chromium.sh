#!/usr/bin/env bash
# Open a neurodeploy HTML report in headless Chromium and check that it renders its plots.
# Usage: scripts/check_report_in_chromium.sh REPORT.html [SCREENSHOT.png]
# Needs Chromium on PATH (Debian: apt-get install chromium); the report itself needs no network and no script.
#
# Checks: (1) the page loads with no console error and no failed resource; (2) Chromium decoded every
# <img> (a copy of the page with a probe script appended reports how many images have naturalWidth > 0);
# (3) a screenshot is written for a person to look at.
set -euo pipefail
report="$(realpath "$1")"
shot="${2:-/tmp/report.png}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then echo "no Chromium on PATH (Debian: apt-get install chromium)" >&2; exit 2; fi
flags=(--headless --disable-gpu --enable-logging=stderr --v=0 --virtual-time-budget=5000)
[ "$(id -u)" -eq 0 ] && flags+=(--no-sandbox)  # Chromium refuses to run as root with its sandbox
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# (1) load the page as it is
"$browser" "${flags[@]}" --dump-dom "file://$report" > "$work/dom.html" 2> "$work/load.log"
page_errors=$(grep -E "CONSOLE|Uncaught|net::ERR_|Failed to load resource" "$work/load.log" || true)
if [ -n "$page_errors" ]; then echo "the page reported errors:" >&2; echo "$page_errors" >&2; exit 1; fi
images=$(grep -o '<img ' "$work/dom.html" | wc -l)

# (2) count the images Chromium decoded, with a probe appended to a copy of the page
probe='<script>window.addEventListener("load",()=>{const d=[...document.images].filter(i=>i.complete\&\&i.naturalWidth>0);document.body.setAttribute("data-decoded",String(d.length));});</script>'
sed "s#</body>#${probe}</body>#" "$report" > "$work/probe.html"
decoded=$("$browser" "${flags[@]}" --dump-dom "file://$work/probe.html" 2>/dev/null | grep -o 'data-decoded="[0-9]*"' | grep -o '[0-9]*' || echo 0)

# (3) a screenshot
"$browser" "${flags[@]}" --screenshot="$shot" --window-size=1100,3000 "file://$report" 2>/dev/null

echo "images in the page: $images; decoded by Chromium: $decoded; no page errors; screenshot: $shot"
[ "$images" -ge 4 ] && [ "$decoded" -eq "$images" ]
