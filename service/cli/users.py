"""``vaelab users``, ``vaelab tokens`` and ``vaelab login``: users and their limits (admins),
API tokens (shown once when created), and storing the API's URL and a token for every client
command (:mod:`service.clientconfig`). All go through the HTTP API."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from service.cli.common import client_args, make_client


def _limit(kind: type) -> Any:
    """An argparse type: a number, or ``none`` for no limit."""
    def parse(text: str) -> Any:
        if text.lower() in ("none", "null", "unlimited"):
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__} or 'none'"
                                             ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not finite")
        return value
    parse.__name__ = kind.__name__
    return parse


def add_users(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="Users and their limits (admins).",
                       description="vaelab users {create NAME [--admin] | list | set NAME ...}")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="A new user; prints their first token once.")
    c.add_argument("name", help="Letters, digits and . _ @ - (up to 100).")
    c.add_argument("--admin", action="store_true", help="An admin (default a member).")
    c.set_defaults(func=cmd_users_create)
    ls = actions.add_parser("list", help="Every user with their limits.")
    ls.set_defaults(func=cmd_users_list)
    s = actions.add_parser("set", help="Set a user's limits ('none' clears one).")
    s.add_argument("name", help="The user.")
    s.add_argument("--max-running", type=_limit(int), default=argparse.SUPPRESS,
                   help="Jobs running at once.")
    s.add_argument("--max-queued", type=_limit(int), default=argparse.SUPPRESS,
                   help="Jobs waiting at once.")
    s.add_argument("--weight", type=_limit(float), default=argparse.SUPPRESS,
                   help="Fair-share weight (default 1).")
    s.add_argument("--max-priority", type=_limit(int), default=argparse.SUPPRESS,
                   help="The highest priority their jobs may ask for.")
    s.add_argument("--role", choices=("admin", "member"), default=argparse.SUPPRESS,
                   help="admin or member.")
    s.add_argument("--disable", dest="disabled", action="store_true",
                   default=argparse.SUPPRESS, help="Refuse their tokens from now on.")
    s.add_argument("--enable", dest="disabled", action="store_false",
                   default=argparse.SUPPRESS, help="Accept their tokens again.")
    s.set_defaults(func=cmd_users_set)
    for a in actions.choices.values():
        client_args(a)
        a.add_argument("--json", action="store_true", help="Print the API's JSON.")


def add_tokens(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokens", help="API tokens: create (shown once), list, revoke.",
                       description="vaelab tokens {create [--user NAME] [--expires-days D] | "
                                   "list | revoke ID}")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="A new token (yours, or an admin: --user's).")
    c.add_argument("--user", help="Whose (admins; default yours).")
    c.add_argument("--expires-days", type=float, help="Expire after D days (default never).")
    c.set_defaults(func=cmd_tokens_create)
    ls = actions.add_parser("list", help="Your tokens (an admin: everyone's).")
    ls.add_argument("--user", help="Only this user's (admins).")
    ls.set_defaults(func=cmd_tokens_list)
    r = actions.add_parser("revoke", help="Revoke a token: it gets 401 from now on.")
    r.add_argument("id", help="Its id, or a unique prefix of 6+ hex digits.")
    r.set_defaults(func=cmd_tokens_revoke)
    for a in actions.choices.values():
        client_args(a)
        a.add_argument("--json", action="store_true", help="Print the API's JSON.")


def add_login(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("login", help="Store the API's URL and your token for every command.")
    p.add_argument("--url", required=True, help="The API, e.g. http://gpu-box:8000.")
    p.add_argument("--token", required=True, help="Your API token.")
    p.set_defaults(func=cmd_login)


def _print(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


def _limits(u: dict) -> str:
    def show(v: Any) -> str:
        return "-" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    return (f"running {show(u['max_running'])}, queued {show(u['max_queued'])}, "
            f"weight {show(u['weight'])}, max priority {show(u['max_priority'])}")


def _once(token: dict) -> str:
    return (f"token {token['id']} for {token['user']}"
            + (f", expires {token['expires_at']}" if token.get("expires_at") else "")
            + f":\n  {token['token']}\n(shown this once: only its hash is kept)")


def cmd_users_create(args: argparse.Namespace) -> int:
    u = make_client(args).create_user({"name": args.name,
                                       "role": "admin" if args.admin else "member"})
    return _print(args, u, f"created {u['role']} {u['name']}\n{_once(u['token'])}")


def cmd_users_list(args: argparse.Namespace) -> int:
    rows = make_client(args).users()
    lines = [f"{'name':20}  {'role':6}  limits"]
    lines += [f"{u['name'][:20]:20}  {u['role']:6}  {_limits(u)}"
              + ("  (disabled)" if u["disabled"] else "") for u in rows]
    return _print(args, rows, "\n".join(lines))


def cmd_users_set(args: argparse.Namespace) -> int:
    fields = {k: v for k, v in vars(args).items()
              if k in ("max_running", "max_queued", "weight", "max_priority", "role",
                       "disabled")}
    if not fields:
        from vae_engine.errors import VaelabError

        raise VaelabError("vaelab users set: give at least one of --max-running, "
                          "--max-queued, --weight, --max-priority, --role, --disable/--enable")
    u = make_client(args).update_user(args.name, fields)
    return _print(args, u, f"{u['name']} ({u['role']}): {_limits(u)}"
                  + ("  (disabled)" if u["disabled"] else ""))


def cmd_tokens_create(args: argparse.Namespace) -> int:
    t = make_client(args).create_token(args.user, args.expires_days)
    return _print(args, t, _once(t))


def _state(t: dict) -> str:
    if t["revoked_at"]:
        return f"revoked {t['revoked_at'][:19]}"
    if t["expires_at"]:
        return f"expires {t['expires_at'][:19]}"
    return "active"


def cmd_tokens_list(args: argparse.Namespace) -> int:
    rows = make_client(args).tokens(args.user)
    lines = [f"{'id':8}  {'user':16}  {'created':19}  {'last used':19}  state"]
    lines += [f"{t['id'][:8]}  {t['user'][:16]:16}  {t['created_at'][:19]}  "
              f"{(t['last_used_at'] or '-')[:19]:19}  {_state(t)}" for t in rows]
    return _print(args, rows, "\n".join(lines))


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    t = make_client(args).revoke_token(args.id)
    return _print(args, t, f"revoked token {t['id']} of {t['user']}")


def cmd_login(args: argparse.Namespace) -> int:
    """Check the token against the API, then store both."""
    from service import clientconfig
    from service.client import Client

    me = Client(args.url, args.token).me()
    path = clientconfig.save(args.url, args.token)
    print(f"logged in to {args.url} as {me['name']} ({me['role']}); stored in {path}")
    return 0
