"""Repro-local plumbing for the real-network checks: fixtures, images, ONNX surgery, QDQ graphs.

This module is *not* library API. It exists because the readers/exporters of ``qtheory.models``
are being built in parallel; everything here is the minimum the realnets reproduction needs:

- the offline fixtures (PP-OCRv4 detector, PP-OCR mobile direction classifier, MTCNN state dicts);
- real images from ``skimage.data`` / scikit-learn, preprocessed as rapidocr does (numpy/skimage
  resize instead of cv2; BGR channel order as rapidocr's loader yields; ``(x/255 − 0.5)/0.5``);
- ``prepare``: Constant-node weights moved to initializers, Conv+BatchNormalization folded,
  opset raised to 13 (per-channel QDQ needs it);
- ``Runner``: an ONNX Runtime session that also returns chosen intermediate tensors;
- ``fake_quant_model``: a float graph in which chosen tensors pass through
  ``(clip(round(x/s) + z, 0, 2^b − 1) − z)·s`` and chosen weights are replaced — the same
  arithmetic as a QDQ pair, for any bit-width (ONNX Runtime's Conv QDQ path is int8/uint8 here);
- ``noise_model``: the float graph with an additive input beside each chosen tensor (noise
  injection).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

CLS, DET = "cls", "det"
_FILES = {CLS: "ch_ppocr_mobile_v2.0_cls_infer.onnx", DET: "ch_PP-OCRv4_det_infer.onnx"}
MTCNN = ("pnet", "rnet", "onet")


# ----------------------------------------------------------------------------- fixtures
def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the fixture package {name!r} is not installed (pip install --no-deps {name})")
    return Path(next(iter(spec.submodule_search_locations)))


def onnx_path(net: str) -> Path:
    return _package_dir("rapidocr_onnxruntime") / "models" / _FILES[net]


def mtcnn_path(net: str) -> Path:
    return _package_dir("facenet_pytorch") / "data" / f"{net}.pt"


def fixtures_available() -> bool:
    try:
        return all(onnx_path(n).is_file() for n in _FILES) and all(mtcnn_path(n).is_file() for n in MTCNN)
    except FileNotFoundError:
        return False


# ----------------------------------------------------------------------------- images
def _rgb(img):
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return img[:, :, :3].astype(np.uint8)


@functools.lru_cache(maxsize=1)
def source_images() -> dict:
    """Offline real images by name (RGB uint8)."""
    import skimage.data as d
    from sklearn.datasets import load_sample_images

    names = ("astronaut", "coffee", "chelsea", "camera", "text", "page", "rocket", "coins", "moon", "brick",
             "grass", "gravel", "immunohistochemistry", "hubble_deep_field", "clock", "cell", "colorwheel", "cat")
    out = {n: _rgb(getattr(d, n)()) for n in names}
    for i, im in enumerate(load_sample_images().images):
        out[f"sklearn{i}"] = _rgb(im)
    return out


#: calibration vs held-out sources: disjoint images, both with text and natural content
CALIB_SOURCES = ("text", "astronaut", "coffee", "camera", "rocket", "coins", "brick", "immunohistochemistry",
                 "clock", "sklearn0")
HELD_SOURCES = ("page", "chelsea", "moon", "grass", "gravel", "hubble_deep_field", "cell", "colorwheel", "cat",
                "sklearn1")


def _resize(img, h, w):
    from skimage.transform import resize

    return (resize(img, (h, w), order=1, mode="edge", anti_aliasing=False, preserve_range=True)).astype(np.float32)


def _norm_bgr(img):
    x = img[:, :, ::-1].astype(np.float32) / 255.0  # rapidocr works on BGR arrays (cv2 order)
    return ((x - 0.5) / 0.5).transpose(2, 0, 1)


def cls_inputs(sources, per_image: int, rng) -> np.ndarray:
    """Direction-classifier inputs (N, 3, 48, 192): random crops of aspect 1.5–6 resized to height 48
    as ``TextClassifier.resize_norm_img`` does (width ceil(48·ratio) ≤ 192, right zero-padding after
    normalisation); every other crop is rotated by 180° so both classes occur."""
    gen = np.random.default_rng(rng)
    imgs = source_images()
    out = []
    for s in sources:
        im = imgs[s]
        H, W = im.shape[:2]
        for k in range(per_image):
            ratio = gen.uniform(1.5, 6.0)
            h = int(gen.integers(max(16, H // 12), max(17, H // 3)))
            w = min(W, int(h * ratio))
            y0, x0 = int(gen.integers(0, H - h + 1)), int(gen.integers(0, W - w + 1))
            crop = im[y0:y0 + h, x0:x0 + w]
            if k % 2:
                crop = crop[::-1, ::-1]
            rw = min(192, int(np.ceil(48 * w / h)))
            x = np.zeros((3, 48, 192), np.float32)
            x[:, :, :rw] = _norm_bgr(_resize(crop, 48, rw))
            out.append(x)
    return np.stack(out)


def det_inputs(sources, side: int) -> np.ndarray:
    """Detector inputs (N, 3, side, side): each image centre-cropped to a square and resized to
    ``side`` (a multiple of 32, as ``DetPreProcess`` requires), normalised as rapidocr does."""
    out = []
    for s in sources:
        im = source_images()[s]
        H, W = im.shape[:2]
        m = min(H, W)
        crop = im[(H - m) // 2:(H - m) // 2 + m, (W - m) // 2:(W - m) // 2 + m]
        out.append(_norm_bgr(_resize(crop, side, side)))
    return np.stack(out)


# ----------------------------------------------------------------------------- ONNX surgery
def _attr(node, name, default=None):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def prepare(net_or_path, fold_bn: bool = True, opset: int = 13):
    """Load an ONNX model with Constant-node weights moved to initializers and Conv+BN folded."""
    import onnx
    from onnx import numpy_helper, version_converter

    path = onnx_path(net_or_path) if net_or_path in _FILES else Path(net_or_path)
    m = onnx.load(str(path))
    g = m.graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    keep = []
    for n in g.node:
        if n.op_type == "Constant" and _attr(n, "value") is not None:
            inits[n.output[0]] = numpy_helper.to_array(_attr(n, "value"))
        else:
            keep.append(n)
    consumers = {}
    for n in keep:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    drop = set()
    if fold_bn:
        producer = {o: n for n in keep for o in n.output}
        for bn in keep:
            if bn.op_type != "BatchNormalization":
                continue
            conv = producer.get(bn.input[0])
            if conv is None or conv.op_type != "Conv" or len(consumers.get(conv.output[0], [])) != 1:
                continue
            gamma, beta, mean, var = (inits[t].astype(np.float64) for t in bn.input[1:5])
            f = gamma / np.sqrt(var + _attr(bn, "epsilon", 1e-5))
            w = inits[conv.input[1]].astype(np.float64)
            b = inits[conv.input[2]].astype(np.float64) if len(conv.input) > 2 and conv.input[2] else 0.0
            wname = conv.input[1] + "_bnfolded"
            bname = conv.input[1] + "_bnfolded_bias"
            inits[wname] = (w * f[:, None, None, None]).astype(np.float32)
            inits[bname] = ((b - mean) * f + beta).astype(np.float32)
            data = conv.input[0]
            del conv.input[:]
            conv.input.extend([data, wname, bname])
            conv.output[0] = bn.output[0]
            drop.add(id(bn))
    nodes = [n for n in keep if id(n) not in drop]
    used = {i for n in nodes for i in n.input} | {o.name for o in g.output}
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in inits.items() if k in used)
    names = {i.name for i in g.initializer}
    keep_inputs = [i for i in g.input if i.name not in names]
    del g.input[:]
    g.input.extend(keep_inputs)
    del g.value_info[:]
    if m.opset_import[0].version < opset:
        m = version_converter.convert_version(m, opset)
    return m


def conv_layers(model) -> list[dict]:
    """One entry per Conv: name, data input, weight name, weight array (float32), bias, groups, kind."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type != "Conv":
            continue
        w = inits[n.input[1]]
        g = int(_attr(n, "group", 1))
        K, Cg, kh, kw = w.shape
        kind = "depthwise" if g > 1 and Cg == 1 else ("1x1" if kh * kw == 1 else f"{kh}x{kw}")
        out.append({"layer": f"conv{len(out):02d}", "node": n.name or n.output[0], "input": n.input[0],
                    "output": n.output[0], "weight": n.input[1], "w": w,
                    "bias": inits.get(n.input[2]) if len(n.input) > 2 else None, "groups": g, "kind": kind,
                    "shape": "x".join(map(str, w.shape))})
    return out


