"""``python -m graphsim``: serve the demo tenants (see :func:`serve_forever`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from graphsim.demo import DEMO_TENANTS, serve_forever

__all__ = ["DEMO_TENANTS", "main", "serve_forever"]


def _throttle(text: str) -> tuple[int, float]:
    limit, _, window = text.partition("/")
    return int(limit), float(window or 20)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m graphsim",
                                     description="Local Microsoft Graph (Intune) simulator and token authority.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("TENANTPILOT_DATA_DIR", "data")),
                        help="where simulator-ca.pem and simulator.json are written")
    parser.add_argument("--tenants", type=int, default=3)
    parser.add_argument("--policies", type=int, default=40, help="policies per tenant")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--throttle", type=_throttle, default=None, help="LIMIT/WINDOW_SECONDS, e.g. 1000/20")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    serve_forever(args.port, args.data_dir, args.tenants, args.policies, args.latency, host=args.host,
                  seed=args.seed, throttle=args.throttle, fault_rate=args.fault_rate)


if __name__ == "__main__":
    main()
