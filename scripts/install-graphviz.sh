#!/usr/bin/env bash
# Install Graphviz's `dot` program (Debian package graphviz), once, for
# `archc graph` and its tests. The Python package `graphviz` (in pyproject)
# only drives this program; it does not contain it.
set -euo pipefail
if command -v dot >/dev/null; then
  exit 0
fi
cmd="apt-get update -qq && apt-get install -y -qq graphviz"
if [ "$(id -u)" -eq 0 ]; then
  echo "installing Graphviz (Debian package graphviz) for archc graph"
  DEBIAN_FRONTEND=noninteractive bash -c "$cmd" >/dev/null
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive sudo bash -c "$cmd" >/dev/null
else
  echo "Graphviz's dot is not installed. As root, run:" >&2
  echo "  sudo bash -c '$cmd'" >&2
  echo "(archc graph can still write .dot files; tests that draw SVG are skipped until then)" >&2
fi
