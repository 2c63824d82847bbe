"""Demo tenants and ``serve_forever``: the simulator behind ``python -m tenantpilot simulate``.

``DEMO_TENANTS`` is a constant, so the app can list the demo tenants before any simulator runs.
:func:`serve_forever` builds them (same seed, variants 0, 1, 2, … so Compare shows differences),
starts the simulator, writes ``simulator-ca.pem`` and ``simulator.json`` into ``data_dir`` and
serves until interrupted (Ctrl-C, SIGTERM or ``stop_event``); it removes ``simulator.json`` on exit.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from graphsim.catalog import derived_id
from graphsim.server import CA_FILENAME, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, GraphSimulator
from graphsim.tenants import SimTenant, build_tenant

#: (tenant_id, display_name) of the demo tenants, in order; tenant i is built with variant i.
DEMO_TENANTS: list[tuple[str, str]] = [
    ("6b1f5d7e-2c4a-4e8f-9a3b-1d2c3e4f5a60", "Contoso Ltd"),
    ("8c2a6e9f-3d5b-4f90-8b4c-2e3d4f5a6b71", "Fabrikam Inc"),
    ("9d3b7fa0-4e6c-4a01-9c5d-3f4e5a6b7c82", "Northwind Traders"),
    ("ae4c80b1-5f7d-4b12-8d6e-4a5f6b7c8d93", "Adventure Works"),
    ("bf5d91c2-608e-4c23-9e7f-5b6a7c8d9ea4", "Tailspin Toys"),
]
SIMULATOR_JSON = "simulator.json"


def demo_tenant_list(count: int = 3) -> list[tuple[str, str]]:
    """The first ``count`` demo tenants (invented ones beyond the named five)."""
    out = list(DEMO_TENANTS[:count])
    for i in range(len(out), count):
        out.append((derived_id("demo-tenant", i), f"Demo Tenant {i + 1}"))
    return out


def build_demo_tenants(count: int = 3, policies: int = 40, seed: int = 0) -> dict[str, SimTenant]:
    """Demo tenants: same seed, tenant i with variant i (tenant 0 is the baseline)."""
    return {tid: build_tenant(tid, name, policies, seed=seed, variant=i, coverage=True)
            for i, (tid, name) in enumerate(demo_tenant_list(count))}


def write_discovery(sim: GraphSimulator, data_dir: Path) -> Path:
    """Write ``simulator.json`` (url, CA, demo credentials, tenants) for the app to find."""
    info = {
        "url": sim.url,
        "graph_url": sim.url,
        "authority_host": sim.url,
        "ca_path": str(sim.ca_path),
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "pid": os.getpid(),
        "tenants": [{"tenant_id": t.tenant_id, "display_name": t.display_name, "domain": t.domain}
                    for t in sim.tenants.values()],
    }
    path = Path(data_dir) / SIMULATOR_JSON
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def serve_forever(port: int = 0, data_dir: Path = Path("data"), tenants: int = 3, policies: int = 40,
                  latency: float = 0.0, *, host: str = "127.0.0.1", seed: int = 0,
                  throttle: tuple[int, float] | None = None, fault_rate: float = 0.0,
                  client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                  stop_event: threading.Event | None = None,
                  ready: Callable[[GraphSimulator], None] | None = None, quiet: bool = False) -> None:
    """Serve the demo tenants until interrupted. ``ready(sim)`` is called once serving."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = stop_event or threading.Event()
    sim = GraphSimulator(build_demo_tenants(tenants, policies, seed), host=host, port=port, latency=latency,
                         throttle=throttle, fault_rate=fault_rate, seed=seed, cert_dir=data_dir,
                         client_id=client_id, client_secret=client_secret)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sim.start()
    discovery = write_discovery(sim, data_dir)
    try:
        if not quiet:
            print(f"Graph simulator on {sim.url} (authority and Graph), CA {data_dir / CA_FILENAME}", flush=True)
            for t in sim.tenants.values():
                print(f"  tenant {t.tenant_id}  {t.display_name}  ({t.policy_count} policies)", flush=True)
            print(f"  client id {sim.client_id}; discovery file {discovery}; Ctrl-C to stop", flush=True)
        if ready is not None:
            ready(sim)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        try:
            if json.loads(discovery.read_text(encoding="utf-8")).get("pid") == os.getpid():
                discovery.unlink()
        except (OSError, ValueError):
            pass
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
