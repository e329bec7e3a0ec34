"""Settings kept in AWS Secrets Manager: the deployed functions hold no secret in their
environment, only `METRIC_STREAM_SECRETS_ID`, the name of one secret whose JSON object
names settings as the environment does (`METRIC_STREAM_ADMIN_KEY`, `OPENROUTER_API_KEY`).

Read once per process when the AWS services are built. A setting the environment
already gives is kept (the environment wins); a name that is no setting is refused, so
a typo in the secret is found at start rather than as a missing key later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from metric_stream.adapters.aws import CLIENT_CONFIG, AwsClients, translated
from metric_stream.errors import ConfigurationError
from metric_stream.settings import Settings

PREFIX = "METRIC_STREAM_"


def environment_names(name: str, info: FieldInfo) -> tuple[str, ...]:
    """The environment names a setting is read from (its prefixed name and aliases)."""
    names = [PREFIX + name.upper()]
    alias = info.validation_alias
    choices = getattr(alias, "choices", None)
    if choices:
        names = [str(c) for c in choices]
    elif isinstance(alias, str):
        names = [alias]
    return tuple(n.upper() for n in names)


def merged(settings: Settings, stored: Mapping[str, Any], source: str) -> Settings:
    """`settings` with the unset fields filled from `stored` (environment names)."""
    by_name = {env: name for name, info in Settings.model_fields.items()
               for env in environment_names(name, info)}
    unknown = sorted(k for k in stored if str(k).upper() not in by_name)
    if unknown:
        raise ConfigurationError(f"{source} names settings metric-stream does not have: "
                                 f"{', '.join(unknown)}", field="secrets_id")
    given = settings.model_fields_set
    values = settings.model_dump()
    for key, value in stored.items():
        name = by_name[str(key).upper()]
        if name not in given:
            values[name] = value
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ConfigurationError(f"{source}: {where}: {problem['msg']}",
                                 field="secrets_id") from None


def with_stored_secrets(settings: Settings, clients: AwsClients | None = None) -> Settings:
    """The settings completed from their Secrets Manager secret (if one is named)."""
    if not settings.secrets_id:
        return settings
    clients = clients or AwsClients(settings)
    client = clients.session().client("secretsmanager", region_name=settings.aws_region,
                                      endpoint_url=settings.aws_endpoint_url,
                                      config=CLIENT_CONFIG)
    source = f"the secret {settings.secrets_id}"
    with translated(f"Secrets Manager GetSecretValue {settings.secrets_id}"):
        answer = client.get_secret_value(SecretId=settings.secrets_id)
    try:
        stored = json.loads(answer.get("SecretString") or "")
    except ValueError:
        raise ConfigurationError(f"{source} is not a JSON object of settings",
                                 field="secrets_id") from None
    if not isinstance(stored, dict):
        raise ConfigurationError(f"{source} is not a JSON object of settings",
                                 field="secrets_id")
    return merged(settings, stored, source)
