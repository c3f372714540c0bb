"""The results commands: ``rd`` (a sweep's frontier as a table or a file, or one job's
rate-distortion summary) and ``download`` (a job's checkpoint)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from service.cli.common import client_args, make_client
from vae_engine.errors import VaelabError

if TYPE_CHECKING:
    from service.client import Client


def add_rd(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rd", help="Rate-distortion of a sweep (its frontier) or of a job.")
    p.add_argument("id", help="A sweep id or a job id.")
    p.add_argument("--out", default=None,
                   help="Write the sweep's plot (.png/.svg), table (.csv) or JSON (.json).")
    p.add_argument("--step", type=int, default=None, help="A job's evaluation at this step.")
    client_args(p)
    p.set_defaults(func=cmd_rd)


def add_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="Download a job's checkpoint (the latest by default).")
    p.add_argument("id", help="A job id.")
    p.add_argument("--step", type=int, default=None,
                   help="The checkpoint of this step (default the latest).")
    p.add_argument("--out", default=None, help="Default <id>-latest.safetensors, or "
                   "<id>-step<STEP>.safetensors with --step.")
    client_args(p)
    p.set_defaults(func=cmd_download)


def cmd_rd(args: argparse.Namespace) -> int:
    from service.client import ApiError

    def run(a: argparse.Namespace) -> int:
        client = make_client(a)
        try:  # the id is a sweep's unless the API has no such sweep
            client.sweep(a.id)
        except ApiError as exc:
            if exc.status not in (404, 422):  # no such sweep: a job's id (or prefix), then
                raise
            return _job_rd(client, a)
        return _sweep_rd(client, a)

    return run(args)


def _sweep_rd(client: Client, a: argparse.Namespace) -> int:
    if a.out:
        fmt = a.out.rsplit(".", 1)[-1].lower()
        if fmt not in ("png", "svg", "csv", "json"):
            raise VaelabError(f"--out {a.out}: must end in .png, .svg, .csv or .json")
        data = client.sweep_rd(a.id, fmt)
        with open(a.out, "wb") as fh:
            fh.write(json.dumps(data, indent=2).encode() if fmt == "json" else data)
        print(f"wrote {a.out}")
        return 0
    fr = client.sweep_rd(a.id)
    rows = fr["aggregated"] or fr["points"]
    print(f"{fr['finished']}/{fr['total']} runs finished"
          + (" (mean over seeds)" if fr["aggregated"] else ""))
    extra = [k for k in ("mig", "dci_disentanglement", "fd_lenet")
             if any(r.get(k) is not None for r in rows)]
    cols = ["rate", "distortion", "elbo", "iwae", *extra]
    print(" ".join(f"{k[:10]:>10}" for k in cols) + "  front  params")
    for r in sorted(rows, key=lambda r: (r["rate"] is None, r["rate"])):
        nums = " ".join(f"{r[k]:>10.3f}" if r.get(k) is not None else f"{'-':>10}"
                        for k in cols)
        print(f"{nums}  {'*' if r['on_frontier'] else ' ':^5}  "
              + ", ".join(f"{k}={v}" for k, v in r["params"].items()))
    return 0


def _job_rd(client: Client, a: argparse.Namespace) -> int:
    rd = client.job_rd(a.id, a.step)
    if a.out:
        if not a.out.endswith(".json"):
            raise VaelabError(f"--out {a.out}: a job's rate-distortion is written as .json")
        with open(a.out, "w") as fh:
            json.dump(rd, fh, indent=2)
        print(f"wrote {a.out}")
        return 0
    print(f"job {rd['job_id']} at step {rd['step']} ({rd['status']})")
    for key in ("rate", "distortion", "elbo", "iwae", "bits_per_dim", "marginal_kl",
                "beta_effective"):
        if rd.get(key) is not None:
            print(f"  {key:>20}: {rd[key]:.4f}")
    print(f"  {'active_units':>20}: {rd['active_units']['count']}")
    mi = rd["mutual_information"]
    if mi["value"] is not None:
        sat = " SATURATED: at its ceiling log N" if mi.get("saturated") else ""
        print(f"  {'mutual_information':>20}: {mi['value']:.4f} (N {mi['batch_size']}){sat}")
    if rd.get("bound") is not None:
        print(f"  {'bound':>20}: {'yes' if rd['bound'] else 'NO'} ({rd.get('bound_reason')})")
    for group in ("disentanglement", "sample_quality"):
        for key, value in (rd.get(group) or {}).items():
            if isinstance(value, float):
                print(f"  {key:>20}: {value:.4f}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    def run(a: argparse.Namespace) -> int:
        import os

        out = a.out or f"{a.id}-{'latest' if a.step is None else f'step{a.step}'}.safetensors"
        tmp = out + ".part"  # renamed only once complete: no half-written checkpoint
        try:
            with open(tmp, "wb") as fh:
                headers = make_client(a).download_checkpoint(a.id, fh, a.step)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        print(f"wrote {out} (step {headers.get('x-vaelab-step')}, "
              f"sha256 {headers.get('x-vaelab-sha256')})")
        return 0

    return run(args)
