"""Simulating a data set on a Dask cluster (extra ``dask``), with results identical to one process.

The data set is cut into chunks of consecutive samples; each task simulates one chunk on a worker
and returns its ``SimulationResult`` (no rasters), and the results are concatenated in sample
order. Every random stream is keyed by the sample's index in the whole set (``first_sample``), so
the merged result equals a single-process run bit for bit, for any number of workers and any
chunk size, also when a worker dies and Dask reruns its tasks elsewhere.

The model is sent to every worker once (``scatter``); the data is not sent: each worker opens the
data path itself and reads only its chunks (memory-mapped where the format allows), so the path
must be visible to the workers under the same name (a shared file system, or the same files on
every machine).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

from .model import ConvertedModel
from .progress import Progress
from .snn import SimulationResult, SpikingNetwork

DEFAULT_CHUNK = 256  # samples per task
CONNECT_TIMEOUT = "5s"

_built: dict[tuple, SpikingNetwork] = {}  # per worker process: the networks its tasks simulate
_data: dict[tuple, object] = {}  # per worker process: opened data sets


def _distributed():
    try:
        import distributed
    except ImportError as err:
        raise ImportError("running on a Dask cluster needs dask: pip install 'eventsnn[dask]'") from err
    return distributed


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[object]:
    """A client of the cluster at ``scheduler`` (an address such as tcp://host:8786), or of a local
    cluster of ``workers`` processes started here (one thread each) and closed afterwards."""
    distributed = _distributed()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise OSError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} ({err})") from None
        with client:
            yield client
        return
    if not workers or workers < 1:
        raise ValueError("give a scheduler address or a number of local workers")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def _network(model: ConvertedModel, build_options: dict) -> SpikingNetwork:
    key = (id(model), tuple(sorted(build_options.items())))
    if key not in _built:
        _built.clear()  # one model at a time per worker: a sweep moves on cell by cell
        _built[key] = model.build(**build_options)
    return _built[key]


def _images(path: str, split: str):
    from .loaders import load_dataset

    key = (path, split, os.stat(path).st_mtime_ns)
    if key not in _data:
        _data.clear()
        _data[key] = load_dataset(path, split, lazy=True)[0]
    return _data[key]


def _simulate_chunk(model: ConvertedModel, build_options: dict, data: str, split: str, start: int, stop: int,
                    steps: int, seed: int, batch: int, engine_options: dict) -> SimulationResult:
    """One task: samples start .. stop-1 of the data set, numbered as in the whole set."""
    from .engine import simulate

    x = _images(data, split)[start:stop]
    return simulate(_network(model, build_options), x, steps, seed=seed, batch_size=batch, first_sample=start,
                    threads=1, **engine_options)


def simulate_on_cluster(client, model: ConvertedModel, data: str, n: int, steps: int, split: str = "test",
                        seed: int = 0, batch: int = 256, chunk: int = DEFAULT_CHUNK, build_options: dict | None = None,
                        engine_options: dict | None = None, progress: Progress | None = None) -> SimulationResult:
    """The first ``n`` samples of the data set at ``data`` simulated by the cluster's workers;
    equal to ``engine.simulate`` on the same samples (see the module docstring). Ctrl-C cancels
    the tasks."""
    distributed = _distributed()
    began = time.perf_counter()
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of samples, not {chunk}")
    data = os.path.abspath(data)
    shared = client.scatter(model, broadcast=True, hash=False)  # a new key: an earlier scatter may be on its way out
    bounds = [(start, min(start + chunk, n)) for start in range(0, n, chunk)]
    futures = [client.submit(_simulate_chunk, shared, build_options or {}, data, split, start, stop, steps, seed,
                             batch, engine_options or {}, pure=False) for start, stop in bounds]
    parts: dict[int, SimulationResult] = {}
    index = {future.key: i for i, future in enumerate(futures)}
    try:
        done = 0
        for future in distributed.as_completed(futures):
            result = future.result()  # re-raises a task's error here
            parts[index[future.key]] = result
            done += len(result.decisions)
            if progress is not None:
                progress(done, n)
    except BaseException:
        client.cancel(futures)
        raise
    if not parts:
        raise ValueError("no samples to simulate")
    merged = SimulationResult.concatenate([parts[i] for i in range(len(bounds))])
    merged.seconds = time.perf_counter() - began  # wall-clock of the whole cluster run, not the sum over tasks
    return merged
