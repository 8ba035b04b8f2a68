"""What the extraction worker may see of the syncing process's environment.

DAG code reads ``os.environ`` like any other code, so the worker starts with an allow-list
only: what an interpreter needs to run (``PATH``, ``HOME``, locale, ``TZ``, temporary folder,
the ``PYTHON*`` variables that change how Python finds modules), what the manifest's
``[extract] environment`` names, and what an extractor's ``environment`` attribute sets.
Connection secrets (``DAGFETCH_CONN_*``) are never passed, even when configured.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping

import attrs

from dagfetch.errors import ManifestError
from dagfetch.redact import SecretsMasker, masker

#: passed to every worker: the interpreter, locale and time zone need them
BASE_ALLOW = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "TEMP", "TMP",
    "PYTHONPATH", "PYTHONHOME", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX",
    "PYTHONWARNINGS", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONNOUSERSITE", "PYTHONUSERBASE",
    "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR",
)
#: never passed, whatever the configuration says: where dagfetch keeps connection secrets
NEVER_PASS = ("DAGFETCH_CONN_*", "DAGFETCH_CONNECTIONS_FILE")
# names whose values are treated as secrets when masking import errors
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSW|PWD|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|"
                          r"SESSION|AUTH|SAS|CONN)", re.IGNORECASE)


def check_patterns(
    patterns: Iterable[str], field: str, source: str | None = None
) -> tuple[str, ...]:
    """Configured names (``fnmatch`` patterns); naming a connection secret is an error."""
    checked = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise ManifestError(field, f"{pattern!r} is not an environment variable name",
                                source=source)
        for forbidden in NEVER_PASS:
            if fnmatch.fnmatchcase(pattern, forbidden) or fnmatch.fnmatchcase(
                    forbidden.rstrip("*") + "X", pattern):
                raise ManifestError(field, f"{pattern!r} would pass connection secrets "
                                    f"({forbidden}) to DAG code; dagfetch never does",
                                    source=source)
        checked.append(pattern)
    return tuple(checked)


def worker_environment(environ: Mapping[str, str], allow: Iterable[str] = ()) -> dict[str, str]:
    """The variables of ``environ`` the worker gets: :data:`BASE_ALLOW` plus ``allow``."""
    patterns = (*BASE_ALLOW, *allow)
    return {
        name: value for name, value in environ.items()
        if any(fnmatch.fnmatchcase(name, p) for p in patterns)
        and not any(fnmatch.fnmatchcase(name, p) for p in NEVER_PASS)
    }


def mask_known_secrets(text: str, environ: Mapping[str, str]) -> str:
    """``text`` without any secret this process knows: the connections resolved so far
    (:data:`dagfetch.redact.masker`) and the values of secret-looking variables of ``environ``
    (``DAGFETCH_CONN_*``, ``AWS_SECRET_ACCESS_KEY``, ``*_TOKEN``...), which DAG code may have
    learnt some other way (a file, a metadata server) and put in an exception message."""
    return known_secrets_masker(environ)(text)


def known_secrets_masker(environ: Mapping[str, str]) -> Callable[[str], str]:
    """:func:`mask_known_secrets` for many texts: ``environ`` is read once, not per text."""
    return known_secrets(environ).mask


@attrs.frozen
class KnownSecrets:
    """:func:`mask_known_secrets` for many texts, and a digest of the secrets it masks (see
    :meth:`dagfetch.redact.SecretsMasker.fingerprint`)."""

    mask: Callable[[str], str]
    fingerprint: str = attrs.field(repr=False)


def known_secrets(environ: Mapping[str, str]) -> KnownSecrets:
    """The secrets this process knows now: the connections resolved so far and the
    secret-looking variables of ``environ`` (read once)."""
    known = environment_masker(environ)
    digest = f"{masker.fingerprint()}:{known.fingerprint()}"
    return KnownSecrets(lambda text: known.mask(masker.mask(text)), digest)


def environment_masker(environ: Mapping[str, str]) -> SecretsMasker:
    """A masker of the values of the secret-looking variables of ``environ``."""
    known = SecretsMasker()
    for name, value in environ.items():
        if _SECRET_NAME.search(name) or any(fnmatch.fnmatchcase(name, p) for p in NEVER_PASS):
            known.add(value)
            # a connection URL: its password alone may be quoted too
            userinfo = value.partition("://")[2].partition("@")
            if userinfo[1] and ":" in userinfo[0]:
                known.add(userinfo[0].split(":", 1)[1])
    return known