def mtcnn_layers(net: str) -> list[dict]:
    """Conv/Linear weights of an MTCNN state dict (``torch.load(weights_only=True)``)."""
    import torch

    sd = torch.load(mtcnn_path(net), map_location="cpu", weights_only=True)
    out = []
    for k, v in sd.items():
        if not k.endswith("weight") or v.ndim < 2:
            continue
        w = v.numpy().astype(np.float32)
        kind = "linear" if w.ndim == 2 else ("1x1" if w.shape[2] * w.shape[3] == 1 else f"{w.shape[2]}x{w.shape[3]}")
        out.append({"layer": f"{net}.{k[:-7]}", "w": w, "kind": kind, "shape": "x".join(map(str, w.shape))})
    return out


class Runner:
    """ONNX Runtime session over ``model`` returning the graph outputs plus ``extra`` tensors.

    ``exact_int8``: the session option ``session.x64quantprecision=1``. On x86 CPUs without VNNI,
    ONNX Runtime's uint8 x int8 kernels (MLAS, ``vpmaddubsw``) add each pair of products in int16
    with saturation; with this option its graph optimiser (extended level, so only with
    ``optimize=True``) rewrites the int8 weights to uint8 and the uint8 x uint8 kernels accumulate
    exactly, so an optimised quantized model gives the same numbers on every CPU. Inert without
    VNNI-less x86 or without ``optimize``.
    """

    def __init__(self, model, extra=(), optimize: bool = False, exact_int8: bool = True):
        import onnx
        import onnxruntime as ort

        m = onnx.ModelProto()
        m.CopyFrom(model)
        have = {o.name for o in m.graph.output}
        for t in extra:
            if t not in have:
                m.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.log_severity_level = 3
        if exact_int8:
            so.add_session_config_entry("session.x64quantprecision", "1")
        if not optimize:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.sess.get_outputs()]
        self.input_names = [i.name for i in self.sess.get_inputs()]

    def __call__(self, x, batch: int = 8, **feeds) -> dict:
        outs = {n: [] for n in self.names}
        for i in range(0, len(x), batch):
            f = {self.input_names[0]: x[i:i + batch]}
            f.update({k: v[i:i + batch] for k, v in feeds.items()})
            for n, v in zip(self.names, self.sess.run(None, f), strict=True):
                outs[n].append(v)
        return {n: np.concatenate(v) for n, v in outs.items()}


