#!/usr/bin/env bash
# Create (or refresh) a separate virtual environment with the peer ANN-to-SNN converters
# SpikingJelly 2.0 and sinabs 3.1, for benchmarks/peers.py. It is never a dependency of eventsnn.
#
#   bash benchmarks/make_peer_env.sh [VENV_DIR]      # default /work/peer-venv
#
# Order matters: torch 2.13.0 (a CPU build that lies on this machine's disk) goes in first and is
# pinned, so that no peer requirement can pull a multi-GB CUDA build. SpikingJelly 2.0.0 declares
# torchvision and torchaudio (each would drag in another torch), tensorboard, h5py, SciencePlots,
# none of which its ann2snn path imports: it is installed with --no-deps plus what it imports.
# sinabs 3.1.3 declares samna (SynSense's chip SDK, only used by its dynapcnn backend): same
# treatment (sinabs does import matplotlib at import time, so that one is added). Pillow is for
# eventsnn's image-folder loader (CIFAR-10 JPEG archive). Running the script again only checks
# that everything is in place.
set -euo pipefail

VENV=${1:-/work/peer-venv}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TORCH_VERSION=2.13.0
SPIKINGJELLY_VERSION=2.0.0
SINABS_VERSION=3.1.3

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

have() {  # have DIST VERSION: is exactly that version installed?
    [ "$("$PY" -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: print('')" "$1")" = "$2" ]
}

# 1. torch first, exactly this version (pip takes the local CPU wheel).
have torch "$TORCH_VERSION" || "${PIP[@]}" install "torch==$TORCH_VERSION"

# A constraints file that keeps torch where it is for every later install.
CONSTRAINTS="$VENV/peer-constraints.txt"
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"

# 2. The peers, without their declared dependencies, then what their conversion code imports
#    (and Pillow for eventsnn's image-folder loader).
have spikingjelly "$SPIKINGJELLY_VERSION" || "${PIP[@]}" install --no-deps "spikingjelly==$SPIKINGJELLY_VERSION"
have sinabs "$SINABS_VERSION" || "${PIP[@]}" install --no-deps "sinabs==$SINABS_VERSION"
"${PIP[@]}" install -q -c "$CONSTRAINTS" \
    numpy scipy tqdm packaging requests "loguru>=0.7,<1" \
    pbr "nir<=1.0.4" nirtorch matplotlib pillow

# torchvision's model definitions for benchmarks/model_zoo_peers.py: the version that matches torch,
# without its dependencies (they would replace torch).
have torchvision 0.28.0 || "${PIP[@]}" install --no-deps "torchvision==0.28.0"

# 3. eventsnn itself (editable), for its data loaders, with hypothesis for its testing strategies
#    (examples/differential_sinabs.py).
"$PY" -I -c "import eventsnn.loaders, hypothesis" 2>/dev/null || "${PIP[@]}" install -q -c "$CONSTRAINTS" -e "$REPO[testing]"

# 4. Check: the pinned torch survived and both converters import.
"$PY" -I - <<'EOF'
import importlib.metadata as md
import torch
from spikingjelly.activation_based import ann2snn, functional  # noqa: F401
import sinabs, sinabs.from_torch, sinabs.utils  # noqa: F401,E401
from eventsnn.loaders import load_dataset  # noqa: F401
assert torch.__version__.startswith("2.13.0"), torch.__version__
print("peer env ok: torch", torch.__version__, "| spikingjelly", md.version("spikingjelly"),
      "| sinabs", md.version("sinabs"), "| nir", md.version("nir"), "| nirtorch", md.version("nirtorch"))
EOF
