"""Reading checkpoints without torch: the restricted unpickler, refusals, truncation."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from eventsnn import ann
from eventsnn.loaders import CheckpointError, load_checkpoint, load_network
from eventsnn.spec import SpecError, network_from_spec


def test_shipped_checkpoint_reads_without_torch(demo_files, demo):
    params = load_checkpoint(demo_files["mnist_cnn.pt"])
    assert params["conv1.weight"].shape == (16, 1, 3, 3) and params["conv1.weight"].dtype == np.float32
    assert params["bn1.num_batches_tracked"].dtype == np.int64
    assert ann.accuracy(demo.net, demo.x, demo.y) > 0.97  # the weights are the trained ones


def test_same_arrays_as_torch_load(demo_files):
    torch = pytest.importorskip("torch")
    expected = torch.load(demo_files["mnist_cnn.pt"], weights_only=True)
    got = load_checkpoint(demo_files["mnist_cnn.pt"])
    assert set(got) == set(expected)
    for key, tensor in expected.items():
        np.testing.assert_array_equal(got[key], tensor.numpy())


def test_noncontiguous_and_shared_storages_match_torch(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    state = {"t": base.t(), "slice": base[1:3, ::2], "half": torch.ones(3, dtype=torch.float16),
             "bf16": torch.tensor([1.5, -2.0], dtype=torch.bfloat16), "flag": torch.tensor([True, False])}
    path = tmp_path / "odd.pt"
    torch.save(state, path)
    got = load_checkpoint(path)
    for key, tensor in state.items():
        np.testing.assert_array_equal(got[key], tensor.float().numpy() if key == "bf16" else tensor.numpy())


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


def _zip_with_pickle(path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")


def test_malicious_pickle_is_refused_and_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    _zip_with_pickle(path, pickle.dumps({"w": _Exploit()}, protocol=2))
    with pytest.raises(CheckpointError, match="system"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_truncated_checkpoint_is_refused(tmp_path, demo_files):
    raw = demo_files["mnist_cnn.pt"].read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_short_storage_is_refused(tmp_path, demo_files):
    path = tmp_path / "short.pt"
    with zipfile.ZipFile(demo_files["mnist_cnn.pt"]) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info.filename, data[:-8] if "/data/" in info.filename and len(data) > 8 else data)
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_non_zip_and_missing_files(tmp_path):
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="legacy"):
        load_checkpoint(legacy)
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "absent.pt")


def test_npz_checkpoint_and_spec_errors(tmp_path):
    spec = {"input_shape": [4], "layers": [{"type": "linear", "name": "fc", "out_features": 3}, {"type": "softmax"}]}
    path = tmp_path / "w.npz"
    np.savez(path, **{"fc.weight": np.ones((3, 4)), "fc.bias": np.zeros(3)})
    (tmp_path / "arch.json").write_text(json.dumps(spec))
    net = load_network(path, tmp_path / "arch.json")
    assert net.output_shape == (3,)
    with pytest.raises(SpecError, match="missing"):
        network_from_spec(spec, {"fc.bias": np.zeros(3)})
    with pytest.raises(SpecError, match="shape"):
        network_from_spec(spec, {"fc.weight": np.ones((3, 4)), "fc.bias": np.zeros(4)})
    with pytest.raises(SpecError, match="NaN"):
        network_from_spec(spec, {"fc.weight": np.full((3, 4), np.nan)})
    with pytest.raises(SpecError, match="unsupported type 'lstm'"):
        network_from_spec({"input_shape": [4], "layers": [{"type": "lstm"}]}, {})
    # layers count from 1, as a person reading the file counts
    with pytest.raises(SpecError, match=r"^layer 2 \(linear\): "):
        network_from_spec({"input_shape": [4], "layers": [{"type": "relu"}, {"type": "linear"}]}, {})
    with pytest.raises(SpecError, match=r"^layer 1 \('fc'\): inputs \['x'\] are not earlier"):
        network_from_spec({"input_shape": [4], "layers": [{**spec["layers"][0], "inputs": ["x"]}]},
                          {"fc.weight": np.ones((3, 4))})
    with pytest.raises(SpecError, match=r"expects \(4,\) input, found \(5,\)"):
        network_from_spec({"input_shape": [5], "layers": spec["layers"]}, {"fc.weight": np.ones((3, 4))})


def test_spec_errors_point_at_what_to_fix(tmp_path, capsys):
    """A misnamed layer lists the checkpoint's nearest keys; arrays no layer reads are named in a
    warning (one line on the command line); a weight of the wrong width does not blame a flatten
    that is there; malformed fields are SpecErrors, not crashes."""
    from eventsnn.cli import main

    spec = {"input_shape": [1, 2, 2], "layers": [{"type": "flatten"}, {"type": "linear", "name": "fc", "out_features": 3}]}
    params = {"classifier.weight": np.ones((3, 4)), "classifier.bias": np.zeros(3)}
    with pytest.raises(SpecError, match="similar keys there: classifier.weight"):
        network_from_spec({**spec, "layers": spec["layers"]}, params)
    with pytest.warns(UserWarning, match=r"1 arrays of the checkpoint are not used by the spec: extra\.weight"):
        network_from_spec(spec, {"fc.weight": np.ones((3, 4)), "extra.weight": np.ones(2), "bn.num_batches_tracked": 0})
    with pytest.raises(SpecError, match="expects \\(5,\\) input, found \\(4,\\)") as info:
        network_from_spec(spec, {"fc.weight": np.ones((3, 5))})
    assert "flatten layer may be missing" not in str(info.value)
    bad_fields = [{"type": "linear", "name": "fc", "weight_shape": 1}, {"type": "batchnorm", "name": "fc", "eps": [1]},
                  {"type": "clip_relu", "threshold": None}, {"type": "relu", "name": ["a"]}]
    for entry in bad_fields:
        with pytest.raises(SpecError):
            network_from_spec({"input_shape": [4], "layers": [entry]}, {"fc.weight": np.ones((3, 4, 1)),
                                                                       "fc.running_mean": np.zeros(4),
                                                                       "fc.running_var": np.ones(4)})
    np.savez(tmp_path / "w.npz", **{"fc.weight": np.ones((3, 4)), "unused.weight": np.ones(2)})
    (tmp_path / "arch.json").write_text(json.dumps(spec))
    np.savez(tmp_path / "calib.npz", x=np.ones((4, 1, 2, 2), np.float32), y=np.zeros(4, np.int64))
    assert main(["convert", str(tmp_path / "w.npz"), "--arch", str(tmp_path / "arch.json"), "--calib",
                 str(tmp_path / "calib.npz"), "-o", str(tmp_path / "m.npz")]) == 0
    err = capsys.readouterr().err
    assert "eventsnn convert: warning: 1 arrays of the checkpoint are not used by the spec: unused.weight" in err
    assert "UserWarning" not in err


def test_every_layer_kind_round_trips_through_a_spec():
    """Every IR layer class declares its spec type and the spec reads and writes it (a new layer
    kind without a spec format fails here)."""
    from eventsnn import ir
    from eventsnn.spec import LAYER_TYPES, network_to_spec

    rng = np.random.default_rng(0)

    def w(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    layers = (ir.Conv2d(w(2, 1, 3, 3), w(2), 1, 1, "conv", groups=2),
              ir.BatchNorm(w(2), w(2), w(2), np.ones(2), 1e-3, "bn"), ir.ReLU("relu"),
              ir.MaxPool2d(2, 2, "max", padding=1, ceil_mode=True, dilation=1), ir.ClipReLU(2.0, "clip"),
              ir.Add("add", (1.0, (0.5, 2.0))), ir.QCFS(4, 1.5, "q"), ir.Concat("cat"),
              ir.Channels(np.array([3, 0, 1, 2]), "shuffle"), ir.AvgPool2d(2, 1, "avg", padding=1, ceil_mode=True, count_include_pad=False), ir.Flatten("flat"),
              ir.Linear(w(3, 64), w(3), "fc"), ir.Softmax("soft"))
    inputs = ((-1,), (0,), (1,), (2,), (3,), (4, 3), (5,), (6, 3), (7,), (8,), (9,), (10,), (11,))
    net = ir.Network((2, 4, 4), layers, inputs)
    assert {type(layer) for layer in layers} == set(ir.LAYER_CLASSES)
    spec, params = network_to_spec(net)
    assert [entry["type"] for entry in spec["layers"]] == [layer.spec_type for layer in layers]
    assert sorted(LAYER_TYPES) == sorted(entry["type"] for entry in spec["layers"])
    back = network_from_spec(json.loads(json.dumps(spec)), params)
    assert network_to_spec(back)[0] == spec and back.inputs == net.inputs
    assert spec["layers"][0]["groups"] == 2 and spec["layers"][9]["count_include_pad"] is False
    x = rng.random((2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(ann.forward(back, x), ann.forward(net, x))


def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


@pytest.mark.parametrize("target", [b"ctorch\nFloatStorage\n", b"ctorch._utils\n_rebuild_tensor_v2\n",
                                    b"ctorch\nTensor\n"])
def test_a_refused_checkpoint_cannot_change_how_later_ones_are_read(tmp_path, demo_files, target):
    """Regression: a pickle that sets attributes on what it may name (here: FloatStorage's dtype to
    int32, the rebuild function's defaults, the tensor stand-in) is refused, and every later load in
    the same process decodes float weights as floats."""
    slot_state = b"N}(" + _unicode("__defaults__" if b"rebuild" in target else "dtype") + _unicode("<i4") + b"u\x86"
    payload = b"\x80\x02" + target + slot_state + b"b."
    _zip_with_pickle(tmp_path / "evil.pt", payload)
    try:
        load_checkpoint(tmp_path / "evil.pt")
    except CheckpointError:
        pass  # refused, or accepted as a non-dict: either way it must leave nothing behind
    params = load_checkpoint(demo_files["mnist_cnn.pt"])
    assert params["conv1.weight"].dtype == np.float32 and np.abs(params["conv1.weight"]).max() < 10


def test_a_truncated_checkpoint_is_called_truncated_not_legacy(tmp_path, demo_files):
    """Regression: a truncated .pt was reported as a legacy (pre-1.6) file."""
    raw = demo_files["mnist_cnn.pt"].read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[:len(raw) // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(tmp_path / "cut.pt")
