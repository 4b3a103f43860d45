"""Readers on the real fixtures: ONNX Constant-node weights, BN folding in ONNX Runtime, torch
state dicts (weights_only), safetensors memory maps, npz size checks."""

import os
import pickle
import zipfile
from collections import Counter

import numpy as np
import pytest
from _fixtures import data_file, ocr_model

from qtheory.models import readers

_data, _ocr = data_file, ocr_model


CLS = "ch_ppocr_mobile_v2.0_cls_infer.onnx"
DET = "ch_PP-OCRv4_det_infer.onnx"


def _image_batch(h=48, w=192, n=2):
    skd = pytest.importorskip("skimage.data")
    img = skd.astronaut().astype(np.float32) / 255.0
    crops = [img[100 * i:100 * i + h, 50 * i:50 * i + w].transpose(2, 0, 1) for i in range(n)]
    return ((np.stack(crops) - 0.5) / 0.5).astype(np.float32)


def test_onnx_constant_node_weights():
    onnx = pytest.importorskip("onnx")
    path = _ocr(DET)
    m = onnx.load(str(path))
    assert len(m.graph.initializer) == 0  # PP-OCRv4: every weight is a Constant node
    ops = Counter(n.op_type for n in m.graph.node)
    ts = readers.read_onnx(path)
    convs = [t for t in ts if t.role == "conv_weight"]
    assert len(convs) == ops["Conv"] + ops["ConvTranspose"] == 64
    groups = {n.input[1]: next((a.i for a in n.attribute if a.name == "group"), 1)
              for n in m.graph.node if n.op_type == "Conv"}
    for t in convs:
        if t.depthwise:
            assert t.shape[1] == 1 and groups[t.name] == t.shape[0] > 1
    # the values are the Constant nodes' tensors
    const = {n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t) for n in m.graph.node if n.op_type == "Constant"}
    for t in convs[:5]:
        np.testing.assert_array_equal(t.array(), const[t.name])


def test_fold_batchnorm_matches_conv_then_bn_in_onnxruntime():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = _ocr(CLS)
    m = onnx.load(str(path))
    n_bn = sum(n.op_type == "BatchNormalization" for n in m.graph.node)
    folded = readers.fold_batchnorm(m)
    assert n_bn == 35
    assert sum(n.op_type == "BatchNormalization" for n in folded.graph.node) == 0
    # every BN output is now written by a Conv: compare all of them and the logits
    bn_outs = [n.output[0] for n in m.graph.node if n.op_type == "BatchNormalization"]
    outs = {}
    for name, model in (("ref", m), ("folded", folded)):
        mm = onnx.ModelProto()
        mm.CopyFrom(model)
        for o in bn_outs:
            mm.graph.output.append(onnx.ValueInfoProto(name=o))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(mm.SerializeToString(), so, providers=["CPUExecutionProvider"])
        outs[name] = sess.run(None, {"x": _image_batch()})
    for a, b in zip(outs["ref"], outs["folded"], strict=True):
        scale = float(np.max(np.abs(a)))
        # float32 conv + BN vs conv with folded weights: rounding of a few hundred-term sums
        np.testing.assert_allclose(b, a, rtol=0, atol=2e-5 * scale + 1e-7)
    ts = readers.read_onnx(path, fold_bn=True)
    assert sum(t.folded and t.role == "conv_weight" for t in ts) == 35
    assert not any(t.role == "norm" for t in ts)


def test_torch_module_roles():
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 8, 3, groups=8),
                              torch.nn.ConvTranspose2d(8, 4, 2), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    info = {t.name: (t.role, t.channel_axis, t.depthwise) for t in readers.read_torch(net)}
    assert info["0.weight"] == ("conv_weight", 0, False)
    assert info["1.weight"][0] == "norm"
    assert info["2.weight"] == ("conv_weight", 0, True)
    assert info["3.weight"] == ("conv_weight", 1, False)
    assert info["5.weight"] == ("linear_weight", 0, False)
    assert info["5.bias"][0] == "bias"


def test_pt_state_dict_weights_only(tmp_path):
    torch = pytest.importorskip("torch")
    path = _data("facenet_pytorch", "data", "onet.pt")
    sd = torch.load(path, weights_only=True)
    ts = readers.read_tensors(path)
    assert [t.name for t in ts] == list(sd)
    for t in ts:
        np.testing.assert_array_equal(t.array(), sd[t.name].numpy())
    roles = Counter(t.role for t in ts)
    assert roles["conv_weight"] == sum(v.ndim == 4 for v in sd.values())
    # a checkpoint that would run code when unpickled is refused, not executed
    bad = tmp_path / "evil.pt"

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(bad, "wb") as fh:
        pickle.dump({"w": Evil()}, fh)
    with pytest.raises(ValueError, match="weights_only=True"):
        readers.read_tensors(bad)


def test_safetensors_memory_mapped_and_equal_to_safe_open():
    st = pytest.importorskip("safetensors")
    path = _data("silero_vad", "data", "silero_vad_16k.safetensors")
    ts = readers.read_tensors(path)
    with st.safe_open(str(path), framework="numpy") as f:
        keys = sorted(f.keys())
        assert [t.name for t in ts] == keys
        for t in ts:
            arr = t.array()
            assert isinstance(arr, np.memmap)  # no copy of the checkpoint
            np.testing.assert_array_equal(arr, f.get_tensor(t.name))
    assert Counter(t.role for t in ts)["conv_weight"] == 6


def test_npz_several_arrays_memmap_and_compressed(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"conv.weight": rng.normal(size=(8, 4, 3, 3)).astype(np.float32), "fc.weight": rng.normal(size=(5, 7)),
              "fc.bias": rng.normal(size=5)}
    f1, f2 = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(f1, **arrays)
    np.savez_compressed(f2, **arrays)
    for f, mapped in ((f1, True), (f2, False)):
        ts = readers.read_npz(f)
        assert {t.name for t in ts} == set(arrays)
        for t in ts:
            a = t.array()
            assert isinstance(a, np.memmap) == mapped
            np.testing.assert_array_equal(a, arrays[t.name])
        assert {t.name: t.role for t in ts} == {"conv.weight": "conv_weight", "fc.weight": "linear_weight",
                                                "fc.bias": "bias"}


def test_npz_refuses_bombs_before_decompressing(tmp_path):
    f = tmp_path / "zeros.npz"
    np.savez_compressed(f, z=np.zeros(1 << 20))  # 8 MB of zeros deflate ~1000:1
    with pytest.raises(ValueError, match="zip bomb"):
        readers.read_npz(f, max_ratio=100.0)
    with pytest.raises(ValueError, match="at most 1000 bytes"):
        readers.read_npz(f, max_bytes=1000)
    # a header that declares more data than the member holds
    g = tmp_path / "lie.npz"
    hdr = b"\x93NUMPY\x01\x00" + b"v\x00"
    body = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    body = body.ljust(118 - 10) + "\n"
    hdr = b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode()
    with zipfile.ZipFile(g, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("w.npy", hdr + b"\x00" * 64)
    with pytest.raises(ValueError, match="declaring"):
        readers.read_npz(g)


def test_read_tensors_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="'source' parameter"):
        readers.read_tensors(tmp_path / "none.safetensors")
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="readable ONNX file"):
        readers.read_tensors(bad)
    with pytest.raises(ValueError, match="must be a file ending in"):
        readers.read_tensors(tmp_path / "model.txt")
    with pytest.raises(TypeError, match="'source' parameter of read_tensors"):
        readers.read_tensors(3.0)
