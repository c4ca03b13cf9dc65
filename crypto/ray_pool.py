"""The crypto batch kernels on a Ray cluster: a party's own machines as one pool.

Why: a party whose batches outgrow one machine (encryption, ``Xᵀ[[e]]``,
re-randomisation factors, decryption) can spread them over its own machines
without any change to the protocol code. :class:`RayExecutor` is a
``concurrent.futures.Executor``, so everything that accepts ``pool=`` (and
:func:`crypto.pool.run_chunks`) uses it exactly like the process pool: the
same module-level kernels of :mod:`crypto.pool`, the same bytes block per
chunk, one chunk per CPU of the cluster (:attr:`RayExecutor._max_workers`,
read by :func:`crypto.pool.parallelism`). Results are identical to the
in-process ones; only where the chunks run changes.

Configuration
-------------
``CREDITLAB_CRYPTO_RAY_ADDRESS`` selects it in :func:`crypto.pool.get_pool`:

* ``auto`` — the Ray cluster already running on this machine (``ray start``);
* ``ray://host:10001`` — a remote cluster through Ray Client;
* ``host:6379`` — a cluster's GCS address, from a machine of that cluster;
* ``local`` — start a Ray instance here with ``CREDITLAB_CRYPTO_WORKERS``
  CPUs (default: the usable cores) and stop it at exit.

If Ray is already initialised in this process (e.g. the party runs inside a
Ray actor), that connection is used whatever the address says. Every node
of the cluster needs the party's environment (``creditlab`` with ``gmpy2``
and ``numpy``): the tasks import :mod:`crypto.pool` there.

Secrets
-------
Tasks carry what the process-pool path already ships to its workers: public
key parameters, ciphertexts, plaintext residues and features — and, for the
key owner, the factors ``p, q`` of its own key (CRT encryption and
decryption) and the PSI secret scalar. With the process pool those reach the
party's own worker processes; on Ray they reach the party's own cluster,
which must therefore be the party's own trust domain, never shared with the
peer or the coordinator. Ray's internal traffic is not encrypted unless Ray
TLS is configured (``RAY_USE_TLS=1`` and certificates), so across a network
that is not the party's own, enable it.

Scheduling note: each task asks Ray for one CPU. On a cluster whose CPUs are
all held by actors (e.g. a Flower simulation sized to every core), crypto
tasks wait until a CPU is free; leave CPUs for them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures import wait as wait_futures
from typing import Any
from urllib.parse import urlsplit

from crypto.errors import CryptoError

__all__ = ["CONNECT_TIMEOUT_S", "ENV_RAY_ADDRESS", "RayExecutor", "parse_address"]

ENV_RAY_ADDRESS = "CREDITLAB_CRYPTO_RAY_ADDRESS"
CONNECT_TIMEOUT_S = 5.0
"""How long a TCP probe of a remote address may take before we say it is unreachable."""

_RESOURCE_REFRESH_S = 10.0
"""How long a reading of the cluster's CPU count is reused (clusters may grow)."""


