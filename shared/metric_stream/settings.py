"""Process settings from the environment (`METRIC_STREAM_*`) or explicit arguments.

These say where things run and the secrets to reach them; what the operator tunes
at run time (retries, timeouts, chains) is `SystemConfig`, kept in the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="METRIC_STREAM_", extra="ignore", validate_default=True,
        populate_by_name=True,
    )

    backend: Literal["embedded", "aws"] = "embedded"
    """Where data lives: `embedded` (SQLite and files under `home`) or `aws`."""

    home: Path = Path(".metric-stream")
    """The embedded backend's data folder (database, blobs)."""

    public_url: str | None = None
    """The API's public base URL (`https://reports.example.com`): report links in messages
    point to its `/api/documents/{traceId}`. Without it the embedded backend links the
    report file itself (a `file://` URL); the AWS backend always hands out pre-signed
    S3 URLs."""

    aws_region: str = "us-east-1"
    """AWS region of the table, bucket and queues."""

    aws_endpoint_url: str | None = None
    """Endpoint for every AWS client, e.g. a moto server `http://127.0.0.1:5000`."""

    table_name: str = Field(default="metric-stream", pattern=r"^[A-Za-z0-9_.-]{3,255}$")
    """DynamoDB table holding every record (one item per point for time series)."""

    bucket_name: str = Field(default="metric-stream-blobs", pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")
    """S3 bucket for charts, reports and archives."""

    queue_prefix: str = Field(default="metric-stream-", pattern=r"^[A-Za-z0-9_-]{0,40}$")
    """Prefix of the SQS stage queue names (`{prefix}analysis`, `{prefix}analysis-dlq`)."""

    queue_max_receives: int = Field(default=5, ge=1, le=1000)
    """Receives after which an unacknowledged message moves to the dead-letter queue."""

    queue_visibility_timeout: int = Field(default=300, ge=0, le=43_200)
    """Seconds a received message stays hidden before it is received again."""

    outbound_allow_private: bool = False
    """Let n8n webhooks and delivery webhooks reach private and link-local addresses
    (cloud metadata addresses stay refused)."""

    outbound_allow_loopback: bool | None = None
    """Let them reach loopback (127.0.0.0/8, ::1); unset: allowed on the embedded
    backend (a local n8n), refused on aws."""

    n8n_api_url: str | None = None
    """n8n's base URL for workflow control through its REST API, e.g. http://127.0.0.1:5678."""

    n8n_api_key: SecretStr | None = None
    """n8n API key (sent as X-N8N-API-KEY)."""

    ingestion_key: SecretStr | None = None
    """Key n8n workflows and collectors send as `X-API-Key`."""

    hmac_secret: SecretStr | None = None
    """Secret for Standard Webhooks signatures on ingestion."""

    admin_key: SecretStr | None = None
    """Bearer key of the admin routes."""

    secrets_id: str | None = None
    """A Secrets Manager secret (name or ARN) holding a JSON object of further settings
    by their environment names (`{"METRIC_STREAM_ADMIN_KEY": "...", "OPENROUTER_API_KEY":
    "..."}`), read once when the AWS backend starts; what the environment sets wins."""

    record_key: SecretStr | None = None
    """The key that seals delivery endpoints' secrets (URL, signing secret) in the
    registry: 32 random bytes in base64 (`openssl rand -base64 32`). Unset, the embedded
    backend (and aws against a loopback emulator) makes one once, `HOME/record.key`
    (mode 0600); the aws backend refuses to seal or open an endpoint without it."""

    record_keys_old: SecretStr | None = None
    """Former record keys, comma-separated: records they sealed still open, and
    `metric-stream reseal` seals them again with `record_key` (key rotation)."""

    request_budget_s: float = Field(default=24.0, gt=0, le=900)
    """Seconds a long request (a chart batch) may work before it answers with what it
    has: API Gateway ends every request at 29 s, whatever the Lambda is doing."""

    proxy_secret: SecretStr | None = None
    """Shared with the Cloudflare Worker proxy (its `PROXY_SECRET`). Set: metric-stream
    sits behind the proxy and refuses every request without the proxy's signature."""

    openrouter_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("METRIC_STREAM_OPENROUTER_API_KEY", "OPENROUTER_API_KEY"),
    )
    """OpenRouter API key (sent as `Authorization: Bearer`) for analysis chain steps."""

    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    """OpenRouter API base URL (`{base}/chat/completions`)."""

    gemini_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("METRIC_STREAM_GEMINI_API_KEY", "GEMINI_API_KEY"),
    )
    """Google Gemini API key (sent as `x-goog-api-key`) for analysis chain steps."""

    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    """Gemini API base URL (`{base}/models/{model}:generateContent`)."""

    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("METRIC_STREAM_ANTHROPIC_API_KEY", "ANTHROPIC_API_KEY"),
    )
    """Anthropic API key (sent as `x-api-key`) for analysis chain steps."""

    anthropic_base_url: str = "https://api.anthropic.com/v1"
    """Anthropic API base URL (`{base}/messages`)."""

    telegram_base_url: str = "https://api.telegram.org"
    """Telegram Bot API base URL (`{base}/bot{token}/sendMessage`)."""

    discord_base_url: str = "https://discord.com"
    """Discord base URL for `discord://` endpoints (`{base}/api/webhooks/{id}/{token}`)."""

    slack_base_url: str = "https://hooks.slack.com"
    """Slack incoming-webhook base URL for `slack://` endpoints (`{base}/services/...`)."""

    twilio_base_url: str = "https://api.twilio.com"
    """Twilio REST API base URL (`{base}/2010-04-01/Accounts/{sid}/Messages.json`)."""

    smtp_timeout_s: float = 20.0
    """Timeout of one SMTP conversation (`mailto://` endpoints)."""

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, e.g. https://reports.example.com")
        return value.rstrip("/") if value else value

    @field_validator("aws_endpoint_url")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @property
    def database_path(self) -> Path:
        return self.home / "metric-stream.db"

    @property
    def blob_root(self) -> Path:
        return self.home / "blobs"

    @property
    def record_key_path(self) -> Path:
        return self.home / "record.key"
