"""`manage.py token create --user NAME --scope read --days 30`: a personal token for a script.

Also `token list --user NAME` and `token revoke ID`. The token is printed once, on stdout alone,
so `TOKEN=$(python manage.py token create ...)` captures exactly it.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from console.foundation import audit, tokens
from console.foundation.models import PersonalToken


class Command(BaseCommand):
    help = "Create, list or revoke personal access tokens."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="print a new token (shown once)")
        create.add_argument("--user", required=True)
        create.add_argument(
            "--scope",
            action="append",
            choices=["read", "operate", "admin"],
            help="repeat for several; default read",
        )
        create.add_argument("--days", type=int, default=30)
        create.add_argument("--name", default="")
        listing = actions.add_parser("list", help="a user's tokens")
        listing.add_argument("--user", required=True)
        revoke = actions.add_parser("revoke", help="revoke a token by id")
        revoke.add_argument("id", type=int)

    def handle(self, *args, action: str, **options):
        if action == "create":
            user = self._user(options["user"])
            scopes = options["scope"] or ["read"]
            name = options["name"] or f"cli {'+'.join(scopes)}"
            try:
                record, raw = tokens.issue_personal(user, name, scopes, options["days"])
            except ValueError as error:
                raise CommandError(str(error)) from None
            audit.record(
                "token.create",
                user=user,
                target=f"personal token {record.id} {record.name!r}",
                via="manage.py token",
                scopes=record.scopes,
            )
            self.stderr.write(
                f"Token {record.id} for {user.get_username()} ({', '.join(record.scopes)}), "
                f"expires {record.expires_at:%Y-%m-%d %H:%M} UTC. It is shown only now:"
            )
            self.stdout.write(raw)
        elif action == "list":
            for record in PersonalToken.objects.filter(user=self._user(options["user"])):
                state = (
                    "active" if record.active else ("revoked" if record.revoked_at else "expired")
                )
                self.stdout.write(
                    f"{record.id}\t{record.name}\t{','.join(record.scopes)}\t"
                    f"{record.expires_at:%Y-%m-%d}\t{state}"
                )
        else:
            found = PersonalToken.objects.filter(pk=options["id"]).first()
            if found is None:
                raise CommandError(f"no token with id {options['id']}")
            tokens.revoke_personal(found)
            audit.record(
                "token.revoke",
                user=found.user,
                target=f"personal token {found.id} {found.name!r}",
                via="manage.py token",
            )
            self.stdout.write(f"revoked token {found.id}")

    def _user(self, username: str):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user named {username!r}")
        return user
