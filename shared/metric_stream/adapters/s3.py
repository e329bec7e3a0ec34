"""The S3 backend of `BlobStore`: one bucket, keys as given, presigned URLs to hand out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from metric_stream.adapters.aws import AwsClients, error_code, translated
from metric_stream.errors import ConfigurationError, InvalidInput, NotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_MAX_URL_LIFETIME = timedelta(days=7)  # SigV4's limit for presigned URLs


class S3BlobStore(BlobStoreBase := __import__("metric_stream.ports").ports.BlobStore):
    pass
