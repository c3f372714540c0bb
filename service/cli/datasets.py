"""``vaelab datasets upload|list|show|rm``: uploaded ``.npz`` datasets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from service.cli.common import client_args, make_client


def add_datasets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="Upload, list, show or delete .npz datasets.",
                       description="vaelab datasets {upload FILE | list | show NAME | rm NAME}")
    actions = p.add_subparsers(dest="action", required=True)
    up = actions.add_parser("upload", help="Upload an .npz (validated before it is kept).")
    up.add_argument("file", help="The .npz: x_train, x_test (and y_train, y_test).")
    up.add_argument("--name", help="A unique name for specs (default the file's stem).")
    up.set_defaults(func=cmd_upload)
    ls = actions.add_parser("list", help="List datasets, newest first.")
    ls.add_argument("--owner", help="Only this owner's datasets.")
    ls.set_defaults(func=cmd_list)
    for name, helptext, fn in (("show", "One dataset, and the jobs reading it.", cmd_show),
                               ("rm", "Delete a dataset no waiting or running job reads.",
                                cmd_rm)):
        a = actions.add_parser(name, help=helptext)
        a.add_argument("ref", help="Its name, id, or a unique id prefix of 6+ characters.")
        a.set_defaults(func=fn)
    for a in actions.choices.values():
        client_args(a)
        a.add_argument("--json", action="store_true", help="Print the API's JSON.")


def cmd_upload(args: argparse.Namespace) -> int:
    from vae_engine.errors import VaelabError

    path = Path(args.file)
    if not path.is_file():
        raise VaelabError(f"cannot read {path}: no such file")
    ds = make_client(args).upload_dataset(str(path), args.name or path.stem)
    print(json.dumps(ds, indent=2) if args.json else
          f"uploaded {ds['name']} ({ds['id']}): {dataset_line(ds)}\n"
          f"  use it with  dataset: {{name: npz, path: {ds['name']}}}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    page = make_client(args).datasets(owner=args.owner)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    print(f"{'id':8}  {'name':20}  {'owner':12}  details")
    for ds in page["items"]:
        print(f"{ds['id'][:8]}  {ds['name'][:20]:20}  {ds['owner'][:12]:12}  {dataset_line(ds)}")
    print(f"({len(page['items'])} of {page['total']})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    ds = make_client(args).dataset(args.ref)
    if args.json:
        print(json.dumps(ds, indent=2))
        return 0
    jobs = ", ".join(f"{n} {s}" for s, n in ds["jobs"].items()) or "none"
    print(f"dataset {ds['name']} ({ds['id']}), owner {ds['owner']}\n"
          f"  {dataset_line(ds)}\n  sha256 {ds['sha256']}\n  jobs reading it: {jobs}")
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    client = make_client(args)
    ds = client.dataset(args.ref)
    client.delete_dataset(ds["id"])
    print(f"deleted dataset {ds['name']} ({ds['id']})")
    return 0


def dataset_line(ds: dict[str, Any]) -> str:
    from service.cli.text import size_text

    shape = "x".join(str(n) for n in ds["shape"])
    factors = f", factors {', '.join(ds['factors'])}" if ds["factors"] else ""
    return (f"{ds['train_examples']}+{ds['test_examples']} examples of {shape} "
            f"{ds['dtype']}{factors}, {size_text(ds['bytes'])}")
