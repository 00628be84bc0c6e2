"""The IR written as ONNX (``save_onnx``): read back by ``load_onnx`` and run by onnxruntime as the ANN."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from eventsnn import ann
from eventsnn.ir import Add
from eventsnn.loaders import load_onnx
from eventsnn.testing import strategies as es

pytest.importorskip("onnx")



@settings(max_examples=40, deadline=None)
@given(net=es.networks(dyadic=False, activations=es.ACTIVATION_KINDS) | es.concat_networks(dyadic=False)
       | es.shuffle_networks(dyadic=False)
       | es.batchnorm_networks(), data=st.data())
def test_written_onnx_reads_back_as_the_same_function(tmp_path_factory, net, data):
    """save_onnx writes what load_onnx reads: every layer kind, grouped convs, pool options,
    weighted residual adds, concats and batch-norm."""
    from eventsnn.loaders import save_onnx

    assume(not any(isinstance(layer, Add) and any(np.ndim(w) for w in layer.input_weights(2)) for layer in net.layers))
    path = tmp_path_factory.mktemp("onnx") / "net.onnx"
    try:
        save_onnx(net, path)
    except ValueError as err:  # the one pooling ONNX cannot say
        assert "ceil_mode" in str(err)
        assume(False)
    back = load_onnx(path)
    x = data.draw(es.inputs(net, 1, 4, dyadic=False))
    expected = ann.forward(net, x)
    np.testing.assert_allclose(ann.forward(back, x), expected, rtol=1e-4, atol=1e-4 * (np.abs(expected).max() + 1e-6))


def test_written_onnx_runs_in_onnxruntime_as_the_ann():
    import onnxruntime as ort  # the test extra has it: the benchmarks compare against it
    from eventsnn.loaders import to_onnx

    for net in es.fixed_sample(es.networks(dyadic=False, activations=es.ACTIVATION_KINDS), 20):
        try:
            model = to_onnx(net)
        except ValueError:  # a ceil-mode window ONNX would keep
            continue
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).random((3,) + net.input_shape, dtype=np.float32)
        expected = ann.forward(net, x)
        np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, rtol=1e-4,
                                   atol=1e-4 * (np.abs(expected).max() + 1e-6))


def test_the_command_line_exports_a_models_ann(tmp_path, demo, capsys):
    from eventsnn.cli import main
    from eventsnn.model import save

    save(demo.model, tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "ann.onnx")]) == 0
    assert "exported the ANN" in capsys.readouterr().out
    np.testing.assert_allclose(ann.forward(load_onnx(tmp_path / "ann.onnx"), demo.x[:20]),
                               ann.forward(demo.model.ann, demo.x[:20]), rtol=1e-5, atol=1e-5)
