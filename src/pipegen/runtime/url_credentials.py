"""Where URLs carry credentials: shared by the runtime's redactor and the compiler's literal-credential check.

Only `re`: the compiler imports it on every `validate`.
"""

from __future__ import annotations

import re

# `scheme://user:password@`: the password of a URL's userinfo, e.g. a connection string.
USERINFO = re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")
# A query parameter `name=value` after `?`, `&` or `;`; is_credential_name decides whether it is one.
# The value ends at whitespace, or at a ':' before one ("url: error" in a message).
QUERY_PARAM = re.compile(r"(?P<keep>[?&;](?P<name>[^=&;#\s?]+)=)(?:[^&;#\s'\"<>:]|:(?!\s|\Z))+")
# token, api_key, client_secret, password, X-Amz-Signature, X-Amz-Security-Token, sig (Azure SAS), key (Google).
_CREDENTIAL_NAME = re.compile(
    r"token|secret|passw|pwd|credential|api_?key|access_?key|private_?key|signature"
    r"|\A(?:x_amz_|x_goog_)?(?:sig|key|auth|pass|pw)\Z"
)
# Webhook URLs whose path is the credential (Slack incoming webhooks, Discord webhooks).
SECRET_PATH = re.compile(
    r"(?P<keep>hooks\.slack\.com/(?:services|workflows|triggers)/|discord(?:app)?\.com/api/webhooks/)"
    r"(?P<path>[^\s'\"<>?#;,]+)",
    re.IGNORECASE,
)


def is_credential_name(name: str) -> bool:
    """True for a query parameter named like a credential: token, api_key, password, sig, X-Amz-Signature..."""
    return _CREDENTIAL_NAME.search(name.lower().replace("-", "_")) is not None