def _run_kernel(fn: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> Any:
    """Body of every Ray task: call the (module-level, picklable) kernel.

    One remote function for all kernels, so ``fn`` travels like it does to a
    process pool (pickled by reference) and any picklable callable works.
    """
    return fn(*args, **kwargs)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray ships with flwr[simulation]
        raise CryptoError(
            f"{ENV_RAY_ADDRESS} is set but Ray is not installed; install it "
            "(pip install 'flwr[simulation]') or unset the variable"
        ) from exc
    return ray


def parse_address(address: str) -> tuple[str, str, int | None]:
    """``(kind, host, port)`` of a configured address; ``kind`` in local/auto/client/gcs.

    Raises :class:`CryptoError` naming the variable for anything else, before
    any connection attempt.
    """
    spec = address.strip()
    if spec in ("local", "auto"):
        return spec, "", None
    kind = "client" if spec.startswith("ray://") else "gcs"
    parts = urlsplit(spec if kind == "client" else f"//{spec}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    malformed = parts.path not in ("", "/") or (kind == "gcs" and "://" in spec)
    if malformed or not host or port is None:
        raise CryptoError(
            f"{ENV_RAY_ADDRESS}={address!r} is not a Ray address; use 'auto' (the cluster "
            "running on this machine), 'ray://host:10001' (Ray Client), 'host:6379' (GCS, "
            "from a cluster node) or 'local' (start Ray here), or unset it to use the "
            "process pool"
        )
    return kind, host, port


def _check_reachable(address: str, host: str, port: int) -> None:
    """Fail fast with a clear message when nothing listens at ``host:port``.

    Why: Ray retries an unreachable address for tens of seconds before it
    gives up with a generic error; a TCP probe answers in at most
    :data:`CONNECT_TIMEOUT_S`.
    """
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise CryptoError(
            f"{ENV_RAY_ADDRESS}={address!r}: cannot reach {host}:{port} ({exc}); start the "
            "cluster (ray start --head) or fix the address, or unset the variable to compute "
            "on this machine's process pool"
        ) from exc


def _connect(ray: Any, address: str, num_cpus: int | None) -> None:
    """``ray.init`` for ``address``, with every failure turned into a :class:`CryptoError`."""
    kind, host, port = parse_address(address)
    if kind in ("client", "gcs"):
        _check_reachable(address, host, port)
    try:
        if kind == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False)
        else:
            ray.init(address=address.strip())
    except Exception as exc:  # noqa: BLE001 - Ray raises many types; all mean "not connected"
        raise CryptoError(
            f"{ENV_RAY_ADDRESS}={address!r}: could not connect to Ray ({exc}); check that "
            "the cluster runs (ray status) and the address, or unset the variable to compute "
            "on this machine's process pool"
        ) from exc


def _as_crypto_error(exc: BaseException) -> BaseException:
    """Ray's infrastructure failures as :class:`CryptoError`; a kernel's own error as is.

    A task that raised keeps its exception type (Ray re-raises it as an
    instance of the cause), so a ``CryptoError`` from a kernel stays one. A
    dead worker or node, a lost object, or a node without our code becomes a
    ``CryptoError`` that says what to do, like a dead process-pool worker.
    """
    from ray.exceptions import RayError, RayTaskError

    cause = exc.cause if isinstance(exc, RayTaskError) else None
    if isinstance(cause, ImportError):
        return CryptoError(
            f"a Ray node cannot import the crypto kernels ({cause}); install creditlab with "
            f"gmpy2 on every node of the cluster, or unset {ENV_RAY_ADDRESS}"
        )
    if isinstance(exc, RayError) and not isinstance(exc, RayTaskError):
        return CryptoError(
            f"a Ray task of the crypto pool failed ({type(exc).__name__}: {exc}); check the "
            f"cluster (ray status) and retry, or unset {ENV_RAY_ADDRESS} to compute on this "
            "machine"
        )
    return exc


def _relay(source: Future, target: Future) -> None:
    """Copy a finished Ray future's outcome to ``target``, translating Ray failures."""
    if source.cancelled():
        target.set_exception(CancelledError())
        return
    exc = source.exception()
    if exc is None:
        target.set_result(source.result())
    else:
        translated = _as_crypto_error(exc)
        if translated is not exc:
            translated.__cause__ = exc
        target.set_exception(translated)


class RayExecutor(Executor):
    """Run crypto kernels as Ray tasks; a drop-in for the process pool.

    Parameters
    ----------
    address : str, optional
        ``auto``, ``ray://host:port``, ``host:port`` or ``local`` (see the
        module doc). Ignored when Ray is already initialised in this process;
        required otherwise.
    num_cpus : int, optional
        CPUs of a ``local`` instance (default: Ray's own count).

    Attributes
    ----------
    tasks_submitted : int
        Ray tasks started by this executor (for tests and benchmarks).
    started_ray : bool
        True when this executor called ``ray.init``; only then does
        :meth:`shutdown` call ``ray.shutdown``.
    """

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None) -> None:
        ray = _import_ray()
        self.started_ray = False
        if address is not None:
            parse_address(address)  # a malformed setting is an error even if Ray runs
        if not ray.is_initialized():
            if address is None:
                raise CryptoError(
                    f"Ray is not initialised in this process; pass an address or set "
                    f"{ENV_RAY_ADDRESS}"
                )
            _connect(ray, address, num_cpus)
            self.started_ray = True
        self._ray = ray
        self._remote = ray.remote(_run_kernel)
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[Any, Future]] = {}
        self._closed = False
        self._cpus = 0
        self._cpus_read_at = -_RESOURCE_REFRESH_S
        self.tasks_submitted = 0
        self._pid = os.getpid()
        if self._max_workers < 1:
            self.shutdown(wait=False)
            raise CryptoError(
                "the Ray cluster reports no CPUs, so crypto tasks would never run; add CPU "
                f"nodes or unset {ENV_RAY_ADDRESS}"
            )

    def __repr__(self) -> str:
        return (f"RayExecutor(cpus={self._cpus}, started_ray={self.started_ray}, "
                f"tasks_submitted={self.tasks_submitted})")

    @property
    def _max_workers(self) -> int:
        """CPUs of the cluster (``ray.cluster_resources()``), re-read every 10 s at most.

        Named like ``ProcessPoolExecutor``'s attribute so that
        :func:`crypto.pool.parallelism` cuts one chunk per CPU.
        """
        now = time.monotonic()
        if now - self._cpus_read_at >= _RESOURCE_REFRESH_S:
            self._cpus = int(self._ray.cluster_resources().get("CPU", 0))
            self._cpus_read_at = now
        return self._cpus

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Start ``fn(*args, **kwargs)`` as a Ray task (one CPU); its future.

        Ray puts large arguments (the chunk's bytes block) into its object
        store once; the result comes back the same way.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            ref = self._remote.remote(fn, args, kwargs)
            self.tasks_submitted += 1
            future: Future = Future()
            future.set_running_or_notify_cancel()
            key = id(future)
            self._pending[key] = (ref, future)
        future.add_done_callback(lambda _f, k=key: self._forget(k))
        ref.future().add_done_callback(lambda source: _relay(source, future))
        return future

    def _forget(self, key: int) -> None:
        with self._lock:
            self._pending.pop(key, None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; cancel or await pending tasks; stop Ray if we started it.

        A Ray instance or cluster connection made by someone else in this
        process is left as it is. Waiting is skipped once Ray is down (its
        futures would never complete).
        """
        with self._lock:
            already, self._closed = self._closed, True
            pending = list(self._pending.values())
        if already or os.getpid() != self._pid:
            return
        if cancel_futures:
            for ref, _ in pending:
                self._cancel(ref)
        if wait and self._ray.is_initialized():
            wait_futures([future for _, future in pending])
        if self.started_ray and self._ray.is_initialized():
            self._ray.shutdown()

    def _cancel(self, ref: Any) -> None:
        with contextlib.suppress(Exception):  # already finished, or Ray is going down
            self._ray.cancel(ref)