def _rewire(model, tensors, make):
    """Insert ``make(t)`` -> (nodes, new_name, inits, inputs) after each tensor and point consumers to it."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    nodes = list(g.node)
    producer_pos = {}
    for k, n in enumerate(nodes):
        for o in n.output:
            producer_pos[o] = k
    # topological order: wrappers of graph inputs first, the others right after their tensor's producer
    buckets = {}
    for t in tensors:
        extra, new, inits, inputs = make(t)
        for n in nodes:
            for j, i in enumerate(n.input):
                if i == t:
                    n.input[j] = new
        buckets.setdefault(producer_pos.get(t, -1), []).extend(extra)
        g.initializer.extend(inits)
        g.input.extend(inputs)
    out = list(buckets.get(-1, []))
    for k, n in enumerate(nodes):
        out.append(n)
        out += buckets.get(k, [])
    del g.node[:]
    g.node.extend(out)
    onnx.checker.check_model(m)
    return m


def fake_quant_model(model, act: dict, weights: dict | None = None):
    """``act``: {tensor: (scale, zero_point, bits)} (uint affine); ``weights``: {initializer: array}."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    if weights:
        for i in m.graph.initializer:
            if i.name in weights:
                i.CopyFrom(numpy_helper.from_array(np.asarray(weights[i.name], np.float32), i.name))

    def make(t):
        s, z, bits = act[t]
        p = t.replace("/", "_") + "_fq"
        c = {f"{p}_s": np.float32(s), f"{p}_z": np.float32(z), f"{p}_lo": np.float32(0),
             f"{p}_hi": np.float32(2**bits - 1)}
        inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in c.items()]
        nodes = [helper.make_node("Div", [t, f"{p}_s"], [f"{p}_a"]),
                 helper.make_node("Round", [f"{p}_a"], [f"{p}_b"]),
                 helper.make_node("Add", [f"{p}_b", f"{p}_z"], [f"{p}_c"]),
                 helper.make_node("Clip", [f"{p}_c", f"{p}_lo", f"{p}_hi"], [f"{p}_d"]),
                 helper.make_node("Sub", [f"{p}_d", f"{p}_z"], [f"{p}_e"]),
                 helper.make_node("Mul", [f"{p}_e", f"{p}_s"], [f"{p}_out"])]
        return nodes, f"{p}_out", inits, []

    return _rewire(m, list(act), make)


def noise_model(model, tensors):
    """The float graph with a same-shaped additive input ``<tensor>_noise`` beside each tensor."""
    from onnx import TensorProto, helper

    def make(t):
        p = t.replace("/", "_") + "_noise"
        return ([helper.make_node("Add", [t, p], [p + "_sum"])], p + "_sum", [],
                [helper.make_tensor_value_info(p, TensorProto.FLOAT, [f"{p}_d{i}" for i in range(4)])])

    return _rewire(model, list(tensors), make)
