"""Simulating a data set on a Dask cluster (extra ``dask``), with results identical to one process.

The data set is cut into chunks of consecutive samples; each task simulates one chunk on a worker
and returns its ``SimulationResult`` (no rasters), and the results are concatenated in sample
order. Every random stream is keyed by the sample's index in the whole set (``first_sample``), so
the merged result equals a single-process run bit for bit, for any number of workers and any
chunk size, also when a worker dies and Dask reruns its tasks elsewhere.

The model is sent to every worker once (``scatter``); the data is not sent: each worker opens the
data path itself and reads only its chunks (read by slice where the format allows), so the path
must be visible to the workers under the same name (a shared file system, or the same files on
every machine).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Iterator

import numpy as np

from . import memory
from .model import ConvertedModel
from .progress import Progress
from .snn import SimulationResult, SpikingNetwork

DEFAULT_CHUNK = 256  # samples per task
CONNECT_TIMEOUT = "5s"

_built: dict[tuple, tuple] = {}  # per worker process: (model, network) its tasks simulate
_data: dict[tuple, object] = {}  # per worker process: opened data sets


def _distributed():
    try:
        import distributed
    except ImportError as err:
        raise ImportError("running on a Dask cluster needs dask: pip install 'dask[distributed]' (or, in the "
                          "eventsnn checkout, pip install -e '.[dask]')") from err
    return distributed


WORKER_BYTES = 250 << 20  # one local worker process: Python, NumPy, Numba's compiled kernels, Dask (measured ~200 MB)
ANSWER_SECONDS = 15  # a server that accepts the connection but never answers as a Dask scheduler would


@contextlib.contextmanager
def _connected(distributed, scheduler: str) -> Iterator[object]:
    """A client of the scheduler at ``scheduler``; refused in seconds, with the reason, when nothing
    answers there, or something that is not a Dask scheduler (an HTTP server accepts and waits)."""
    if not scheduler.startswith("tcp://"):
        raise ValueError(f"{scheduler}: give the scheduler's tcp://host:port address (tls:// and other protocols need "
                         "a security configuration eventsnn does not set up)")
    box: dict = {}

    def connect():
        try:
            box["client"] = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except Exception as err:  # noqa: BLE001 - reported below with the address
            box["error"] = err

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(ANSWER_SECONDS)
    if "error" in box:
        err = box["error"]
        raise OSError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} "
                      f"({type(err).__name__}: {err})") from None
    if "client" not in box:
        raise OSError(f"no Dask scheduler answered at {scheduler} within {ANSWER_SECONDS} s (something accepted the "
                      "connection: is that port a Dask scheduler's?)")
    with box["client"] as client:
        yield client


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator[object]:
    """A client of the cluster at ``scheduler`` (an address such as tcp://host:8786), or of a local
    cluster of ``workers`` processes started here (one thread each) and closed afterwards."""
    distributed = _distributed()
    if scheduler:
        with _connected(distributed, scheduler) as client:
            yield client
        return
    if not workers or workers < 1:
        raise ValueError("give a scheduler address or a number of local workers")
    most = 4 * (os.cpu_count() or 1)
    if workers > most:
        raise ValueError(f"--workers {workers}: more than {most} processes on {os.cpu_count()} cores would only wait for "
                         "each other")
    memory.check(workers * WORKER_BYTES, f"a local cluster of {workers} worker processes")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


def _network(model: ConvertedModel, build_options: dict) -> SpikingNetwork:
    """The network this worker built from ``model``. The cache holds the model too: once freed, a
    model's id can be another model's (a sweep's next cell), which then ran the previous network."""
    key = (id(model), tuple(sorted(build_options.items())))
    if key not in _built:
        _built.clear()  # one model at a time per worker: a sweep moves on cell by cell
        _built[key] = (model, model.build(**build_options))
    return _built[key][1]


def _images(path: str, split: str, fingerprint: str | None):
    """The data set at ``path`` as this worker sees it, refused when it is not the client's file."""
    from .loaders import load_dataset
    from .loaders.datasets import DatasetError, file_identity

    where = f"on the Dask worker at {socket.gethostname()}"
    try:
        if fingerprint is not None and file_identity(path)[2] != fingerprint:
            raise DatasetError(f"{path}: {where} this is another file than the one the client read (same path, other "
                               "content); give the workers the same data")
        key = (path, split, os.stat(path).st_mtime_ns)
        if key not in _data:
            _data.clear()
            _data[key] = load_dataset(path, split, lazy=True)[0]
        return _data[key]
    except OSError as err:
        raise DatasetError(f"{path}: {where}: cannot read ({err.strerror or err}); the data path must be readable "
                           "by every worker") from None


def _simulate_chunk(model: ConvertedModel, build_options: dict, data: str, split: str, start: int, stop: int,
                    steps: int, seed: int, batch: int, engine_options: dict,
                    rows: np.ndarray | None = None, fingerprint: str | None = None) -> SimulationResult:
    """One task: samples start .. stop-1 of the data set (or of the sample ``rows`` of it, whose
    part this is), numbered as in the whole run; ``fingerprint``: the client's file's (None for a folder)."""
    from .engine import simulate

    images = _images(data, split, fingerprint)
    x = images[start:stop] if rows is None else images[rows]
    return simulate(_network(model, build_options), x, steps, seed=seed, batch_size=batch, first_sample=start,
                    threads=1, **engine_options)


def results_in_order(client, model: ConvertedModel, data: str, n: int, steps: int, split: str = "test",
                     seed: int = 0, batch: int = 256, chunk: int = DEFAULT_CHUNK, build_options: dict | None = None,
                     engine_options: dict | None = None, rows: np.ndarray | None = None) -> Iterator[SimulationResult]:
    """The results of consecutive chunks of the first ``n`` samples at ``data`` (or of the ``n``
    samples at indices ``rows``), in sample order, all chunks submitted at once (so the workers
    run ahead of the consumer). Closing the iterator early, or Ctrl-C, cancels what is left."""
    if chunk < 1:
        raise ValueError(f"chunk must be a positive number of samples, not {chunk}")
    shared = client.scatter(model, broadcast=True, hash=False)  # a new key: an earlier scatter may be on its way out
    from .loaders.datasets import file_identity

    data = os.path.abspath(data)
    fingerprint = file_identity(data)[2] if os.path.isfile(data) else None
    futures = [client.submit(_simulate_chunk, shared, build_options or {}, data, split, start, min(start + chunk, n),
                             steps, seed, batch, engine_options or {}, None if rows is None else rows[start:start + chunk],
                             fingerprint, pure=False) for start in range(0, n, chunk)]
    try:
        for future in futures:
            yield future.result()  # re-raises a task's error here
            future.release()
    finally:
        client.cancel(futures)


def simulate_on_cluster(client, model: ConvertedModel, data: str, n: int, steps: int, split: str = "test",
                        seed: int = 0, batch: int = 256, chunk: int = DEFAULT_CHUNK, build_options: dict | None = None,
                        engine_options: dict | None = None, progress: Progress | None = None,
                        rows: np.ndarray | None = None) -> SimulationResult:
    """The first ``n`` samples of the data set at ``data`` (or those at indices ``rows``) simulated by
    the cluster's workers; equal to ``engine.simulate`` on the same samples (see the module docstring)."""
    began = time.perf_counter()
    parts = []
    for result in results_in_order(client, model, data, n, steps, split, seed, batch, chunk, build_options,
                                   engine_options, rows):
        parts.append(result)
        if progress is not None:
            progress(sum(len(p.decisions) for p in parts), n)
    if not parts:
        raise ValueError("no samples to simulate")
    merged = SimulationResult.concatenate(parts)
    merged.seconds = time.perf_counter() - began  # wall-clock of the whole cluster run, not the sum over tasks
    return merged
