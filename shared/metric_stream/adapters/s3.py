"""The S3 backend of `BlobStore`: one bucket, keys as given, presigned URLs to hand out."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError

from metric_stream.adapters.aws import AwsClients, error_code, translated
from metric_stream.errors import ConfigurationError, InvalidInput, NotFound
from metric_stream.ports import BlobStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

_MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})
_MAX_URL_LIFETIME = timedelta(days=7)  # SigV4's limit for presigned URLs


class S3BlobStore(BlobStore):
    def __init__(self, clients: AwsClients, bucket: str, region: str) -> None:
        self.clients = clients
        self.bucket = bucket
        self.region = region

    @property
    def _s3(self) -> S3Client:
        return self.clients.s3

    def create(self) -> list[str]:
        where = f"S3 bucket {self.bucket}"
        try:
            with translated(f"S3 HeadBucket {self.bucket}", keep=_MISSING | {"403"}):
                self._s3.head_bucket(Bucket=self.bucket)
            return []
        except ClientError as error:
            if error_code(error) == "403":
                raise ConfigurationError(f"{where} exists but this account cannot use it",
                                         field="bucket_name") from None
        try:
            with translated(f"S3 CreateBucket {self.bucket}",
                            keep={"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}):
                if self.region == "us-east-1":
                    self._s3.create_bucket(Bucket=self.bucket)
                else:
                    region = cast("BucketLocationConstraintType", self.region)
                    self._s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={
                        "LocationConstraint": region})
        except ClientError as error:
            if error_code(error) == "BucketAlreadyExists":
                raise ConfigurationError(f"{where} belongs to another account; bucket names "
                                         "are global, choose another", field="bucket_name"
                                         ) from None
            return []  # created meanwhile by another caller
        return [f"{where} in {self.region}"]

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        with translated(f"S3 PutObject {key}"):
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def _get(self, key: str) -> bytes:
        try:
            with translated(f"S3 GetObject {key}", keep=_MISSING):
                return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError:
            raise NotFound(f"blob {key!r} does not exist", field="key") from None

    def _exists(self, key: str) -> bool:
        try:
            with translated(f"S3 HeadObject {key}", keep=_MISSING):
                self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True

    def _delete(self, key: str) -> None:
        with translated(f"S3 DeleteObject {key}"):
            self._s3.delete_object(Bucket=self.bucket, Key=key)

    def _list(self, prefix: str) -> Iterable[str]:
        keys: list[str] = []
        with translated(f"S3 ListObjectsV2 {prefix!r}"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix):
                keys.extend(o["Key"] for o in page.get("Contents", []) if "Key" in o)
        return keys

    def _url(self, key: str, expires_in: timedelta) -> str:
        seconds = int(expires_in.total_seconds())
        if not 1 <= seconds <= _MAX_URL_LIFETIME.total_seconds():
            raise InvalidInput("a blob URL lasts between 1 second and 7 days",
                               field="expires_in")
        with translated(f"S3 presign {key}"):
            return self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=seconds)
