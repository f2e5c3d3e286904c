#!/usr/bin/env bash
# Run HERE (the development machine, with PyPI access) before a session's device check:
#   bash scripts/device_prepare.sh
# The GPU machine (Python 3.12, torch 2.11, no network) lacks some of the zoo's dependencies and the
# offline test data (Debian packages). This fills two git-ignored folders that travel with the
# device call's `carry`:
#   .whl/      wheels of the missing packages, at the versions pinned in requirements.lock
#   .devdata/  the alsa-utils speech clips and the first 4 mate-backgrounds photos the tests use
# then run on the device:  bash scripts/device_check.sh   (carry: [".whl", ".devdata"])
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for d in /.whl/ /.devdata/; do grep -qxF "$d" "$exclude" 2>/dev/null || echo "$d" >> "$exclude"; done

# packages the device image does not have (its list: /work/.library/device/KINDS.md) and their
# requirements that it does not have either
MISSING="diffusers importlib_metadata lazy-importer vector-quantize-pytorch einx frozendict loguru
torch-einops-utils soundfile cffi pycparser torch_fidelity"
rm -rf .whl && mkdir -p .whl
for name in $MISSING; do
  pin=$(grep -iE "^${name//[-_]/[-_]}==" requirements.lock | head -1)
  [ -n "$pin" ] || { echo "device_prepare: $name is not pinned in requirements.lock" >&2; exit 1; }
  $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$pin"
done

rm -rf .devdata && mkdir -p .devdata/alsa .devdata/mate
cp /usr/share/sounds/alsa/*.wav .devdata/alsa/
ls /usr/share/backgrounds/mate/nature/*.jpg | sort | head -4 | xargs -I{} cp {} .devdata/mate/
du -sh .whl .devdata
echo "device_prepare: ready; device call: command 'bash scripts/device_check.sh', carry ['.whl', '.devdata']"
