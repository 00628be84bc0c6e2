"""Property-based testing for conversions and simulators (hypothesis is needed for ``strategies``).

- ``eventsnn.testing.strategies``: hypothesis strategies for networks, inputs, settings, specs
  with state_dicts; ``dyadic=True`` makes float32 arithmetic exact so spike trains compare with ==.
- ``assert_same_spikes``: two simulations emitted the same spikes (the message names the first
  differing step, layer and neuron).
- ``assert_conversion_bounds``: the conversion theory (Rueckauer et al. 2017) holds in a run.
- ``assert_matches_ann``: spike rates follow the normalized ANN within a tolerance.
- ``compare_with_nir_simulator``: differential testing against another simulator through NIR.

See docs/testing.md for a worked example.
"""

from .checks import assert_conversion_bounds, assert_matches_ann, assert_same_spikes, spike_trains
from .differential import compare_with_nir_simulator, nir_semantics_gaps

__all__ = ["assert_same_spikes", "assert_conversion_bounds", "assert_matches_ann", "spike_trains",
           "compare_with_nir_simulator", "nir_semantics_gaps"]
