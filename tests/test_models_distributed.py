"""The dask path on a LocalCluster: a sharded safetensors checkpoint, one task per tensor or shard,
equal to the serial layer_report."""

import json

import numpy as np
import pytest

from qtheory.models import layer_report
from qtheory.models.distributed import distributed_report

pytest.importorskip("dask")
pytest.importorskip("distributed")
safetensors_numpy = pytest.importorskip("safetensors.numpy")


@pytest.fixture
def sharded(tmp_path, rng):
    """A two-shard checkpoint with an index, as Hugging Face writes large language models."""
    weight_map = {}
    for s in range(2):
        ts = {f"model.layers.{3 * s + i}.mlp.up_proj.weight": rng.laplace(size=(24, 40)).astype(np.float32)
              for i in range(3)}
        ts[f"model.layers.{3 * s}.input_layernorm.weight"] = np.ones(40, np.float32)
        name = f"model-{s + 1:05d}-of-00002.safetensors"
        safetensors_numpy.save_file(ts, tmp_path / name)
        weight_map.update(dict.fromkeys(ts, name))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


def test_local_threads_equal_serial(sharded):
    ref = layer_report(sharded, bits=[4, 8], methods=["max", "aciq", "exact"], long=True)
    assert ref.tensor.nunique() == 6  # the layernorm vectors are not weights
    got = distributed_report(sharded, bits=[4, 8], methods=["max", "aciq", "exact"])
    assert got.equals(ref)


def test_local_cluster_per_tensor_and_per_shard(sharded):
    from distributed import Client, LocalCluster

    ref = layer_report(sharded, bits=[4], methods=["max", "exact"], long=True, granularity="channel")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        by_tensor = distributed_report(sharded, bits=[4], methods=["max", "exact"], granularity="channel",
                                       scheduler=client)
        by_shard = distributed_report(sharded, bits=[4], methods=["max", "exact"], granularity="channel",
                                      scheduler=cluster.scheduler_address, by="shard")
    assert by_tensor.equals(ref)
    assert by_shard.equals(ref)


def test_validation(sharded):
    with pytest.raises(ValueError, match="'by' parameter of distributed_report"):
        distributed_report(sharded, by="layer")
    with pytest.raises(TypeError, match="'scheduler' parameter of distributed_report"):
        distributed_report(sharded, scheduler=3)


def test_cli_scheduler_local(sharded, tmp_path):
    import pandas as pd

    from qtheory.cli import main

    out = tmp_path / "r.csv"
    assert main(["report", str(sharded), "--bits", "4", "--methods", "max", "exact", "--scheduler", "local",
                 "--csv", str(out)]) == 0
    got = pd.read_csv(out)
    ref = layer_report(sharded, bits=[4], methods=["max", "exact"], long=True)
    assert got.tensor.tolist() == ref.tensor.tolist()
    np.testing.assert_allclose(got.sqnr_db, ref.sqnr_db, rtol=1e-12)
