#!/usr/bin/env bash
# Install the Fashion-MNIST IDX files from Debian's dataset-fashion-mnist
# package, once. Nothing is ever downloaded at run time; `--data-dir` points
# archc elsewhere if the files live somewhere else.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ] && [ -f "$dir/t10k-labels-idx1-ubyte.gz" ]; then
  exit 0
fi
cmd="apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist"
if [ "$(id -u)" -eq 0 ]; then
  echo "installing Fashion-MNIST (Debian package dataset-fashion-mnist) into $dir"
  DEBIAN_FRONTEND=noninteractive bash -c "$cmd" >/dev/null
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive sudo bash -c "$cmd" >/dev/null
else
  echo "Fashion-MNIST is not installed in $dir. As root, run:" >&2
  echo "  sudo bash -c '$cmd'" >&2
  echo "(tests that need the data set are skipped until then)" >&2
fi
