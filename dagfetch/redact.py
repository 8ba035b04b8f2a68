"""Keep secrets out of logs, error messages and anything written to disk.

Two tools, used together: :func:`redact_url` removes credentials from a URL by its
structure, and the process-wide :data:`masker` replaces every secret value it has been
told about, wherever it shows up (a lower library's exception text, a log record).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_QUERY_KEYS = re.compile(
    r"(sig|signature|token|secret|password|passwd|pwd|key|credential|x-amz-security-token"
    r"|x-amz-signature|x-goog-signature|sas)",
    re.IGNORECASE,
)
MASK = "***"

# fsspec protocols whose URL puts arguments where other URLs put credentials:
# ``github://org:repo@ref/path`` names an organisation and a repository, not a user and a
# password (GitHub's credentials are storage options, never part of the URL)
URL_ARGUMENT_SCHEMES = frozenset({"github", "gist"})
CHAIN_SEPARATOR = "::"


def redact_url(url: str) -> str:
    """Return ``url`` with its password and secret-looking query values replaced by ``***``.

    Each link of a chained fsspec URL (``simplecache::s3://bucket/dags``) is redacted by its
    own scheme: the user information of :data:`URL_ARGUMENT_SCHEMES` is kept, as it names
    what is read, and their secret-looking query values are still masked."""
    if CHAIN_SEPARATOR in url:
        return CHAIN_SEPARATOR.join(redact_url(link) for link in url.split(CHAIN_SEPARATOR))
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc and parts.scheme.lower() not in URL_ARGUMENT_SCHEMES:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
        if not user:
            netloc = f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if _SECRET_QUERY_KEYS.search(k) else v) for k, v in pairs], safe="*"
        )
    if netloc == parts.netloc and query == parts.query:
        # nothing secret: keep the URL as written (urlunsplit turns zip+file:///x into
        # zip+file:/x for schemes it does not know)
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# one key per process, shared by every masker (fingerprints are compared across maskers): a
# fingerprint that got out of the process could not be checked against guessed secrets
_FINGERPRINT_KEY = os.urandom(16)


class SecretsMasker:
    """Replaces registered secret values in text. Thread-safe; values shorter than 4 chars are
    ignored because masking them would shred ordinary words."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if len(secret) < 4:
            return
        with self._lock:
            if secret not in self._secrets:
                self._secrets.add(secret)
                alternatives = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in alternatives))

    def mask(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub(MASK, text) if pattern is not None else text

    def fingerprint(self) -> str:
        """A digest of the secrets registered so far (never the secrets themselves): equal
        fingerprints, the same masking, so text checked once need not be checked again."""
        with self._lock:
            known = sorted(self._secrets)
        return hashlib.blake2b("\0".join(known).encode(), key=_FINGERPRINT_KEY).hexdigest()


masker = SecretsMasker()


def mask(text: str) -> str:
    """Mask every known secret in ``text``."""
    return masker.mask(text)


REPORTED = "dagfetch_reported"
"""``extra={REPORTED: True}`` marks a log record whose news the caller also gets as a result
(a repository's failed sync is in its :class:`~dagfetch.models.SyncResult`): the command
line, which prints the result, does not print the record again."""


class RedactingFilter(logging.Filter):
    """Attached to dagfetch's loggers so no record leaves with a known secret in it, and to
    the command line's handler, so no record of any library is printed with one."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = masker.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        # a traceback quotes exception messages, which may quote a secret: format it here,
        # masked, so handlers print the masked text instead of formatting it again
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = masker.mask(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = masker.mask(record.stack_info)
        return True


_filter = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """A logger that masks known secrets (filters are not inherited, so each gets its own)."""
    log = logging.getLogger(name)
    if _filter not in log.filters:
        log.addFilter(_filter)
    return log
