#!/usr/bin/env bash
# Open a neurodeploy HTML report in headless Chromium and check that it renders its plots.
# Usage: scripts/check_report_in_chromium.sh REPORT.html
# Needs chromium (or google-chrome) on PATH; the report itself needs no network and no script.
set -euo pipefail
report="$(realpath "$1")"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then echo "no Chromium on PATH" >&2; exit 2; fi
dom="$("$browser" --headless --disable-gpu --dump-dom "file://$report" 2>/tmp/chromium.log)"
images=$(grep -o '<img alt="plot" src="data:image/png' <<<"$dom" | wc -l)
"$browser" --headless --disable-gpu --screenshot=/tmp/report.png --window-size=1100,3000 "file://$report" 2>>/tmp/chromium.log
if grep -i "error" /tmp/chromium.log | grep -vqi "gpu"; then echo "Chromium reported errors: see /tmp/chromium.log" >&2; exit 1; fi
echo "images in the rendered DOM: $images (expected 4); screenshot: /tmp/report.png"
[ "$images" -eq 4 ]
